//! Where a device tree comes from: a DTB file, `/sys/firmware/fdt` (the blob the kernel booted
//! with), or the `/proc/device-tree` directory form (one directory per node, one file per
//! property), which is assembled into a blob so that one parser checks every source.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::SourceError;
use crate::fdt::MAX_DEPTH;
use crate::write::FdtWriter;

/// The blob the running kernel was booted with.
pub const SYS_FIRMWARE_FDT: &str = "/sys/firmware/fdt";
/// The running kernel's device tree in directory form.
pub const PROC_DEVICE_TREE: &str = "/proc/device-tree";
/// Largest blob read or assembled (the format's offsets are 32-bit; real trees are < 1 MiB).
pub const MAX_BLOB: u64 = 64 << 20;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a device tree: a blob file as is, a directory in `/proc/device-tree` form assembled
/// into a blob. The bytes still have to pass [`crate::DeviceTree::parse`].
pub fn read(path: &Path) -> Result<Vec<u8>, SourceError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    if meta.is_dir() {
        let mut w = FdtWriter::new();
        let mut total = 0u64;
        node(path, "", 0, &mut w, &mut total)?;
        return Ok(w.finish());
    }
    if meta.len() > MAX_BLOB {
        return Err(SourceError::Directory {
            path: path.to_owned(),
            why: format!("{} bytes is larger than any device tree", meta.len()),
        });
    }
    fs::read(path).map_err(io(path))
}

/// Writes the node in directory `dir` and its subtree: properties (files) first, then
/// subnodes (directories), each in name order.
fn node(
    dir: &Path,
    name: &str,
    depth: usize,
    w: &mut FdtWriter,
    total: &mut u64,
) -> Result<(), SourceError> {
    if depth >= MAX_DEPTH {
        return Err(SourceError::Directory {
            path: dir.to_owned(),
            why: format!("nodes nest deeper than {MAX_DEPTH} levels"),
        });
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        // Symbolic links are not part of the directory form; do not follow them.
        let kind = entry.file_type().map_err(io(&path))?;
        let Ok(entry_name) = entry.file_name().into_string() else {
            return Err(SourceError::Directory {
                path,
                why: "the name is not UTF-8".into(),
            });
        };
        if kind.is_dir() {
            dirs.push((entry_name, path));
        } else if kind.is_file() {
            files.push((entry_name, path));
        }
    }
    files.sort();
    dirs.sort();
    w.begin_node(name);
    for (prop, path) in files {
        let value = fs::read(&path).map_err(io(&path))?;
        *total = total.saturating_add(value.len() as u64).saturating_add(16);
        if *total > MAX_BLOB {
            return Err(SourceError::Directory {
                path,
                why: format!("the tree is larger than {MAX_BLOB} bytes"),
            });
        }
        w.property(&prop, &value);
    }
    for (child, path) in dirs {
        node(&path, &child, depth.saturating_add(1), w, total)?;
    }
    w.end_node();
    Ok(())
}
