//! The FUSE server end to end, against a real mount, with a scratch device written here:
//! discovery, register access, the errno matrix of SPEC.md §6.6, interrupts through poll,
//! the call bound, concurrency, permissions.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devfd_device::{Device, DeviceError, Interrupts};
use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::*;
use devfd_format::{Bus, Location};
use devfd_fuse::{ServeOptions, serve};

/// Region 0: 32 u64 registers (0x00 scratch, 0x08 adder, 0x10 raise irq, 0x18 hang).
/// Region 1: read-only, region 2: write-only, region 3: 8 KiB of memory.
struct Scratch {
    desc: Vec<u8>,
    regs: Mutex<[u64; 32]>,
    memory: Mutex<Vec<u8>>,
    sum: AtomicU64,
    irq: Interrupts,
}

const REGS: u64 = 0x1000;
const RO: u64 = 0x2000;
const WO: u64 = 0x3000;
const MEM: u64 = 0x4000;
const IRQ: u64 = 0x6000;

fn region(index: u32, offset: u64, size: u64, flags: u32) -> RegionDesc {
    RegionDesc {
        index,
        offset,
        size,
        flags,
        location: Location::None,
        dt: None,
        label: None,
        sparse: None,
        dma_address: None,
        access_widths: None,
    }
}

impl Scratch {
    fn new() -> Arc<Scratch> {
        let mut d = DeviceDesc::new(Bus::Other(b'S'));
        d.label = Some("scratch".into());
        d.regions
            .push(region(0, REGS, 0x100, REGION_READ | REGION_WRITE));
        d.regions.push(region(1, RO, 16, REGION_READ));
        d.regions.push(region(2, WO, 16, REGION_WRITE));
        d.regions.push(region(
            3,
            MEM,
            0x2000,
            REGION_READ | REGION_WRITE | REGION_MMAP,
        ));
        d.interrupts.push(InterruptDesc {
            index: 0,
            count: 2,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_MASKABLE,
            control_offset: IRQ,
            dt: None,
            label: None,
        });
        d.interrupts.push(InterruptDesc {
            index: 1,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: 0,
            control_offset: IRQ + 0x20,
            dt: None,
            label: None,
        });
        let desc = d.build().unwrap();
        let irq = Interrupts::new(&devfd_format::parse(&desc).unwrap());
        Arc::new(Scratch {
            desc,
            regs: Mutex::new([0; 32]),
            memory: Mutex::new(vec![0; 0x2000]),
            sum: AtomicU64::new(0),
            irq,
        })
    }
}

impl Device for Scratch {
    fn description(&self) -> &[u8] {
        &self.desc
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        match region {
            0 if offset == 8 => devfd_device::put_le_value(data, self.sum.load(Ordering::SeqCst)),
            0 if offset == 0xf8 => return Err(DeviceError::Failed),
            0 => {
                let regs = self.regs.lock().unwrap();
                let v = regs[(offset / 8) as usize] >> (8 * (offset % 8));
                devfd_device::put_le_value(data, v);
            }
            1 => devfd_device::put_le_value(data, 0x1234_5678_u64 >> (8 * (offset % 4))),
            3 => {
                let mem = self.memory.lock().unwrap();
                data.copy_from_slice(&mem[offset as usize..offset as usize + data.len()]);
            }
            _ => return Err(DeviceError::Unsupported),
        }
        Ok(())
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let v = devfd_device::le_value(data);
        match (region, offset) {
            (0, 0x08) => {
                self.sum.fetch_add(v, Ordering::SeqCst);
            }
            (0, 0x10) => self.irq.raise(0, v as u32),
            (0, 0x18) => std::thread::sleep(Duration::from_millis(v)),
            (0, _) => self.regs.lock().unwrap()[(offset / 8) as usize] = v,
            (2, _) => {}
            (3, _) => {
                let mut mem = self.memory.lock().unwrap();
                mem[offset as usize..offset as usize + data.len()].copy_from_slice(data);
            }
            _ => return Err(DeviceError::Unsupported),
        }
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        &self.irq
    }

    fn kind(&self) -> &str {
        "scratch"
    }
}

struct Mounted {
    dir: PathBuf,
    _server: devfd_fuse::Server,
}

