//! `vfio-bench BDF`: the VFIO device file against VFIO itself, inside the test VM (the real edu
//! bound to vfio-pci behind the emulated IOMMU), one run, all in one process pinned to CPU 0:
//!
//! 1. a 4-byte BAR0 read through the device file vs a `pread` on the VFIO device fd (the same
//!    fd the server uses), interleaved in rounds;
//! 2. an interrupt round trip (raise through BAR0, wake up, acknowledge): on an eventfd
//!    registered directly with VFIO vs `POLLPRI` on the device file;
//! 3. filling 1 MiB of the DMA window through its mapping vs `memcpy` into private memory.
//!
//! Prints a Markdown table for BENCHMARKS.md.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devfd_client::DeviceFile;
use devfd_device::Device;
use devfd_vfio::{Container, VfioDevice, query};

const ID: u64 = 0x00;
const RAISE: u64 = 0x60;
const ACK: u64 = 0x64;

fn pin() {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity get live pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(v[v.len() / 2]), us(v[v.len() * 99 / 100]))
}

fn eventfd() -> OwnedFd {
    // SAFETY: no pointers; the result is checked and owned below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
    // SAFETY: a new descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn wait_readable(fd: BorrowedFd<'_>, events: i16) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 5000) };
    assert_eq!(n, 1, "no interrupt within 5 s");
}

fn row(metric: &str, devfd: (f64, f64), direct: (f64, f64), goal: &str) {
    let ratio = devfd.0 / direct.0;
    println!(
        "| {metric}, p50 | {:.1} µs | {:.1} µs | {ratio:.2}× | {goal} |",
        devfd.0, direct.0
    );
    println!(
        "| {metric}, p99 | {:.1} µs | {:.1} µs | {:.2}× | – |",
        devfd.1,
        direct.1,
        devfd.1 / direct.1
    );
}

