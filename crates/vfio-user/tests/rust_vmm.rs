//! devfd's vfio-user client source against an independent server: a small PCI device written
//! with rust-vmm's `vfio_user` crate (`Server` + `ServerBackend`), served on a socket in a
//! temporary directory, reached with `devfd_vfio_user::Client::connect` and, served on FUSE,
//! through its device file.
//!
//! The device: BAR0 is 4 KiB of 32-bit registers (0x00 an ID register 0x010000ed, 0x04 a
//! liveness register that reads back the complement of what was written, 0x24 an interrupt
//! status, 0x60 "raise" ORs into the status and asserts INTx, 0x64 "ack" clears status bits);
//! BAR2 is 4 KiB of memory backed by a file, mappable as one sparse-mmap area (so its region
//! info needs a capability chain and the argsz retry); the configuration space is 256 bytes;
//! INTx is level-triggered and automasked, as VFIO's is (the server masks it when it signals
//! the eventfd and signals again on UNMASK while the line is still asserted).

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use devfd_client::DeviceFile;
use devfd_device::{Device, Subscriber};
use devfd_format::Location;
use devfd_format::wire::{
    BAR_PREFETCH, IRQ_AUTOMASKED, IRQ_KIND_INTX, IRQ_KIND_MSIX, IRQ_LEVEL, IRQ_MASKABLE,
    REGION_READ, REGION_WRITE,
};
use devfd_vfio_user::{Client, DMA_REGION};
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE,
    VFIO_IRQ_INFO_NORESIZE, VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_ACTION_TYPE_MASK, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_BAR2_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_MMAP,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE, vfio_region_info,
    vfio_region_sparse_mmap_area,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

const VENDOR: u16 = 0x1234;
const DEVICE: u16 = 0x11e9;
const SUBSYSTEM_VENDOR: u16 = 0x1af4;
const SUBSYSTEM: u16 = 0x1100;
/// Base class 0x08 (system peripheral), subclass 0x80 (other), programming interface 0.
const CLASS: u32 = 0x08_8000;
const REVISION: u8 = 0x01;

const BAR0_SIZE: u64 = 0x1000;
const BAR2_SIZE: u64 = 0x1000;
const REG_ID: u64 = 0x00;
const REG_LIVENESS: u64 = 0x04;
const REG_STATUS: u64 = 0x24;
const REG_RAISE: u64 = 0x60;
const REG_ACK: u64 = 0x64;
const ID: u32 = 0x0100_00ed;

fn io_err(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

/// One `DEVICE_SET_IRQS` as the backend received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SetIrqs {
    index: u32,
    flags: u32,
    start: u32,
    count: u32,
    fds: usize,
}

/// What the backend saw, for the test to check (shared with the server thread).
#[derive(Default)]
struct Log {
    set_irqs: Vec<SetIrqs>,
    resets: usize,
    /// DMA_MAPs: (flags, offset, address, size) and the fd that came with it.
    dma_maps: Vec<(u32, u64, u64, u64, Option<File>)>,
    /// Times the backend wrote the INTx eventfd.
    intx_signals: usize,
}

/// The test device, as a rust-vmm `ServerBackend`.
struct TestDevice {
    config: [u8; 256],
    bar2: File,
    liveness: u32,
    status: u32,
    intx: Option<File>,
    intx_masked: bool,
    msix: Vec<Option<File>>,
    log: Arc<Mutex<Log>>,
}