fn mount(name: &str, bound: Duration) -> Mounted {
    let dir = std::env::temp_dir().join(format!("devfd-fuse-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut opts = ServeOptions::new(&dir);
    opts.call_bound = bound;
    let devices: Vec<(String, Arc<dyn Device>)> = vec![
        ("scratch0".into(), Scratch::new()),
        ("scratch1".into(), Scratch::new()),
    ];
    let server = serve(devices, opts).expect("mount (needs root and /dev/fuse)");
    Mounted {
        dir,
        _server: server,
    }
}

fn open(dir: &Path, name: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(name))
        .unwrap()
}

fn errno(r: std::io::Result<usize>) -> i32 {
    r.expect_err("the access should fail")
        .raw_os_error()
        .unwrap()
}

fn read_u64(f: &File, at: u64) -> u64 {
    let mut b = [0u8; 8];
    assert_eq!(f.read_at(&mut b, at).unwrap(), 8);
    u64::from_le_bytes(b)
}

#[test]
fn discovery_in_one_read_and_registers() {
    let m = mount("regs", Duration::from_secs(1));
    let f = open(&m.dir, "scratch0");
    let mut page = vec![0u8; 4096];
    let n = f.read_at(&mut page, 0).unwrap();
    let d = devfd_format::parse(&page[..n]).unwrap();
    assert_eq!(n, d.len(), "a read at 0 returns exactly the description");
    assert_eq!(d.region(0).unwrap().offset, REGS);
    f.write_at(&0xdead_beef_u32.to_le_bytes(), REGS).unwrap();
    let mut b = [0u8; 4];
    f.read_at(&mut b, REGS).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0xdead_beef);
    f.write_at(&0x1122_3344_5566_7788_u64.to_le_bytes(), REGS + 0x20)
        .unwrap();
    assert_eq!(read_u64(&f, REGS + 0x20), 0x1122_3344_5566_7788);
    let mut one = [0u8; 1];
    f.read_at(&mut one, RO + 3).unwrap();
    assert_eq!(one[0], 0x12);
    // Bulk access to the memory region, any length and alignment.
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    assert_eq!(f.write_at(&data, MEM + 3).unwrap(), 5000);
    let mut back = vec![0u8; 5000];
    assert_eq!(f.read_at(&mut back, MEM + 3).unwrap(), 5000);
    assert_eq!(back, data);
    let listing: Vec<String> = std::fs::read_dir(&m.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        listing.contains(&"scratch0".into()) && listing.contains(&"scratch0.r3".into()),
        "{listing:?}"
    );
    let meta = std::fs::metadata(m.dir.join("scratch0")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), IRQ + 0x30);
}

#[test]
fn hostile_client_matrix() {
    let m = mount("hostile", Duration::from_secs(1));
    let f = open(&m.dir, "scratch0");
    const EPERM: i32 = libc::EPERM;
    const ENXIO: i32 = libc::ENXIO;
    const EINVAL: i32 = libc::EINVAL;
    let mut b8 = [0u8; 8];
    let cases: Vec<(&str, std::io::Result<usize>, i32)> = vec![
        ("write to the description", f.write_at(&[0; 4], 16), EPERM),
        ("read in a hole", f.read_at(&mut [0; 4], 0x800), ENXIO),
        (
            "read past the file",
            f.read_at(&mut [0; 4], 0x10_0000),
            ENXIO,
        ),
        (
            "read running past a region",
            f.read_at(&mut b8, REGS + 0xfc),
            ENXIO,
        ),
        (
            "offset + len wrapping",
            f.read_at(&mut [0; 4], u64::MAX - 1),
            EINVAL,
        ),
        ("unaligned", f.read_at(&mut [0; 4], REGS + 2), EINVAL),
        ("size 3", f.read_at(&mut [0; 3], REGS), EINVAL),
        ("size 5", f.read_at(&mut [0; 5], REGS), EINVAL),
        ("size 16", f.read_at(&mut [0; 16], REGS), EINVAL),
        ("write to read-only", f.write_at(&[0; 4], RO), EPERM),
        ("read from write-only", f.read_at(&mut [0; 4], WO), EPERM),
        ("write to a counter", f.write_at(&[0; 8], IRQ), EPERM),
        ("4-byte counter read", f.read_at(&mut [0; 4], IRQ), EINVAL),
        (
            "mask value 2",
            f.write_at(&2u32.to_le_bytes(), IRQ + 8),
            EINVAL,
        ),
        (
            "reserved word",
            f.write_at(&0u32.to_le_bytes(), IRQ + 12),
            EINVAL,
        ),
        (
            "mask of a non-maskable irq",
            f.write_at(&1u32.to_le_bytes(), IRQ + 0x28),
            EPERM,
        ),
        (
            "the device fails",
            f.read_at(&mut b8, REGS + 0xf8),
            libc::EIO,
        ),
    ];
    for (what, result, expected) in cases {
        // (pread at a negative offset is EINVAL in the kernel, before FUSE sees it.)
        assert_eq!(errno(result), expected, "{what}");
    }
    // Short reads at offset 0 are fine and return the start of the description.
    let mut five = [0u8; 5];
    assert_eq!(f.read_at(&mut five, 0).unwrap(), 5);
    assert_eq!(&five[..3], b"DFD");
    // The server is still serving.
    f.write_at(&7u32.to_le_bytes(), REGS).unwrap();
    let mut b = [0u8; 4];
    f.read_at(&mut b, REGS).unwrap();
    assert_eq!(u32::from_le_bytes(b), 7);
}

