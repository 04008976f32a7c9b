//! Mapping regions: directly, through `D.rN`, area by area; bounds and protection.

mod common;

use std::fs;

use devfd_client::{ClientError, DeviceFile, Op};

const SIZE: u64 = 0x4000;

/// `dev` (padded so that its region is backed when `pad`) and, if `sibling`, `dev.r0`.
fn device(dir: &std::path::Path, pad: bool, sibling: bool) -> std::path::PathBuf {
    let bytes = common::mmap_description(SIZE);
    let len = if pad { 0x1000 + SIZE + 0x40 } else { 0 };
    let path = common::write_padded(dir, "dev", &bytes, len);
    if sibling {
        let f = fs::File::create(dir.join("dev.r0")).unwrap();
        f.set_len(SIZE).unwrap();
    }
    path
}

#[test]
fn direct_mapping_of_a_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = device(dir.path(), true, true);
    let dev = DeviceFile::open(&path).unwrap();
    let m = dev.map(0).unwrap();
    assert_eq!(
        (m.len(), m.region(), m.region_offset()),
        (SIZE as usize, 0, 0)
    );
    assert!(m.is_readable() && m.is_writable() && !m.is_empty());
    assert!(!m.as_ptr().is_null());

    m.write_u32(0x10, 0xdead_beef).unwrap();
    m.write_u64(0x3ff8, u64::MAX - 1).unwrap();
    m.write_u8(0x21, 0x5a).unwrap();
    m.write_u16(0x22, 0x1234).unwrap();
    assert_eq!(m.read_u32(0x10).unwrap(), 0xdead_beef);
    assert_eq!(m.read_u16(0x12).unwrap(), 0xdead);
    assert_eq!(m.read_u32(0x20).unwrap(), 0x1234_5a00);
    // The same memory is seen through pread (same page cache) ...
    assert_eq!(dev.read_u32(0, 0x10).unwrap(), 0xdead_beef);
    assert_eq!(dev.read_u64(0, 0x3ff8).unwrap(), u64::MAX - 1);
    // ... and pwrite through the mapping.
    dev.write_u32(0, 0x100, 0x0bad_f00d).unwrap();
    assert_eq!(m.read_u32(0x100).unwrap(), 0x0bad_f00d);
    // The device file was mapped, not the sibling.
    assert!(
        fs::read(dir.path().join("dev.r0"))
            .unwrap()
            .iter()
            .all(|&b| b == 0)
    );
    assert_eq!(
        fs::read(&path).unwrap()[0x1010..0x1014],
        [0xef, 0xbe, 0xad, 0xde]
    );
}

#[test]
fn sibling_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let path = device(dir.path(), true, true);
    let dev = DeviceFile::open(&path).unwrap();
    assert_eq!(dev.sibling_path(0), dir.path().join("dev.r0"));
    assert_eq!(dev.sibling_path(12), dir.path().join("dev.r12"));

    let m = dev.map_sibling(0, 0).unwrap();
    assert_eq!(m.len(), SIZE as usize);
    m.write_u32(8, 0x0403_0201).unwrap();
    let r0 = fs::read(dir.path().join("dev.r0")).unwrap();
    assert_eq!(r0[8..12], [1, 2, 3, 4]);
    // The device file itself is untouched.
    assert_eq!(dev.read_u32(0, 8).unwrap(), 0);
}

#[test]
fn falls_back_when_the_device_file_cannot_back_the_region() {
    // An unpadded blob: mapping it at 0x1000 would SIGBUS, so `dev.r0` is used.
    let dir = tempfile::tempdir().unwrap();
    let path = device(dir.path(), false, true);
    let dev = DeviceFile::open(&path).unwrap();
    let m = dev.map(0).unwrap();
    m.write_u64(0x1000, 0x1122_3344_5566_7788).unwrap();
    let r0 = fs::read(dir.path().join("dev.r0")).unwrap();
    assert_eq!(r0[0x1000..0x1008], 0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(fs::metadata(&path).unwrap().len(), dev.desc_len() as u64);
}

#[test]
fn no_way_to_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = device(dir.path(), false, false);
    let dev = DeviceFile::open(&path).unwrap();
    // No sibling: the device file's own failure is reported.
    let err = dev.map(0).unwrap_err();
    match &err {
        ClientError::Map {
            region: 0,
            path: p,
            source,
        } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::UnexpectedEof);
        }
        other => panic!("expected Map, got {other:?}"),
    }
    let cause = std::error::Error::source(&err).expect("the I/O error is the source");
    assert!(cause.to_string().contains("too short"), "{cause}");
    assert!(
        !err.to_string().contains("too short"),
        "the cause appears once: {err}"
    );
    // Only the sibling asked for, and it is missing.
    let err = dev.map_sibling(0, 0).unwrap_err();
    assert!(matches!(&err, ClientError::Map { path, .. } if path.ends_with("dev.r0")));
    assert_eq!(err.errno(), Some(libc::ENOENT));

    // A sibling shorter than the region is refused too.
    fs::write(dir.path().join("dev.r0"), [0u8; 0x1000]).unwrap();
    let err = dev.map(0).unwrap_err();
    assert!(
        matches!(&err, ClientError::Map { path, .. } if path.ends_with("dev.r0")),
        "{err}"
    );
}

