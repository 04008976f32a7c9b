//! Reading a function's directory under `/sys/bus/pci/devices` (or any root with the same
//! layout, such as a fake tree in a test).
//!
//! Only files that reading cannot disturb are read: `config` (its first 256 bytes, then
//! single dwords of the extended capability headers of PCI Express functions; each read
//! is a configuration read the kernel makes, which has no side effect on a function), the
//! kernel's own parse of the function (`resource`, `irq`, `msi_bus`, `msi_irqs/`) and the
//! `driver` link. Nothing is written, and no BAR (`resourceN`) is opened.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::config::CONFIG_SPACE_LEN;
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
        let mut head = [0u8; CONFIG_SPACE_LEN];
        let want = usize::try_from(config_size)
            .unwrap_or(usize::MAX)
            .min(CONFIG_SPACE_LEN);
        let got = read_full_at(&config, head.get_mut(..want).unwrap_or(&mut []), 0)
            .map_err(io_error(&config_path))?;
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
            config: head.get(..got).unwrap_or(&[]),
            config_size,
            resource: &resource,
            driver: driver.as_deref(),
            irq,
            msi_bus,
            msi_irqs,
        };
        // Extended capability headers, one dword read each, only if the list is walked.
        let mut extended = |at: usize| {
            let mut b = [0u8; 4];
            match read_full_at(&config, &mut b, at as u64) {
                Ok(4) => Some(u32::from_le_bytes(b)),
                _ => None,
            }
        };
        analyze(address, &inputs, &mut extended).map_err(|source| SysfsError::Analyze {
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