impl TestDevice {
    fn new(bar2: File, msix_vectors: u32, log: Arc<Mutex<Log>>) -> Self {
        let mut c = [0u8; 256];
        c[0x00..0x02].copy_from_slice(&VENDOR.to_le_bytes());
        c[0x02..0x04].copy_from_slice(&DEVICE.to_le_bytes());
        c[0x08] = REVISION;
        c[0x09..0x0c].copy_from_slice(&CLASS.to_le_bytes()[..3]);
        // BAR0: 32-bit memory, not prefetchable; BAR2: 32-bit memory, prefetchable.
        c[0x10..0x14].copy_from_slice(&0u32.to_le_bytes());
        c[0x18..0x1c].copy_from_slice(&8u32.to_le_bytes());
        c[0x2c..0x2e].copy_from_slice(&SUBSYSTEM_VENDOR.to_le_bytes());
        c[0x2e..0x30].copy_from_slice(&SUBSYSTEM.to_le_bytes());
        c[0x3d] = 1; // INTA#
        TestDevice {
            config: c,
            bar2,
            liveness: 0,
            status: 0,
            intx: None,
            intx_masked: false,
            msix: (0..msix_vectors).map(|_| None).collect(),
            log,
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Level-triggered, automasked INTx: while asserted and unmasked, signal once and mask.
    fn update_intx(&mut self) {
        if self.status == 0 || self.intx_masked {
            return;
        }
        if let Some(fd) = &mut self.intx {
            fd.write_all(&1u64.to_ne_bytes())
                .expect("signalling the INTx eventfd");
            self.intx_masked = true;
            self.log().intx_signals += 1;
        }
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = offset + i;
            match at {
                // Command register.
                0x04..=0x05 => self.config[at] = b,
                // BAR0 and BAR2 address bits (sizing reads back the size mask); flag bits stay.
                0x10..=0x13 | 0x18..=0x1b => {
                    let keep = if at.is_multiple_of(4) { 0x0f } else { 0 };
                    let size_mask = if at % 4 == 1 { 0xf0 } else { 0xff };
                    self.config[at] = (self.config[at] & keep) | (b & size_mask & !keep);
                }
                _ => {}
            }
        }
    }
}

impl ServerBackend for TestDevice {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> std::io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                let start = usize::try_from(offset).map_err(|_| io_err(libc::EINVAL))?;
                let src = self
                    .config
                    .get(start..start + data.len())
                    .ok_or(io_err(libc::EINVAL))?;
                data.copy_from_slice(src);
            }
            VFIO_PCI_BAR0_REGION_INDEX => {
                if data.len() != 4 || !offset.is_multiple_of(4) || offset >= BAR0_SIZE {
                    return Err(io_err(libc::EINVAL));
                }
                let v = match offset {
                    REG_ID => ID,
                    REG_LIVENESS => !self.liveness,
                    REG_STATUS => self.status,
                    _ => 0,
                };
                data.copy_from_slice(&v.to_le_bytes());
            }
            VFIO_PCI_BAR2_REGION_INDEX => {
                if offset + data.len() as u64 > BAR2_SIZE {
                    return Err(io_err(libc::EINVAL));
                }
                self.bar2.read_exact_at(data, offset)?;
            }
            _ => return Err(io_err(libc::EINVAL)),
        }
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> std::io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                let start = usize::try_from(offset).map_err(|_| io_err(libc::EINVAL))?;
                if start + data.len() > self.config.len() {
                    return Err(io_err(libc::EINVAL));
                }
                self.config_write(start, data);
            }
            VFIO_PCI_BAR0_REGION_INDEX => {
                let Ok(bytes) = <[u8; 4]>::try_from(data) else {
                    return Err(io_err(libc::EINVAL));
                };
                if !offset.is_multiple_of(4) || offset >= BAR0_SIZE {
                    return Err(io_err(libc::EINVAL));
                }
                let v = u32::from_le_bytes(bytes);
                match offset {
                    REG_LIVENESS => self.liveness = v,
                    REG_RAISE => {
                        self.status |= v;
                        self.update_intx();
                    }
                    REG_ACK => self.status &= !v,
                    _ => {}
                }
            }
            VFIO_PCI_BAR2_REGION_INDEX => {
                if offset + data.len() as u64 > BAR2_SIZE {
                    return Err(io_err(libc::EINVAL));
                }
                self.bar2.write_all_at(data, offset)?;
            }
            _ => return Err(io_err(libc::EINVAL)),
        }
        Ok(())
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> std::io::Result<()> {
        self.log()
            .dma_maps
            .push((flags.bits(), offset, address, size, fd));
        Ok(())
    }

    fn dma_unmap(
        &mut self,
        _flags: DmaUnmapFlags,
        _address: u64,
        _size: u64,
    ) -> std::io::Result<()> {
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.liveness = 0;
        self.status = 0;
        self.intx_masked = false;
        self.log().resets += 1;
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> std::io::Result<()> {
        self.log().set_irqs.push(SetIrqs {
            index,
            flags,
            start,
            count,
            fds: fds.len(),
        });
        let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
        let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
        match (index, data, action) {
            (VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER) => {
                if start != 0 || count > 1 || fds.len() > 1 {
                    return Err(io_err(libc::EINVAL));
                }
                self.intx = fds.into_iter().next();
                self.update_intx();
            }
            (VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_MASK) => {
                self.intx_masked = true;
            }
            (VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_ACTION_UNMASK) => {
                self.intx_masked = false;
                self.update_intx();
            }
            (VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER) => {
                let end = start.checked_add(count).ok_or(io_err(libc::EINVAL))?;
                if end as usize > self.msix.len()
                    || (!fds.is_empty() && fds.len() != count as usize)
                {
                    return Err(io_err(libc::EINVAL));
                }
                let mut fds = fds.into_iter();
                for slot in &mut self.msix[start as usize..end as usize] {
                    *slot = fds.next();
                }
            }
            _ => return Err(io_err(libc::EINVAL)),
        }
        Ok(())
    }
}