fn main() {
    let bdf = std::env::args().nth(1).expect("usage: vfio-bench BDF");
    pin();
    let file = |fd: BorrowedFd<'_>| std::fs::File::from(fd.try_clone_to_owned().expect("dup"));

    // Interrupt baseline: INTx on our own eventfd, VFIO opened directly (devfd must not hold
    // the group meanwhile).
    let direct_irq = {
        let mut container = Container::new().expect("container");
        let device = container.open_device(&bdf).expect("device");
        let info = query(device.as_fd(), &bdf).expect("info");
        let bar0 = info
            .regions
            .iter()
            .find(|r| r.index == 0)
            .expect("BAR0")
            .offset;
        let f = file(device.as_fd());
        let efd = eventfd();
        // A clean start: nothing raised at the device, the kernel's INTx unmasked, the
        // eventfd drained.
        f.write_all_at(&u32::MAX.to_le_bytes(), bar0 + ACK).unwrap();
        devfd_vfio::raw_trigger_intx(device.as_fd(), efd.as_fd()).expect("SET_IRQS");
        devfd_vfio::raw_unmask_intx(device.as_fd()).expect("unmask");
        let mut p = libc::pollfd {
            fd: efd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd; then an 8-byte read into a live buffer if it is readable.
        if unsafe { libc::poll(&mut p, 1, 50) } == 1 {
            let mut b = [0u8; 8];
            unsafe { libc::read(efd.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
        }
        let mut times = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            f.write_all_at(&1u32.to_le_bytes(), bar0 + RAISE).unwrap();
            wait_readable(efd.as_fd(), libc::POLLIN);
            let mut b = [0u8; 8];
            // SAFETY: reads 8 bytes into a live buffer from our eventfd.
            unsafe { libc::read(efd.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
            f.write_all_at(&1u32.to_le_bytes(), bar0 + ACK).unwrap();
            devfd_vfio::raw_unmask_intx(device.as_fd()).unwrap();
            times.push(t.elapsed());
        }
        stats(times)
    };

    let container = Arc::new(Mutex::new(Container::new().expect("container")));
    let vfio = Arc::new(VfioDevice::open(&container, &bdf, Some(1 << 20)).expect("open"));
    let bar0_vfio = vfio
        .kernel_info()
        .regions
        .iter()
        .find(|r| r.index == 0)
        .expect("BAR0")
        .offset;
    let mount = std::path::PathBuf::from("/run/vfio-bench");
    let server = devfd_fuse::serve(
        vec![("edu0".into(), vfio.clone() as Arc<dyn Device>)],
        devfd_fuse::ServeOptions::new(&mount),
    )
    .expect("serve");
    let dev = DeviceFile::open(mount.join("edu0")).expect("device file");
    let bar0 = dev.pci_bar(0).expect("BAR0");
    let raw = file(vfio.device_fd());

    // 1. Register reads, interleaved rounds of 500.
    let (mut via_file, mut via_vfio) = (Vec::new(), Vec::new());
    let mut b = [0u8; 4];
    for _ in 0..40 {
        for _ in 0..500 {
            let t = Instant::now();
            dev.file().read_exact_at(&mut b, bar0.offset + ID).unwrap();
            via_file.push(t.elapsed());
        }
        for _ in 0..500 {
            let t = Instant::now();
            raw.read_exact_at(&mut b, bar0_vfio + ID).unwrap();
            via_vfio.push(t.elapsed());
        }
    }
    assert_eq!(u32::from_le_bytes(b), 0x0100_00ed);

    // 2. Interrupt round trips through the device file, from a clean start.
    let intx = dev.resolve_interrupt("intx").expect("INTx").index;
    dev.write_u32(bar0.index, ACK, u32::MAX).unwrap();
    if dev.is_masked(intx, 0).unwrap() {
        dev.unmask(intx, 0).unwrap();
    }
    let _ = dev.interrupt_count(intx, 0);
    let mut irq_file = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        dev.write_u32(bar0.index, RAISE, 1).unwrap();
        wait_readable(dev.file().as_fd(), libc::POLLPRI);
        assert!(dev.interrupt_count(intx, 0).unwrap() >= 1);
        dev.write_u32(bar0.index, ACK, 1).unwrap();
        dev.unmask(intx, 0).unwrap();
        irq_file.push(t.elapsed());
    }

    // 3. The DMA window, mapped, against private memory.
    let window = dev.dma_windows().next().expect("a DMA window");
    // Where FUSE cannot pass memory through (Linux before 6.9), the window is reached by
    // pwrite of its region instead, and the row says so.
    let map = match dev.map(window) {
        Ok(m) => Some(m),
        Err(devfd_client::ClientError::MmapUnavailable { .. }) => None,
        Err(e) => panic!("mapping the DMA window: {e}"),
    };
    let how = if map.is_some() {
        "through its mapping"
    } else {
        "by pwrite (this kernel's FUSE has no passthrough)"
    };
    let src = vec![0x5au8; 1 << 20];
    let mut private = vec![0u8; 1 << 20];
    let (mut to_window, mut to_private) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let t = Instant::now();
        match &map {
            Some(m) => m.copy_from(&src, 0).unwrap(),
            None => dev.write_bulk(window, 0, &src).unwrap(),
        }
        to_window.push(t.elapsed());
        let t = Instant::now();
        private.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&private);
        to_private.push(t.elapsed());
    }
    drop(map);
    drop(dev);
    drop(server);

    println!("| metric | devfd | direct VFIO | ratio | goal |");
    println!("|---|---|---|---|---|");
    row(
        "4-byte BAR0 read: device file vs pread on the VFIO fd",
        stats(via_file),
        stats(via_vfio),
        "≤ 1.30×",
    );
    row(
        "INTx round trip (raise, wake, ack, unmask): POLLPRI on the device file vs VFIO eventfd",
        stats(irq_file),
        direct_irq,
        "info",
    );
    row(
        &format!("1 MiB into the DMA window {how} vs memcpy to private memory"),
        stats(to_window),
        stats(to_private),
        "info",
    );
}
