//! Client side of devfd device files (SPEC.md §2.3, §6).
//!
//! [`DeviceFile::open`] reads and validates the description at offset 0 in at most two
//! reads, then offers:
//!
//! * typed lookups returning small `Copy` handles: [`DeviceFile::region`],
//!   [`DeviceFile::pci_bar`], [`DeviceFile::dt_region`], [`DeviceFile::interrupt`], … and
//!   the name resolver [`DeviceFile::resolve_region`] (`"0"`, `"bar0"`, `"config"`,
//!   `"dt:0"`, labels);
//! * register access ([`DeviceFile::read_u32`], [`DeviceFile::write_u32`], …): one `pread`
//!   or `pwrite` of exactly the width, checked against the region before the syscall;
//! * bulk access ([`DeviceFile::read_bulk`], [`DeviceFile::write_bulk`]);
//! * shared mappings of `REGION_MMAP` regions ([`DeviceFile::map`], [`Mapping`]), through the
//!   device file or its `D.rN` sibling;
//! * interrupt counters, masks and waiting ([`DeviceFile::wait_interrupt`]), and the file
//!   descriptor ([`std::os::fd::AsFd`]) for callers that poll themselves.
//!
//! Any file holding a description works: a description blob is a device whose regions and
//! control windows are not live (accesses there report end of file).
//!
//! ```no_run
//! # fn main() -> Result<(), devfd_client::ClientError> {
//! let dev = devfd_client::DeviceFile::open("/run/devfd/edu0")?;
//! let bar0 = dev.resolve_region("bar0")?;
//! let id = dev.read_u32(bar0, 0x00)?;
//! dev.write_u32(bar0, 0x04, !id)?;
//! let events = dev.wait_interrupt(0, Some(std::time::Duration::from_secs(1)))?;
//! # let _ = events;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod device;
mod discover;
mod error;
mod info;
mod map;
mod sys;

use std::path::{Path, PathBuf};

pub use device::{DeviceFile, MAX_CHUNK};
pub use discover::{FIRST_READ_LEN, ReadAt, read_description};
pub use error::{ClientError, Op};
pub use info::{AsInterrupt, AsRegion, DtIndex, IrqInfo, RegionInfo};
pub use map::Mapping;

/// One entry of [`list`]: a path and the device file opened there, or why it could not be.
pub type ListEntry = (PathBuf, Result<DeviceFile, ClientError>);

/// The device files of a directory, for `devfd ls`: every regular file (symbolic links
/// followed) whose name does not end in `.r<digits>` (a region's mmap file, SPEC.md §6.5),
/// sorted by name, each opened read-only or with the reason it could not be.
pub fn list(dir: impl AsRef<Path>) -> Result<Vec<ListEntry>, ClientError> {
    let dir = dir.as_ref();
    let open_err = |source| ClientError::Open {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    let mut failed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(open_err)? {
        let path = entry.map_err(open_err)?.path();
        let is_sibling = path
            .file_name()
            .is_some_and(|n| is_region_file_name(n.as_encoded_bytes()));
        if is_sibling {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => paths.push(path),
            Ok(_) => {}
            // A dangling link or a racing unlink is simply not a device file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Anything else is listed with its error: a listing never omits silently.
            Err(source) => failed.push((path.clone(), ClientError::Open { path, source })),
        }
    }
    paths.sort();
    let mut entries: Vec<ListEntry> = paths
        .into_iter()
        .map(|p| {
            let dev = DeviceFile::open_read_only(&p);
            (p, dev)
        })
        .collect();
    entries.extend(failed.into_iter().map(|(p, e)| (p, Err(e))));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// Whether a file name is `*.r<digits>`.
fn is_region_file_name(name: &[u8]) -> bool {
    let digits = name.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    digits > 0
        && name
            .len()
            .checked_sub(digits)
            .and_then(|n| name.get(..n))
            .is_some_and(|stem| stem.ends_with(b".r"))
}

#[cfg(test)]
mod tests {
    use super::is_region_file_name;

    #[test]
    fn region_file_names() {
        assert!(is_region_file_name(b"edu0.r0"));
        assert!(is_region_file_name(b"nvme.r12"));
        assert!(is_region_file_name(b".r3"));
        assert!(!is_region_file_name(b"edu0"));
        assert!(!is_region_file_name(b"edu0.r"));
        assert!(!is_region_file_name(b"edu0.rx1"));
        assert!(!is_region_file_name(b"r1"));
        assert!(!is_region_file_name(b"edu0.s1"));
    }
}
