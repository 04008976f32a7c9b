//! Interrupt counters, masks and waiting, on plain files (which never raise POLLPRI).

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use devfd_client::{ClientError, DeviceFile};

/// CPU time used by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Waits on `irq` of `dev` for `timeout`: it must time out after at least `timeout`, using
/// little CPU (no spinning).
fn assert_waits_out(dev: &DeviceFile, irq: u32, timeout: Duration) {
    let cpu = thread_cpu_time();
    let start = Instant::now();
    let err = dev.wait_interrupt(irq, Some(timeout)).unwrap_err();
    let elapsed = start.elapsed();
    let used = thread_cpu_time() - cpu;
    assert!(matches!(err, ClientError::TimedOut), "{err:?}");
    assert_eq!(err.errno(), Some(libc::ETIMEDOUT));
    assert!(elapsed >= timeout, "returned after {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "took {elapsed:?}"
    );
    assert!(used < Duration::from_millis(50), "used {used:?} of CPU");
}

#[test]
fn wait_on_a_blob_times_out() {
    // The control windows are past the end of the file: no events, ever.
    let dev = DeviceFile::open_read_only(common::golden("edu.bin")).unwrap();
    assert_waits_out(&dev, 0, Duration::from_millis(300));
    assert_waits_out(&dev, 1, Duration::from_millis(50));
    let nvme = DeviceFile::open_read_only(common::golden("nvme-like.bin")).unwrap();
    assert_waits_out(&nvme, 0, Duration::from_millis(100)); // 65 vectors
    // A zero timeout checks once.
    assert!(matches!(
        dev.wait_interrupt(0, Some(Duration::ZERO)),
        Err(ClientError::TimedOut)
    ));
}

#[test]
fn wait_on_a_padded_blob_times_out() {
    // The control windows read as zero counters.
    let dir = tempfile::tempdir().unwrap();
    let path = common::golden_copy(dir.path(), "pl031.bin", 0x2010);
    let dev = DeviceFile::open(&path).unwrap();
    assert_eq!(dev.interrupt_count(0, 0).unwrap(), 0);
    assert_waits_out(&dev, 0, Duration::from_millis(200));
}

#[test]
fn wait_returns_pending_counts() {
    // A plain file's "counters" are whatever bytes are there (and never reset).
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::mmap_description(0x1000);
    let path = common::write_padded(dir.path(), "dev", &bytes, 0x2040);
    let raw = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    use std::os::unix::fs::FileExt;
    raw.write_at(&3u64.to_le_bytes(), 0x2000 + 16).unwrap();
    raw.write_at(&4u64.to_le_bytes(), 0x2000 + 48).unwrap();

    let dev = DeviceFile::open(&path).unwrap();
    let start = Instant::now();
    assert_eq!(
        dev.wait_interrupt(0, Some(Duration::from_secs(5))).unwrap(),
        7
    );
    assert_eq!(dev.wait_interrupt(0, None).unwrap(), 7);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(dev.interrupt_count(0, 0).unwrap(), 0);
    assert_eq!(dev.interrupt_count(0, 1).unwrap(), 3);
    assert_eq!(dev.interrupt_count(0, 3).unwrap(), 4);
}

#[test]
fn counters_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::golden_copy(dir.path(), "edu.bin", 0x10_2020);
    let dev = DeviceFile::open(&path).unwrap();
    let msi = dev.resolve_interrupt("msi").unwrap();

    assert!(!dev.is_masked(msi, 0).unwrap());
    dev.mask(msi, 0).unwrap();
    assert!(dev.is_masked(msi, 0).unwrap());
    // A 4-byte little-endian 1 at control_offset + 8.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[0x10_2018..0x10_201c], [1, 0, 0, 0]);
    dev.unmask(msi, 0).unwrap();
    assert!(!dev.is_masked(msi, 0).unwrap());
    assert_eq!(std::fs::read(&path).unwrap()[0x10_2018], 0);
    dev.mask(0, 0).unwrap();
    assert_eq!(std::fs::read(&path).unwrap()[0x10_2008], 1);

    assert!(matches!(
        dev.mask(msi, 1),
        Err(ClientError::NoSuchVector {
            interrupt: 1,
            vector: 1,
            count: 1
        })
    ));
    assert!(matches!(
        dev.interrupt_count(1, 1),
        Err(ClientError::NoSuchVector { .. })
    ));
    assert!(matches!(
        dev.interrupt_count(2, 0),
        Err(ClientError::NoSuchInterrupt(2))
    ));
    assert!(matches!(
        dev.wait_interrupt(5, None),
        Err(ClientError::NoSuchInterrupt(5))
    ));
}

#[test]
fn blob_counters_are_a_clear_error() {
    let dev = DeviceFile::open_read_only(common::golden("edu.bin")).unwrap();
    let err = dev.interrupt_count(0, 0).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Short {
                offset: 0x10_2000,
                len: 8,
                done: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        dev.is_masked(1, 0),
        Err(ClientError::Short {
            offset: 0x10_2018,
            len: 4,
            ..
        })
    ));
}

#[test]
fn unmaskable_interrupts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = common::mmap_description(0x1000);
    let path = common::write_padded(dir.path(), "dev", &bytes, 0x2040);
    let dev = DeviceFile::open(&path).unwrap();
    let err = dev.mask(0, 2).unwrap_err();
    assert!(matches!(err, ClientError::NotMaskable(0)));
    assert_eq!(err.errno(), Some(libc::EPERM));
    assert!(matches!(dev.unmask(0, 0), Err(ClientError::NotMaskable(0))));
    assert!(
        std::fs::read(&path).unwrap()[0x2000..]
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn file_descriptor_is_exposed() {
    let dev = DeviceFile::open_read_only(common::golden("edu.bin")).unwrap();
    assert_eq!(dev.as_raw_fd(), dev.as_fd().as_raw_fd());
    assert_eq!(dev.as_raw_fd(), dev.file().as_raw_fd());
    assert!(!dev.is_writable());
}