fn poll_pri(f: &File, timeout_ms: i32) -> bool {
    let mut fds = [libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    }];
    // SAFETY: fds is a valid array of one pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, timeout_ms) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    assert_eq!(fds[0].revents & !libc::POLLPRI, 0, "unexpected poll events");
    n == 1 && fds[0].revents & libc::POLLPRI != 0
}

#[test]
fn interrupts_through_poll_and_counters() {
    let m = mount("irq", Duration::from_secs(1));
    let a = open(&m.dir, "scratch0");
    let b = open(&m.dir, "scratch0");
    assert!(!poll_pri(&a, 0));
    // A waiter blocked in poll is woken by the event.
    let waiter = {
        let dir = m.dir.clone();
        std::thread::spawn(move || {
            let w = open(&dir, "scratch0");
            let t = Instant::now();
            let woke = poll_pri(&w, 5000);
            (woke, t.elapsed(), read_u64(&w, IRQ + 16))
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    a.write_at(&1u32.to_le_bytes(), REGS + 0x10).unwrap();
    let (woke, took, count) = waiter.join().unwrap();
    assert!(
        woke && took < Duration::from_secs(4),
        "woken after {took:?}"
    );
    assert_eq!(count, 1);
    // Each open sees every event; reading resets only its own counter.
    assert!(poll_pri(&a, 1000));
    assert_eq!(read_u64(&a, IRQ + 16), 1);
    assert_eq!(read_u64(&a, IRQ + 16), 0);
    assert_eq!(read_u64(&b, IRQ + 16), 1);
    // Masked: the event is held, one delivered on unmask.
    a.write_at(&1u32.to_le_bytes(), IRQ + 8).unwrap();
    let mut w = [0u8; 4];
    a.read_at(&mut w, IRQ + 8).unwrap();
    assert_eq!(u32::from_le_bytes(w), 1);
    for _ in 0..3 {
        a.write_at(&0u32.to_le_bytes(), REGS + 0x10).unwrap();
    }
    assert_eq!(read_u64(&a, IRQ), 0);
    assert!(!poll_pri(&a, 0));
    a.write_at(&0u32.to_le_bytes(), IRQ + 8).unwrap();
    assert_eq!(read_u64(&a, IRQ), 1);
}

#[test]
fn a_hung_device_is_bounded_and_recovers() {
    let m = mount("hang", Duration::from_millis(300));
    let f = open(&m.dir, "scratch0");
    let t = Instant::now();
    let e = f.write_at(&1500u32.to_le_bytes(), REGS + 0x18).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT));
    assert!(
        t.elapsed() < Duration::from_millis(1200),
        "took {:?}",
        t.elapsed()
    );
    // While the call is stuck the device answers EIO; another device is unaffected.
    assert_eq!(errno(f.read_at(&mut [0; 4], REGS)), libc::EIO);
    let other = open(&m.dir, "scratch1");
    other.write_at(&5u32.to_le_bytes(), REGS).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    f.write_at(&9u32.to_le_bytes(), REGS).unwrap();
    let mut b = [0u8; 4];
    f.read_at(&mut b, REGS).unwrap();
    assert_eq!(u32::from_le_bytes(b), 9);
}

#[test]
fn eight_clients_lose_no_update() {
    let m = mount("concurrent", Duration::from_secs(5));
    const OPS: u64 = 100_000;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let dir = m.dir.clone();
            std::thread::spawn(move || {
                let f = open(&dir, "scratch0");
                for _ in 0..OPS {
                    f.write_at(&1u64.to_le_bytes(), REGS + 8).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let f = open(&m.dir, "scratch0");
    assert_eq!(read_u64(&f, REGS + 8), 8 * OPS);
}

#[test]
fn a_hung_device_does_not_hold_the_mount() {
    let m = mount("hang-many", Duration::from_millis(400));
    // More hanging calls than the server has threads.
    let hangers: Vec<_> = (0..8)
        .map(|_| {
            let dir = m.dir.clone();
            std::thread::spawn(move || {
                let f = open(&dir, "scratch0");
                f.write_at(&1500u32.to_le_bytes(), REGS + 0x18).map(drop)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // Meanwhile the mount answers: the stuck device's description, another device.
    let t = Instant::now();
    let f = open(&m.dir, "scratch0");
    let mut page = vec![0u8; 4096];
    assert!(f.read_at(&mut page, 0).unwrap() > 0);
    let other = open(&m.dir, "scratch1");
    other.write_at(&3u32.to_le_bytes(), REGS).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "took {:?}",
        t.elapsed()
    );
    // Every hanging call is answered within the bound, ETIMEDOUT or EIO, none hangs.
    for h in hangers {
        let e = h.join().unwrap().unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ETIMEDOUT) | Some(libc::EIO)),
            "{e}"
        );
    }
    // Once the stuck call returns the device serves again.
    std::thread::sleep(Duration::from_millis(1600));
    f.write_at(&4u32.to_le_bytes(), REGS).unwrap();
}
