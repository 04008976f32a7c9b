//! The C entry point that parses descriptions: devfd_desc_parse and every getter a C program
//! would call on the result, with the error struct filled on rejection.
#![no_main]

use std::ffi::CStr;

use devfd::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut desc: *mut devfd_desc = std::ptr::null_mut();
    let mut err = devfd_parse_error { offset: 0, record: -1, sub_record: -1, message: [0; 160] };
    // SAFETY: data is valid for data.len() bytes; desc and err are valid for writes.
    let rc = unsafe { devfd_desc_parse(data.as_ptr(), data.len(), &mut desc, &mut err) };
    if rc != DEVFD_OK {
        assert_eq!(rc, -libc::EBADMSG);
        // The message is NUL-terminated inside its buffer.
        assert!(err.message.contains(&0));
        return;
    }
    // SAFETY: desc is a live handle from devfd_desc_parse until devfd_desc_free below.
    unsafe {
        let n = devfd_desc_resource_count(desc);
        for i in 0..n {
            // argsz 0 is refused; the struct's own size is filled.
            let mut r = devfd_resource::default();
            assert_eq!(devfd_desc_resource(desc, i, &mut r), -libc::EINVAL);
            r.argsz = std::mem::size_of::<devfd_resource>() as u32;
            assert_eq!(devfd_desc_resource(desc, i, &mut r), DEVFD_OK);
            if r.kind == DEVFD_RESOURCE_REGION {
                let (mut off, mut size) = (0u64, 0u64);
                for area in [0, 1, r.count, u32::MAX] {
                    let _ = devfd_desc_mmap_area(desc, r.index, area, &mut off, &mut size);
                }
            }
            for offset in [r.dt_path_offset, r.label_offset] {
                let s = devfd_desc_string(desc, offset);
                if !s.is_null() {
                    let _ = CStr::from_ptr(s);
                }
            }
        }
        let mut r = devfd_resource {
            argsz: std::mem::size_of::<devfd_resource>() as u32,
            ..Default::default()
        };
        assert_eq!(devfd_desc_resource(desc, n, &mut r), -libc::ENOENT);
        let _ = devfd_desc_pci_bar(desc, 0, &mut r);
        assert_eq!(devfd_desc_pci_bar(desc, 256, &mut r), -libc::EINVAL);
        let _ = devfd_desc_pci_config(desc, &mut r);
        let _ = devfd_desc_region(desc, 0, &mut r);
        let _ = devfd_desc_interrupt(desc, 0, &mut r);
        for offset in [0u32, 1, 12, 36, u32::MAX] {
            let s = devfd_desc_string(desc, offset);
            if !s.is_null() {
                let _ = CStr::from_ptr(s);
            }
        }
        let c = devfd_desc_compatible(desc, 0);
        if !c.is_null() {
            let _ = CStr::from_ptr(c);
        }
        devfd_desc_free(desc);
    }
});
