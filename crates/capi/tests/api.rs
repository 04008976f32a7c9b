//! The C API called from Rust exactly as C would call it: handles, the flat table, lookups,
//! strings, errors and NULL arguments.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

use devfd::*;

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/golden")
            .join(name),
    )
    .unwrap()
}

fn parse(bytes: &[u8]) -> *mut devfd_desc {
    let mut desc = ptr::null_mut();
    // SAFETY: bytes is valid for its length; desc is valid for a write; err may be NULL.
    let rc = unsafe { devfd_desc_parse(bytes.as_ptr(), bytes.len(), &mut desc, ptr::null_mut()) };
    assert_eq!(rc, DEVFD_OK);
    desc
}

#[test]
fn flat_table_lookups_and_strings() {
    let bytes = golden("edu.bin");
    let desc = parse(&bytes);
    // SAFETY: desc is live until devfd_desc_free; every out pointer is a local.
    unsafe {
        assert_eq!(devfd_desc_bus(desc), DEVFD_BUS_PCI);
        assert_eq!(devfd_desc_len(desc), bytes.len());
        assert_eq!(devfd_desc_resource_count(desc), 4);
        let mut r = devfd_resource {
            argsz: std::mem::size_of::<devfd_resource>() as u32,
            ..Default::default()
        };
        assert_eq!(devfd_desc_resource(desc, 0, &mut r), DEVFD_OK);
        assert_eq!(
            (r.kind, r.index, r.location, r.offset, r.size),
            (
                DEVFD_RESOURCE_REGION,
                0,
                DEVFD_LOC_PCI_BAR,
                0x1000,
                0x10_0000
            )
        );
        assert_eq!(
            CStr::from_ptr(devfd_desc_string(desc, r.label_offset)).to_str(),
            Ok("regs")
        );
        assert!(devfd_desc_string(desc, 0).is_null());
        assert!(
            devfd_desc_string(desc, 13).is_null(),
            "offsets that are not strings give NULL"
        );
        assert_eq!(devfd_desc_resource(desc, 4, &mut r), -libc::ENOENT);
        assert_eq!(devfd_desc_pci_config(desc, &mut r), DEVFD_OK);
        assert_eq!(r.index, 7);
        assert_eq!(devfd_desc_pci_bar(desc, 1, &mut r), -libc::ENOENT);
        assert_eq!(devfd_desc_interrupt(desc, 1, &mut r), DEVFD_OK);
        assert_eq!(
            (r.kind, r.irq_kind, r.count),
            (DEVFD_RESOURCE_INTERRUPT, 2, 1)
        );
        let mut id = devfd_pci_id::default();
        assert_eq!(devfd_desc_pci_id(desc, &mut id), DEVFD_OK);
        assert_eq!(
            (id.vendor, id.device, id.class_code),
            (0x1234, 0x11e8, 0x00ff00)
        );
        assert!(devfd_desc_compatible(desc, 0).is_null());
        devfd_desc_free(desc);
    }
    let bytes = golden("pl031.bin");
    let desc = parse(&bytes);
    // SAFETY: as above.
    unsafe {
        let path = CString::new("/pl031@9010000").unwrap();
        let mut r = devfd_resource {
            argsz: std::mem::size_of::<devfd_resource>() as u32,
            ..Default::default()
        };
        assert_eq!(
            devfd_desc_dt_region(desc, path.as_ptr(), 0, &mut r),
            DEVFD_OK
        );
        assert_eq!((r.location, r.location_flags), (DEVFD_LOC_DT, 1));
        assert_eq!(
            CStr::from_ptr(devfd_desc_string(desc, r.dt_path_offset)),
            path.as_c_str()
        );
        assert_eq!(
            CStr::from_ptr(devfd_desc_compatible(desc, 1)).to_str(),
            Ok("arm,primecell")
        );
        let mut id = devfd_pci_id::default();
        assert_eq!(devfd_desc_pci_id(desc, &mut id), -libc::ENOENT);
        devfd_desc_free(desc);
    }
}

#[test]
fn rejected_descriptions_explain_where() {
    let mut bytes = golden("edu.bin");
    bytes[0x60..0x64].copy_from_slice(&0u32.to_le_bytes());
    let mut desc = ptr::null_mut();
    let mut err = devfd_parse_error {
        offset: 0,
        record: 0,
        sub_record: 0,
        message: [0; 160],
    };
    // SAFETY: valid buffers and out pointers.
    let rc = unsafe { devfd_desc_parse(bytes.as_ptr(), bytes.len(), &mut desc, &mut err) };
    assert_eq!(rc, -libc::EBADMSG);
    assert!(desc.is_null());
    assert_eq!((err.offset, err.record, err.sub_record), (0x60, 1, -1));
    // SAFETY: the message is NUL-terminated inside its buffer.
    let message = unsafe { CStr::from_ptr(err.message.as_ptr()) };
    assert_eq!(
        message.to_str(),
        Ok("byte 0x60, record 1 (REGION): rec_len is 0")
    );
}

#[test]
fn null_and_bad_arguments_are_errors_not_crashes() {
    // SAFETY: every call is given NULL or valid pointers, as the contracts allow.
    unsafe {
        let mut desc = ptr::null_mut();
        assert_eq!(
            devfd_desc_parse(ptr::null(), 4, &mut desc, ptr::null_mut()),
            -libc::EINVAL
        );
        assert_eq!(
            devfd_desc_parse(ptr::null(), 0, &mut desc, ptr::null_mut()),
            -libc::EBADMSG
        );
        assert_eq!(devfd_desc_bus(ptr::null()), -libc::EINVAL);
        assert_eq!(devfd_desc_resource_count(ptr::null()), 0);
        assert!(devfd_desc_string(ptr::null(), 12).is_null());
        devfd_desc_free(ptr::null_mut());
        devfd_close(ptr::null_mut());
        let mut dev = ptr::null_mut();
        assert_eq!(devfd_open(ptr::null(), &mut dev), -libc::EINVAL);
        let missing = CString::new("/nonexistent/devfd").unwrap();
        assert_eq!(devfd_open(missing.as_ptr(), &mut dev), -libc::ENOENT);
        let mut v = 0u32;
        assert_eq!(devfd_read32(ptr::null(), 0, 0, &mut v), -libc::EINVAL);
        for code in [
            0,
            -libc::EINVAL,
            -libc::ENXIO,
            -libc::EPERM,
            -libc::EBADMSG,
            12345,
            i32::MIN,
        ] {
            assert!(!CStr::from_ptr(devfd_strerror(code)).to_bytes().is_empty());
        }
    }
}

#[test]
fn a_description_file_opens_as_a_device_without_live_regions() {
    let path = CString::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/golden/edu.bin")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let mut dev = ptr::null_mut();
    // SAFETY: valid path and out pointers; dev is closed at the end.
    unsafe {
        assert_eq!(devfd_open(path.as_ptr(), &mut dev), DEVFD_OK);
        let desc = devfd_device_desc(dev);
        assert_eq!(devfd_desc_resource_count(desc), 4);
        assert!(devfd_fd(dev) >= 0);
        let mut v = 0u32;
        // BAR0 lies past the end of the blob: a clear error, not a value.
        assert!(devfd_read32(dev, 0, 0, &mut v) < 0);
        assert_eq!(devfd_read32(dev, 0, 2, &mut v), -libc::EINVAL);
        assert_eq!(devfd_read32(dev, 9, 0, &mut v), -libc::ENOENT);
        assert_eq!(devfd_read32(dev, 0, 0, ptr::null_mut()), -libc::EINVAL);
        devfd_close(dev);
    }
}
