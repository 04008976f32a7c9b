//! Register and bulk access: client-side checks, errors from the file, little-endian values.

mod common;

use std::fs;

use devfd_client::{ClientError, DeviceFile, MAX_CHUNK, Op};
use devfd_format::wire::{REGION_MMAP, REGION_READ, REGION_WRITE};

#[test]
fn blob_has_no_live_regions() {
    let dev = DeviceFile::open_read_only(common::golden("edu.bin")).unwrap();
    let bar0 = dev.pci_bar(0).unwrap();
    // BAR 0 is at 0x1000, past the end of the 340-byte blob: a clear error, not 0.
    let err = dev.read_u32(bar0, 0).unwrap_err();
    match &err {
        ClientError::Short {
            op: Op::Read,
            offset: 0x1000,
            len: 4,
            done: 0,
        } => {}
        other => panic!("expected Short, got {other:?}"),
    }
    assert!(err.to_string().contains("0x1000"), "{err}");
    assert!(err.to_string().contains("end of file"), "{err}");
    assert!(matches!(
        dev.read_u64(0, 8),
        Err(ClientError::Short { offset: 0x1008, .. })
    ));
    assert!(matches!(
        dev.read_u8(7, 0xff),
        Err(ClientError::Short { .. })
    ));
    let mut buf = [0u8; 64];
    assert!(matches!(
        dev.read_bulk(7, 0, &mut buf),
        Err(ClientError::Short {
            offset: 0x10_1000,
            done: 0,
            ..
        })
    ));
    // Opened read-only: the kernel refuses the write.
    let err = dev.write_u32(bar0, 0, 1).unwrap_err();
    assert!(matches!(err, ClientError::Io { op: Op::Write, .. }));
    assert_eq!(err.errno(), Some(libc::EBADF));
}

#[test]
fn checks_come_before_the_syscall() {
    // A read-only blob: any syscall at these offsets would give Short or EBADF, so the
    // errors below prove none was made.
    let dev = DeviceFile::open_read_only(common::golden("nvme-like.bin")).unwrap();
    let bar4 = dev.pci_bar(4).unwrap(); // 32 bytes, register-like, rw
    let oor = |r: Result<u32, ClientError>| {
        matches!(
            r,
            Err(ClientError::OutOfRange {
                region: 4,
                size: 32,
                ..
            })
        )
    };
    assert!(oor(dev.read_u32(bar4, 32)));
    assert!(oor(dev.read_u32(bar4, 29)));
    assert!(oor(dev.read_u32(bar4, u64::MAX)));
    assert!(oor(dev.read_u32(bar4, u64::MAX - 2)));
    assert!(matches!(
        dev.read_u64(bar4, 32),
        Err(ClientError::OutOfRange { len: 8, .. })
    ));
    assert!(matches!(
        dev.write_u8(bar4, 32, 0),
        Err(ClientError::OutOfRange { .. })
    ));
    let err = dev.read_u16(bar4, 40).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENXIO));
    assert_eq!(
        err.to_string(),
        "2 bytes at offset 0x28 do not fit in region 4 (0x20 bytes)"
    );

    // Register-like: natural alignment.
    assert!(matches!(
        dev.read_u32(bar4, 2),
        Err(ClientError::Misaligned {
            region: 4,
            offset: 2,
            width: 4
        })
    ));
    assert!(matches!(
        dev.write_u16(bar4, 1, 0),
        Err(ClientError::Misaligned { .. })
    ));
    assert!(matches!(
        dev.read_u64(bar4, 4),
        Err(ClientError::Misaligned { .. })
    ));
    assert_eq!(
        dev.read_u64(bar4, 4).unwrap_err().errno(),
        Some(libc::EINVAL)
    );
    // Range is checked before alignment (SPEC.md §6.6 order).
    assert!(matches!(
        dev.read_u64(bar4, 28),
        Err(ClientError::OutOfRange { .. })
    ));

    // Memory-like regions take any alignment: this gets as far as the file (Short).
    assert!(matches!(
        dev.read_u32(0, 3),
        Err(ClientError::Short { offset: 0x1003, .. })
    ));

    // Flags: the ROM is read-only.
    let rom = dev.pci_rom().unwrap();
    let err = dev.write_u32(rom, 0, 0).unwrap_err();
    assert!(matches!(
        err,
        ClientError::NotPermitted {
            region: 6,
            op: Op::Write
        }
    ));
    assert_eq!(err.errno(), Some(libc::EPERM));
    assert!(matches!(
        dev.write_bulk(rom, 0, &[0; 16]),
        Err(ClientError::NotPermitted { .. })
    ));

    // Unknown region.
    assert!(matches!(
        dev.read_u32(1, 0),
        Err(ClientError::NoSuchRegion(1))
    ));
    assert!(matches!(
        dev.read_bulk(99, 0, &mut [0; 4]),
        Err(ClientError::NoSuchRegion(99))
    ));

    // Bulk ranges.
    assert!(matches!(
        dev.read_bulk(bar4, 16, &mut [0; 17]),
        Err(ClientError::OutOfRange {
            offset: 16,
            len: 17,
            ..
        })
    ));
    // An empty transfer at the end of a region is fine and touches nothing.
    dev.read_bulk(bar4, 32, &mut []).unwrap();
}

