//! `list`: the device files of a directory.

mod common;

use std::fs;

use devfd_client::{ClientError, list};

#[test]
fn lists_device_files_sorted_without_region_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::golden_copy(d, "pl031.bin", 0);
    common::golden_copy(d, "edu.bin", 0);
    fs::copy(common::golden("nvme-like.bin"), d.join("nvme0")).unwrap();
    fs::write(d.join("nvme0.r0"), [0u8; 16]).unwrap();
    fs::write(d.join("nvme0.r12"), [0u8; 16]).unwrap();
    fs::write(d.join("notes.r"), b"not a region file").unwrap();
    fs::write(d.join("junk"), b"hello").unwrap();
    fs::create_dir(d.join("subdir")).unwrap();
    std::os::unix::fs::symlink(d.join("edu.bin"), d.join("link")).unwrap();
    std::os::unix::fs::symlink(d.join("missing"), d.join("dangling")).unwrap();

    let entries = list(d).unwrap();
    let names: Vec<_> = entries
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["edu.bin", "junk", "link", "notes.r", "nvme0", "pl031.bin"]
    );
    for (path, dev) in &entries {
        let name = path.file_name().unwrap().to_str().unwrap();
        match name {
            "junk" | "notes.r" => assert!(matches!(dev, Err(ClientError::Format(_))), "{name}"),
            _ => {
                let dev = dev.as_ref().unwrap();
                assert_eq!(dev.path(), path);
                assert!(!dev.is_writable());
            }
        }
    }
    let nvme = entries[4].1.as_ref().unwrap();
    assert_eq!(nvme.regions().len(), 4);
    assert_eq!(nvme.sibling_path(0), d.join("nvme0.r0"));
}

#[test]
fn missing_directory() {
    let err = list("/nonexistent/devfd").unwrap_err();
    assert!(matches!(err, ClientError::Open { .. }));
    assert_eq!(err.errno(), Some(libc::ENOENT));
}

#[test]
fn empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert!(list(dir.path()).unwrap().is_empty());
}