fn regions(bar2: &File) -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let mut info = vfio_region_info {
                argsz: size_of::<vfio_region_info>() as u32,
                index,
                ..Default::default()
            };
            let mut sparse_areas = Vec::new();
            let mut mmap_fd = None;
            let rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
            match index {
                VFIO_PCI_BAR0_REGION_INDEX => {
                    info.size = BAR0_SIZE;
                    info.flags = rw;
                }
                VFIO_PCI_BAR2_REGION_INDEX => {
                    info.size = BAR2_SIZE;
                    info.flags = rw | VFIO_REGION_INFO_FLAG_MMAP;
                    sparse_areas.push(vfio_user::SparseArea {
                        area: vfio_region_sparse_mmap_area {
                            offset: 0,
                            size: BAR2_SIZE,
                        },
                    });
                    mmap_fd = Some(bar2.as_raw_fd());
                }
                VFIO_PCI_CONFIG_REGION_INDEX => {
                    info.size = 256;
                    info.flags = rw;
                }
                _ => {}
            }
            ServerRegion {
                region_info: info,
                sparse_areas,
                mmap_fd,
            }
        })
        .collect()
}

fn irqs(msix_vectors: u32) -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| match index {
            VFIO_PCI_INTX_IRQ_INDEX => IrqInfo {
                index,
                flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
                count: 1,
            },
            VFIO_PCI_MSIX_IRQ_INDEX if msix_vectors > 0 => IrqInfo {
                index,
                flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
                count: msix_vectors,
            },
            // MSI and the others: present with no vectors.
            _ => IrqInfo {
                index,
                flags: 0,
                count: 0,
            },
        })
        .collect()
}

/// A rust-vmm server with the test device, accepting one client on a socket in a temporary
/// directory (`vfio_user::Server::run` serves one connection and returns when it closes).
struct Served {
    dir: tempfile::TempDir,
    socket: PathBuf,
    log: Arc<Mutex<Log>>,
    thread: Option<JoinHandle<Result<(), vfio_user::Error>>>,
}

