//! Bulk reads of an mmap region backed by shared memory are served from that memory (one
//! `pread` of the memory file) and return exactly the region's bytes; small reads and every
//! error still go through the device model and the region map.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use devfd_device::{Device, DeviceError, Interrupts};
use devfd_format::model::{DeviceDesc, RegionDesc};
use devfd_format::wire::*;
use devfd_format::{Bus, Location};
use devfd_fuse::{ServeOptions, serve};

const REGION: u64 = 0x1000;
const SIZE: usize = 64 * 1024;

/// One mmap region of `SIZE` bytes in a memfd; counts the reads that reach the model.
struct Shm {
    desc: Vec<u8>,
    memory: File,
    model_reads: AtomicU64,
    irq: Interrupts,
}

impl Shm {
    fn new() -> Arc<Shm> {
        let mut d = DeviceDesc::new(Bus::Other(b'M'));
        d.label = Some("shm".into());
        d.regions.push(RegionDesc {
            index: 0,
            offset: REGION,
            size: SIZE as u64,
            flags: REGION_READ | REGION_WRITE | REGION_MMAP,
            location: Location::None,
            dt: None,
            label: None,
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        let desc = d.build().unwrap();
        let irq = Interrupts::new(&devfd_format::parse(&desc).unwrap());
        // SAFETY: a NUL-terminated name and valid flags; checked below.
        let fd = unsafe { libc::memfd_create(c"shared-read-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: a new descriptor nothing else owns.
        let memory = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let pattern: Vec<u8> = (0..SIZE).map(|i| (i * 7 + i / 251) as u8).collect();
        memory.write_all_at(&pattern, 0).unwrap();
        Arc::new(Shm {
            desc,
            memory,
            model_reads: AtomicU64::new(0),
            irq,
        })
    }
}

impl Device for Shm {
    fn description(&self) -> &[u8] {
        &self.desc
    }

    fn read(&self, _region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        self.model_reads.fetch_add(1, Ordering::SeqCst);
        self.memory
            .read_exact_at(data, offset)
            .map_err(|_| DeviceError::Failed)
    }

    fn write(&self, _region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.memory
            .write_all_at(data, offset)
            .map_err(|_| DeviceError::Failed)
    }

    fn interrupts(&self) -> &Interrupts {
        &self.irq
    }

    fn shared_memory(&self, region: u32) -> Option<BorrowedFd<'_>> {
        (region == 0).then(|| self.memory.as_fd())
    }

    fn kind(&self) -> &str {
        "shm"
    }
}

#[test]
fn bulk_reads_come_from_the_shared_memory() {
    let dir = std::env::temp_dir().join(format!("devfd-fuse-shared-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dev = Shm::new();
    let server = serve(
        vec![("shm0".into(), dev.clone() as Arc<dyn Device>)],
        ServeOptions::new(&dir),
    )
    .expect("mount (needs root and /dev/fuse)");
    let f = File::options()
        .read(true)
        .write(true)
        .open(dir.join("shm0"))
        .unwrap();
    let mut expected = vec![0u8; SIZE];
    dev.memory.read_exact_at(&mut expected, 0).unwrap();

    // Whole region, then an unaligned bulk read that ends at the region's end.
    let mut all = vec![0u8; SIZE];
    assert_eq!(f.read_at(&mut all, REGION).unwrap(), SIZE);
    assert_eq!(all, expected);
    let mut tail = vec![0u8; 5000];
    let at = SIZE - 5000;
    assert_eq!(f.read_at(&mut tail, REGION + at as u64).unwrap(), 5000);
    assert_eq!(tail, expected[at..]);
    assert_eq!(dev.model_reads.load(Ordering::SeqCst), 0);

    // A write through the device file shows in the next bulk read.
    f.write_all_at(b"written through the file", REGION + 100)
        .unwrap();
    assert_eq!(f.read_at(&mut all, REGION).unwrap(), SIZE);
    assert_eq!(&all[100..124], b"written through the file");

    // Small reads still reach the model.
    let mut word = [0u8; 4];
    assert_eq!(f.read_at(&mut word, REGION + 100).unwrap(), 4);
    assert_eq!(&word, b"writ");
    assert_eq!(dev.model_reads.load(Ordering::SeqCst), 1);

    // Past the region's end: ENXIO from the region map, as before.
    let err = f
        .read_at(&mut tail, REGION + (SIZE - 100) as u64)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENXIO));

    drop(f);
    server.unmount().unwrap();
    let _ = std::fs::remove_dir(&dir);
}