#[test]
fn registers_on_a_padded_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::golden_copy(dir.path(), "edu.bin", 0x10_2020);
    let dev = DeviceFile::open(&path).unwrap();
    assert!(dev.is_writable());
    let bar0 = dev.resolve_region("regs").unwrap();

    assert_eq!(dev.read_u32(bar0, 0).unwrap(), 0);
    dev.write_u32(bar0, 4, 0x1234_5678).unwrap();
    dev.write_u16(bar0, 0x10, 0xbeef).unwrap();
    dev.write_u8(bar0, 0x13, 0x7f).unwrap();
    dev.write_u64(bar0, 0xf_fff8, 0x0102_0304_0506_0708)
        .unwrap();
    assert_eq!(dev.read_u32(bar0, 4).unwrap(), 0x1234_5678);
    assert_eq!(dev.read_u16(bar0, 6).unwrap(), 0x1234);
    assert_eq!(dev.read_u8(bar0, 4).unwrap(), 0x78);
    assert_eq!(dev.read_u32(bar0, 0x10).unwrap(), 0x7f00_beef);
    assert_eq!(dev.read_u64(bar0, 0xf_fff8).unwrap(), 0x0102_0304_0506_0708);

    // Little-endian at region offset + offset in the file.
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[0x1004..0x1008], [0x78, 0x56, 0x34, 0x12]);
    assert_eq!(bytes[0x10_0ff8..0x10_1000], [8, 7, 6, 5, 4, 3, 2, 1]);

    // Register-like bulk: config space, one access of up to 4 bytes at a time.
    let config = dev.pci_config().unwrap();
    let pattern: Vec<u8> = (0..=255).collect();
    dev.write_bulk(config, 0, &pattern).unwrap();
    let mut back = vec![0u8; 256];
    dev.read_bulk(config, 0, &mut back).unwrap();
    assert_eq!(back, pattern);
    let mut odd = [0u8; 7];
    dev.read_bulk(config, 3, &mut odd).unwrap();
    assert_eq!(odd, [3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(fs::read(&path).unwrap()[0x10_1000..0x10_1100], pattern[..]);

    // A register is read whole or not at all: the file ends 6 bytes into config space.
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0x10_1006)
        .unwrap();
    let mut buf = [0u8; 16];
    match dev.read_bulk(config, 0, &mut buf) {
        Err(ClientError::Short {
            op: Op::Read,
            offset: 0x10_1000,
            len: 16,
            done: 4,
        }) => {}
        other => panic!("expected Short, got {other:?}"),
    }
    assert_eq!(dev.read_u16(config, 4).unwrap(), 0x0504);
    assert!(matches!(
        dev.read_u16(config, 6),
        Err(ClientError::Short { done: 0, .. })
    ));
}

#[test]
fn bulk_transfers_cross_chunks() {
    // A 3 MiB + 1 page memory-like region: bulk transfers are split in 1 MiB requests.
    let size = 3 * MAX_CHUNK as u64 + 0x1000;
    let bytes = common::mmap_description(size);
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_padded(dir.path(), "dev", &bytes, 0x1000 + size);
    let dev = DeviceFile::open(&path).unwrap();
    let ram = dev.resolve_region("ram").unwrap();
    assert_eq!(ram.flags, REGION_READ | REGION_WRITE | REGION_MMAP);

    let data: Vec<u8> = (0..size as usize - 5)
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect();
    dev.write_bulk(ram, 3, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    dev.read_bulk(ram, 3, &mut back).unwrap();
    assert!(back == data);
    let file = fs::read(&path).unwrap();
    assert!(file[0x1003..0x1003 + data.len()] == data[..]);

    // Past the end of the (shorter) file: the bytes that exist, then a clear error.
    let short = common::write_padded(dir.path(), "short", &bytes, 0x1000 + 0x10);
    let dev = DeviceFile::open(&short).unwrap();
    let mut buf = vec![0u8; 64];
    match dev.read_bulk(0, 0, &mut buf) {
        Err(ClientError::Short {
            op: Op::Read,
            offset: 0x1000,
            len: 64,
            done: 16,
        }) => {}
        other => panic!("expected Short, got {other:?}"),
    }
}