impl Served {
    fn start(msix_vectors: u32) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("rust-vmm.sock");
        let bar2 = tempfile::tempfile().unwrap();
        bar2.set_len(BAR2_SIZE).unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let server = Server::new(&socket, true, irqs(msix_vectors), regions(&bar2)).unwrap();
        let mut device = TestDevice::new(bar2, msix_vectors, log.clone());
        let thread = std::thread::Builder::new()
            .name("rust-vmm-server".into())
            .spawn(move || server.run(&mut device))
            .unwrap();
        Served {
            dir,
            socket,
            log,
            thread: Some(thread),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the server to see the client leave; its `run` must end cleanly.
    fn finish(mut self) {
        let thread = self.thread.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the rust-vmm server did not see the client leave"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        thread
            .join()
            .expect("the rust-vmm server thread panicked")
            .expect("the rust-vmm server ended with an error");
        let _ = &self.dir;
    }
}

fn read_u32(client: &Client, region: u32, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    client.read(region, offset, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn write_u32(client: &Client, region: u32, offset: u64, value: u32) {
    client.write(region, offset, &value.to_le_bytes()).unwrap();
}

/// Sums `sub`'s INTx events until there are `want`, or the timeout passes.
fn events(sub: &Subscriber, want: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut n = 0;
    loop {
        n += sub.take(0, 0).unwrap();
        if n >= want || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

const IRQ_WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(100);

#[test]
fn description_from_a_rust_vmm_server() {
    let served = Served::start(0);
    let client = Client::connect(&served.socket, None).expect("connect to the rust-vmm server");
    assert_eq!(client.kind(), "vfio-user");

    let info = client.server_info();
    assert_eq!(info.num_regions, VFIO_PCI_NUM_REGIONS);
    assert_eq!(info.num_irqs, VFIO_PCI_NUM_IRQS);
    // BAR2's capability chain does not fit the first 32-byte answer: the client asked again
    // with the argsz the server reported, and got the sparse-mmap area.
    let bar2 = info.regions.iter().find(|r| r.index == 2).unwrap();
    assert_eq!(bar2.sparse_areas(), Some(&[(0, BAR2_SIZE)][..]));

    let d = devfd_format::parse(client.description()).expect("the description validates");
    let id = d.pci_id().expect("a PCI identity");
    assert_eq!(
        (id.vendor, id.device, id.class, id.revision),
        (VENDOR, DEVICE, CLASS, REVISION)
    );
    assert_eq!(
        (id.subsystem_vendor, id.subsystem_device),
        (SUBSYSTEM_VENDOR, SUBSYSTEM)
    );
    // Regions of size 0 (BAR1, BAR3–5, ROM, VGA) are left out.
    let indices: Vec<u32> = d.regions().map(|r| r.index).collect();
    assert_eq!(indices, [0, 2, 7]);
    let r0 = d.region(0).unwrap();
    assert_eq!(r0.size, BAR0_SIZE);
    assert_eq!(
        r0.flags & (REGION_READ | REGION_WRITE),
        REGION_READ | REGION_WRITE
    );
    assert_eq!(r0.location(), Location::PciBar { bar: 0, flags: 0 });
    let r2 = d.region(2).unwrap();
    assert_eq!(r2.size, BAR2_SIZE);
    assert_eq!(
        r2.location(),
        Location::PciBar {
            bar: 2,
            flags: BAR_PREFETCH
        }
    );
    let config = d.region(7).unwrap();
    assert_eq!(config.size, 256);
    assert_eq!(config.location(), Location::PciConfig);

    let irqs: Vec<_> = d.interrupts().collect();
    assert_eq!(
        irqs.len(),
        1,
        "INTx only: MSI and the others have no vectors"
    );
    assert_eq!(
        (irqs[0].index, irqs[0].count, irqs[0].kind),
        (0, 1, IRQ_KIND_INTX)
    );
    let want = IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED;
    assert_eq!(irqs[0].flags & want, want);
    // The server said it can reset: the device file offers a reset word.
    assert!(d.device().reset_offset().is_some());

    // The client registered one eventfd for INTx, nothing else.
    assert_eq!(
        served.log().set_irqs,
        [SetIrqs {
            index: 0,
            flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            start: 0,
            count: 1,
            fds: 1,
        }]
    );
    drop(client);
    served.finish();
}

#[test]
fn registers_through_the_device_trait() {
    let served = Served::start(0);
    let client = Client::connect(&served.socket, None).unwrap();
    assert_eq!(read_u32(&client, 0, REG_ID), ID);
    for v in [0x1234_5678, 0, 0xffff_ffff, 0xdead_beef] {
        write_u32(&client, 0, REG_LIVENESS, v);
        assert_eq!(read_u32(&client, 0, REG_LIVENESS), !v);
    }
    // Configuration space through REGION_READ of region 7.
    let mut c = [0u8; 4];
    client.read(7, 0, &mut c).unwrap();
    assert_eq!(
        u32::from_le_bytes(c),
        u32::from(VENDOR) | u32::from(DEVICE) << 16
    );
    // BAR2 memory, whole and in pieces; the server stores it in its file.
    let pattern: Vec<u8> = (0..BAR2_SIZE).map(|i| (i * 7) as u8).collect();
    client.write(2, 0, &pattern).unwrap();
    let mut back = vec![0u8; BAR2_SIZE as usize];
    client.read(2, 0, &mut back).unwrap();
    assert_eq!(back, pattern);
    let mut piece = [0u8; 3];
    client.read(2, 0x101, &mut piece).unwrap();
    assert_eq!(piece, pattern[0x101..0x104]);
    // The server refuses a 2-byte register read (an error reply, errno 0 from rust-vmm's
    // server for a backend error); the connection goes on.
    let mut two = [0u8; 2];
    assert!(client.read(0, REG_ID, &mut two).is_err());
    // Past the end of a region: refused by the client itself.
    assert!(client.read(0, BAR0_SIZE, &mut c).is_err());
    assert_eq!(read_u32(&client, 0, REG_ID), ID);
    // DEVICE_RESET reaches the backend.
    client.reset();
    assert_eq!(served.log().resets, 1);
    assert_eq!(read_u32(&client, 0, REG_LIVENESS), !0);
    drop(client);
    served.finish();
}

#[test]
fn intx_from_the_server_eventfd() {
    let served = Served::start(0);
    let client = Client::connect(&served.socket, None).unwrap();
    let sub = client.interrupts().subscribe();
    assert_eq!(sub.take(0, 0), Some(0));

    write_u32(&client, 0, REG_RAISE, 1);
    assert_eq!(events(&sub, 1, IRQ_WAIT), 1, "INTx did not arrive");
    assert_eq!(read_u32(&client, 0, REG_STATUS), 1);
    // Automasked on both sides: no second event while masked, though the line is asserted.
    write_u32(&client, 0, REG_RAISE, 2);
    assert_eq!(events(&sub, 1, QUIET), 0);
    assert_eq!(client.interrupts().is_masked(0, 0), Some(true));
    // Unmasking (SET_IRQS DATA_NONE|ACTION_UNMASK) with the line still asserted fires again.
    client.set_irq_mask(0, 0, false).unwrap();
    assert_eq!(
        events(&sub, 1, IRQ_WAIT),
        1,
        "no INTx after unmasking an asserted line"
    );
    // Acknowledged and unmasked: quiet until the next raise.
    write_u32(&client, 0, REG_ACK, 3);
    client.set_irq_mask(0, 0, false).unwrap();
    assert_eq!(events(&sub, 1, QUIET), 0);
    write_u32(&client, 0, REG_RAISE, 4);
    assert_eq!(
        events(&sub, 1, IRQ_WAIT),
        1,
        "INTx did not arrive after the ack"
    );
    assert_eq!(served.log().intx_signals, 3);
    let unmasks = served
        .log()
        .set_irqs
        .iter()
        .filter(|s| s.flags == VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK)
        .count();
    assert_eq!(unmasks, 2);
    drop(client);
    served.finish();
}

#[test]
fn eventfds_respect_the_servers_max_msg_fds() {
    // rust-vmm's server advertises max_msg_fds 1: the client must register MSI-X vectors one
    // eventfd per SET_IRQS (the protocol's rule: never more fds than the receiver's limit).
    let served = Served::start(3);
    let client = Client::connect(&served.socket, None).unwrap();
    let d = devfd_format::parse(client.description()).unwrap();
    let msix = d.interrupt(2).expect("MSI-X in the description");
    assert_eq!((msix.count, msix.kind), (3, IRQ_KIND_MSIX));
    let log = served.log();
    let msix_sets: Vec<SetIrqs> = log
        .set_irqs
        .iter()
        .copied()
        .filter(|s| s.index == 2)
        .collect();
    assert!(
        log.set_irqs.iter().all(|s| s.fds <= 1),
        "more fds in one message than the server takes: {:?}",
        log.set_irqs
    );
    let flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    assert_eq!(
        msix_sets,
        (0..3)
            .map(|start| SetIrqs {
                index: 2,
                flags,
                start,
                count: 1,
                fds: 1
            })
            .collect::<Vec<_>>()
    );
    drop(log);
    drop(client);
    served.finish();
}

#[test]
fn dma_window_shared_with_the_server() {
    let served = Served::start(0);
    let size = 1 << 16;
    let client = Client::connect(&served.socket, Some(size)).unwrap();
    let d = devfd_format::parse(client.description()).unwrap();
    assert_eq!(d.region(DMA_REGION).expect("the DMA window").size, size);
    let map = served.log().dma_maps.pop().expect("a DMA_MAP");
    let (flags, offset, address, map_size, fd) = map;
    assert_eq!((flags, offset, map_size), (0b11, 0, size));
    assert_eq!(address, devfd_emu::DEFAULT_BUS_ADDRESS);
    let memory = fd.expect("the DMA_MAP carried the window's fd");
    // The server writes through its fd, the client reads the window, and back.
    memory.write_all_at(b"from the server", 0x100).unwrap();
    let mut buf = [0u8; 15];
    client.read(DMA_REGION, 0x100, &mut buf).unwrap();
    assert_eq!(&buf, b"from the server");
    client
        .write(DMA_REGION, 0x2000, b"from the client")
        .unwrap();
    memory.read_exact_at(&mut buf, 0x2000).unwrap();
    assert_eq!(&buf, b"from the client");
    drop(client);
    served.finish();
}

/// The device file of a device served by an independent vfio-user implementation: the
/// client source on a real FUSE mount (needs root and /dev/fuse).
#[test]
fn device_file_of_a_rust_vmm_server() {
    let served = Served::start(0);
    let client = Client::connect(&served.socket, None).unwrap();
    let mount = tempfile::tempdir().unwrap();
    let fuse = devfd_fuse::serve(
        vec![("rv0".into(), Arc::new(client) as Arc<dyn Device>)],
        devfd_fuse::ServeOptions::new(mount.path()),
    )
    .expect("mount (needs root and /dev/fuse)");
    let path: &Path = &mount.path().join("rv0");
    let dev = DeviceFile::open(path).unwrap();
    let id = dev.description().pci_id().unwrap();
    assert_eq!((id.vendor, id.device), (VENDOR, DEVICE));
    assert_eq!(dev.read_u32(0, REG_ID).unwrap(), ID);
    // The same register by a plain pread at BAR0's file offset.
    let bar0 = dev.pci_bar(0).unwrap();
    let mut raw = [0u8; 4];
    assert_eq!(
        dev.file().read_at(&mut raw, bar0.offset + REG_ID).unwrap(),
        4
    );
    assert_eq!(u32::from_le_bytes(raw), ID);
    dev.write_u32(0, REG_LIVENESS, 0x0f0f_0f0f).unwrap();
    assert_eq!(dev.read_u32(0, REG_LIVENESS).unwrap(), 0xf0f0_f0f0);
    assert_eq!(dev.read_u16(7, 0).unwrap(), VENDOR);
    // INTx through the device file: raise, wait for POLLPRI and the counter, acknowledge and
    // unmask through the control window (SET_IRQS UNMASK reaches the server), raise again.
    dev.write_u32(0, REG_RAISE, 1).unwrap();
    assert_eq!(dev.wait_interrupt(0, Some(IRQ_WAIT)).unwrap(), 1);
    assert!(dev.is_masked(0, 0).unwrap(), "INTx is automasked");
    dev.write_u32(0, REG_ACK, 1).unwrap();
    dev.unmask(0, 0).unwrap();
    dev.write_u32(0, REG_RAISE, 1).unwrap();
    assert_eq!(dev.wait_interrupt(0, Some(IRQ_WAIT)).unwrap(), 1);
    assert_eq!(served.log().intx_signals, 2);
    drop(dev);
    fuse.unmount().unwrap();
    // Unmounting dropped the last reference to the client, which closed its socket.
    served.finish();
}
