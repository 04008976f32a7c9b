//! Reading a function's directory under `/sys/bus/pci/devices` (or any root with the same
//! layout, such as a fake tree in a test).
//!
//! Only files that reading cannot disturb are read: `config` (the dwords the parsers ask
//! for: the header, each capability, the extended capability headers of PCI Express
//! functions; each is a configuration read the kernel makes, which has no side effect on a
//! function, and can cost a VM exit, so nothing else is read), the
//! kernel's own parse of the function (`resource`, `irq`, `msi_bus`, `msi_irqs/`) and the
//! `driver` link. Nothing is written, and no BAR (`resourceN`) is opened.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::config::{ConfigRead, EXTENDED_CONFIG_SPACE_LEN};
use crate::error::SysfsError;
use crate::function::{Address, Inputs, PciFunction, analyze};

/// Every function of a tree, each with its own result ([`Sysfs::list`]).
pub type Listing = Vec<(Address, Result<PciFunction, SysfsError>)>;

/// Where Linux lists PCI functions.
pub const SYSFS_PCI_DEVICES: &str = "/sys/bus/pci/devices";

/// A directory of PCI function directories named by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::new(SYSFS_PCI_DEVICES)
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SysfsError + '_ {
    move |source| SysfsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads from `file` at `offset` until `buf` is full or the file ends; returns the count.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        let at = offset.saturating_add(done as u64);
        match file.read_at(rest, at) {
            Ok(0) => break,
            Ok(n) => done = done.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A small sysfs attribute as trimmed text; `None` if the file does not exist.
fn attribute(path: &Path) -> Result<Option<String>, SysfsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

impl Sysfs {
    /// A tree rooted at `root` (for the machine's: [`SYSFS_PCI_DEVICES`], or `default()`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a function.
    pub fn function_dir(&self, address: Address) -> PathBuf {
        self.root.join(address.to_string())
    }

    /// Every function under the root, sorted by address. Entries whose names are not PCI
    /// addresses are ignored.
    pub fn addresses(&self) -> Result<Vec<Address>, SysfsError> {
        let entries = std::fs::read_dir(&self.root).map_err(io_error(&self.root))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&self.root))?;
            if let Some(address) = entry.file_name().to_str().and_then(Address::parse) {
                // Only canonical names: `Address` prints them back the same way.
                if entry.file_name().to_str() == Some(address.to_string().as_str()) {
                    out.push(address);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Resolves a user's address (`0000:00:03.0` or `00:03.0`) to a function that exists.
    pub fn find(&self, text: &str) -> Result<Address, SysfsError> {
        let address =
            Address::parse(text).ok_or_else(|| SysfsError::BadAddress(text.to_owned()))?;
        let path = self.function_dir(address);
        if !path.is_dir() {
            return Err(SysfsError::NoSuchFunction {
                bdf: address.to_string(),
                path,
            });
        }
        Ok(address)
    }

    /// The name of the driver bound to the function, from its `driver` link.
    pub fn driver(&self, address: Address) -> Result<Option<String>, SysfsError> {
        driver_of(&self.function_dir(address))
    }

    /// Reads and analyzes one function.
    pub fn read(&self, address: Address) -> Result<PciFunction, SysfsError> {
        let dir = self.function_dir(address);
        if !dir.is_dir() {
            return Err(SysfsError::NoSuchFunction {
                bdf: address.to_string(),
                path: dir,
            });
        }
        let config_path = dir.join("config");
        let config = File::open(&config_path).map_err(io_error(&config_path))?;
        let config_size = config.metadata().map_err(io_error(&config_path))?.len();
        let resource_path = dir.join("resource");
        let resource = match std::fs::read(&resource_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(&resource_path)(e)),
        };
        let driver = driver_of(&dir)?;
        let irq = attribute(&dir.join("irq"))?.and_then(|t| t.parse().ok());
        let msi_bus = attribute(&dir.join("msi_bus"))?.map(|t| t != "0");
        let msi_irqs = match std::fs::read_dir(dir.join("msi_irqs")) {
            Ok(entries) => Some(entries.count()),
            Err(_) => None,
        };
        let inputs = Inputs {
            config_size,
            resource: &resource,
            driver: driver.as_deref(),
            irq,
            msi_bus,
            msi_irqs,
        };
        let mut space = SysfsConfig::new(&config, config_size);
        analyze(address, &mut space, &inputs).map_err(|source| SysfsError::Analyze {
            bdf: address.to_string(),
            source,
        })
    }

    /// Every function under the root, each read and analyzed on its own: one damaged
    /// function does not hide the others.
    pub fn list(&self) -> Result<Listing, SysfsError> {
        Ok(self
            .addresses()?
            .into_iter()
            .map(|a| (a, self.read(a)))
            .collect())
    }
}

/// The driver bound to the function whose directory is `dir`.
pub(crate) fn driver_of(dir: &Path) -> Result<Option<String>, SysfsError> {
    let link = dir.join("driver");
    match std::fs::read_link(&link) {
        Ok(target) => Ok(Some(
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| target.to_string_lossy().into_owned()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&link)(e)),
    }
}

/// A function's `config` file read on demand, a dword at a time at most once each: the
/// dwords a request needs that are not cached yet are read with one `pread` per run.
struct SysfsConfig<'f> {
    file: &'f File,
    cache: Vec<u8>,
    have: Vec<bool>,
    /// The file's size (at most 4096).
    size: usize,
}

impl<'f> SysfsConfig<'f> {
    fn new(file: &'f File, size: u64) -> Self {
        let size = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(EXTENDED_CONFIG_SPACE_LEN);
        SysfsConfig {
            file,
            cache: vec![0; size],
            have: vec![false; size.div_ceil(4)],
            size,
        }
    }

    /// Reads the uncached dwords `[first, last)`; fails with where the file's readable data
    /// ends if it ends before them (64 bytes for a process without `CAP_SYS_ADMIN`).
    fn fill(&mut self, first: usize, last: usize) -> Result<(), usize> {
        let mut d = first;
        while d < last {
            if self.have.get(d).copied().unwrap_or(true) {
                d = d.saturating_add(1);
                continue;
            }
            let run_end = (d..last)
                .find(|&i| self.have.get(i).copied().unwrap_or(true))
                .unwrap_or(last);
            let at = d.saturating_mul(4);
            let len = run_end.saturating_sub(d).saturating_mul(4);
            let end = at.saturating_add(len).min(self.size);
            let buf = self.cache.get_mut(at..end).ok_or(at)?;
            let want = buf.len();
            let got = read_full_at(self.file, buf, at as u64).unwrap_or(0);
            for seen in self.have.iter_mut().skip(d).take(got / 4) {
                *seen = true;
            }
            if got < want {
                return Err(at.saturating_add(got));
            }
            d = run_end;
        }
        Ok(())
    }
}

impl ConfigRead for SysfsConfig<'_> {
    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), usize> {
        let end = offset
            .checked_add(buf.len())
            .filter(|end| *end <= self.size)
            .ok_or(self.size)?;
        self.fill(offset / 4, end.div_ceil(4))?;
        buf.copy_from_slice(self.cache.get(offset..end).ok_or(self.size)?);
        Ok(())
    }
}