#[test]
fn what_may_not_be_mapped() {
    let edu = DeviceFile::open_read_only(common::golden("edu.bin")).unwrap();
    assert!(matches!(edu.map(0), Err(ClientError::NotMappable(0))));
    assert!(matches!(
        edu.map_area(7, 0),
        Err(ClientError::NotMappable(7))
    ));
    assert!(matches!(edu.map(3), Err(ClientError::NoSuchRegion(3))));

    let nvme = DeviceFile::open_read_only(common::golden("nvme-like.bin")).unwrap();
    let err = nvme.map(0).unwrap_err();
    assert!(matches!(
        err,
        ClientError::Sparse {
            region: 0,
            areas: 2
        }
    ));
    assert!(matches!(
        nvme.map_area(0, 2),
        Err(ClientError::NoSuchArea {
            region: 0,
            area: 2,
            count: 2
        })
    ));
}

#[test]
fn sparse_areas_are_mapped_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::golden_copy(dir.path(), "nvme-like.bin", 0x11000);
    let dev = DeviceFile::open(&path).unwrap();
    let bar0 = dev.pci_bar(0).unwrap();
    let doorbells = dev.map_area(bar0, 1).unwrap();
    assert_eq!(
        (doorbells.len(), doorbells.region_offset()),
        (0xe000, 0x2000)
    );
    doorbells.write_u32(0, 7).unwrap();
    // Area 1 starts 0x2000 into the region, which starts at 0x1000.
    assert_eq!(fs::read(&path).unwrap()[0x3000..0x3004], [7, 0, 0, 0]);
    assert_eq!(dev.read_u32(bar0, 0x2000).unwrap(), 7);
    let first = dev.map_area(bar0, 0).unwrap();
    assert_eq!((first.len(), first.region_offset()), (0x1000, 0));
    // A whole region without SPARSE_MMAP is area 0.
    let dir2 = tempfile::tempdir().unwrap();
    let dev2 = DeviceFile::open(device(dir2.path(), true, false)).unwrap();
    assert_eq!(dev2.mmap_areas(0).unwrap(), [(0, SIZE)]);
    assert_eq!(dev2.map_area(0, 0).unwrap().len(), SIZE as usize);
    assert!(matches!(
        dev2.map_area(0, 1),
        Err(ClientError::NoSuchArea { .. })
    ));
}

#[test]
fn mapping_accessors_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = device(dir.path(), true, false);
    let dev = DeviceFile::open(&path).unwrap();
    let m = dev.map(0).unwrap();
    let len = m.len();

    assert!(matches!(
        m.read_u32(len),
        Err(ClientError::OutsideMapping { offset, len: 4, size }) if offset == len && size == len
    ));
    assert!(matches!(
        m.read_u64(len - 4),
        Err(ClientError::OutsideMapping { .. })
    ));
    assert!(matches!(
        m.write_u8(usize::MAX, 0),
        Err(ClientError::OutsideMapping { .. })
    ));
    assert!(matches!(
        m.read_u32(2),
        Err(ClientError::MisalignedMapping {
            offset: 2,
            width: 4
        })
    ));
    assert!(matches!(
        m.write_u16(3, 0),
        Err(ClientError::MisalignedMapping { .. })
    ));
    m.read_u8(len - 1).unwrap();

    // Copies of any alignment and length, checked whole before any byte moves.
    let data: Vec<u8> = (1..=100).collect();
    for off in [0, 1, 5, 8, 13, len - 100] {
        m.copy_from(&data, off).unwrap();
        let mut back = vec![0u8; 100];
        m.copy_to(&mut back, off).unwrap();
        assert_eq!(back, data, "at {off}");
        let mut file = vec![0u8; 100];
        dev.read_bulk(0, off as u64, &mut file).unwrap();
        assert_eq!(file, data, "file at {off}");
    }
    let mut big = vec![0xffu8; 16];
    assert!(matches!(
        m.copy_to(&mut big, len - 8),
        Err(ClientError::OutsideMapping { .. })
    ));
    assert!(big.iter().all(|&b| b == 0xff));
    assert!(matches!(
        m.copy_from(&big, len - 15),
        Err(ClientError::OutsideMapping { .. })
    ));
    assert_eq!(m.read_u8(len - 15).unwrap(), data[100 - 15]);
    m.copy_to(&mut [], len).unwrap();

    // Read-only open: the mapping is PROT_READ and refuses stores instead of faulting.
    let ro = DeviceFile::open_read_only(&path).unwrap();
    let m = ro.map(0).unwrap();
    assert!(m.is_readable() && !m.is_writable());
    assert_eq!(m.read_u8(0).unwrap(), 1);
    let err = m.write_u32(0, 1).unwrap_err();
    assert!(matches!(
        err,
        ClientError::MappingProtection {
            region: 0,
            op: Op::Write
        }
    ));
    assert_eq!(err.errno(), Some(libc::EACCES));
    assert!(matches!(
        m.copy_from(&[1], 0),
        Err(ClientError::MappingProtection { .. })
    ));
}

#[test]
fn mapping_outlives_the_device_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = device(dir.path(), true, false);
    let m = DeviceFile::open(&path).unwrap().map(0).unwrap();
    m.write_u32(0, 42).unwrap();
    let m = std::thread::spawn(move || {
        assert_eq!(m.read_u32(0).unwrap(), 42);
        m
    })
    .join()
    .unwrap();
    drop(m);
    assert_eq!(fs::read(&path).unwrap()[0x1000], 42);
}
