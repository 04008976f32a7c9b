//! A real PCI function served as a devfd device, through sysfs.
//!
//! * Configuration space (region 7) is always readable: a `pread` of sysfs `config`.
//!   Writes need [`AccessOptions::allow_write`]; without it the file is opened read-only and
//!   the region has no REGION_WRITE, so a write fails with `EPERM` before it gets here.
//! * BARs (regions 0–5) need [`AccessOptions::allow_bar_access`]: a memory BAR is mapped
//!   from sysfs `resourceN` and each access is one volatile load or store of the width the
//!   client asked for; an I/O BAR is `pread`/`pwrite` on `resourceN` (1, 2 or 4 bytes).
//!   Without the option no `resourceN` is opened and the BAR regions have neither
//!   REGION_READ nor REGION_WRITE (`EPERM`).
//! * While a kernel driver is bound to the function both are refused outright: [`open`]
//!   fails with [`SysfsError::DriverBound`] (`EBUSY`, naming the driver), and a driver that
//!   binds after the device was opened makes every BAR access and configuration write fail
//!   with [`DeviceError::Busy`] (`EBUSY`), checked on each access.
//! * The expansion ROM is described but not served. Interrupts are described (INTx, MSI,
//!   MSI-X with their vector counts) but never fire: sysfs cannot deliver a function's
//!   interrupts to user space; that needs VFIO.
//! * `reset` does nothing: a real function is never reset behind its owner's back.
//!
//! [`open`]: SysfsPciDevice::open

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use devfd_device::{Device, DeviceError, Interrupts};

use crate::error::{Refused, SysfsError};
use crate::function::{Address, BarKind, CONFIG_REGION, PciFunction, Policy, ROM_REGION};
use crate::mmio::Mmio;
use crate::sysfs::{Sysfs, driver_of, read_full_at};

/// What a served function allows beyond reading its configuration space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessOptions {
    /// Configuration space writes (`devfd serve --allow-write`).
    pub allow_write: bool,
    /// BAR reads and writes through sysfs `resourceN` (`devfd serve --allow-bar-access`).
    pub allow_bar_access: bool,
}

#[derive(Debug)]
enum Backing {
    Mem(Mmio),
    Io(File),
}

#[derive(Debug)]
struct BarBacking {
    bar: u8,
    backing: Backing,
}

/// A PCI function served through sysfs (see the module documentation).
#[derive(Debug)]
pub struct SysfsPciDevice {
    function: PciFunction,
    dir: PathBuf,
    options: AccessOptions,
    description: Vec<u8>,
    interrupts: Interrupts,
    config: File,
    bars: Vec<BarBacking>,
    /// A refusal because a driver bound after opening has been logged.
    warned: AtomicBool,
}

impl SysfsPciDevice {
    /// Opens the function at `address` under `sysfs` for serving.
    ///
    /// Fails with [`SysfsError::DriverBound`] if `options` asks for writes or BAR access and
    /// a kernel driver is bound (nothing is opened for writing then), with
    /// [`SysfsError::NeedsRoot`] if only 64 bytes of configuration space are readable, and
    /// with [`SysfsError::NoBarFile`] / [`SysfsError::Bar`] if a BAR's `resourceN` cannot
    /// be opened or mapped.
    pub fn open(
        sysfs: &Sysfs,
        address: Address,
        options: AccessOptions,
    ) -> Result<Self, SysfsError> {
        let function = sysfs.read(address)?;
        let bdf = function.bdf();
        if !function.capabilities_read {
            return Err(SysfsError::NeedsRoot { bdf });
        }
        let dir = sysfs.function_dir(address);
        if options.allow_write || options.allow_bar_access {
            // Checked again right before opening anything for writing.
            if let Some(driver) = driver_of(&dir)? {
                return Err(SysfsError::DriverBound {
                    bdf,
                    driver,
                    what: if options.allow_write {
                        Refused::ConfigWrite
                    } else {
                        Refused::BarAccess
                    },
                });
            }
        }
        let config_path = dir.join("config");
        let config = OpenOptions::new()
            .read(true)
            .write(options.allow_write)
            .custom_flags(libc::O_CLOEXEC)
            .open(&config_path)
            .map_err(|source| SysfsError::Io {
                path: config_path.clone(),
                source,
            })?;
        let mut bars = Vec::new();
        if options.allow_bar_access {
            for bar in &function.bars {
                let path = dir.join(format!("resource{}", bar.index));
                if !path.exists() {
                    return Err(SysfsError::NoBarFile {
                        bdf,
                        bar: bar.index,
                        path,
                    });
                }
                let bar_error = |source| SysfsError::Bar {
                    bdf: bdf.clone(),
                    bar: bar.index,
                    path: path.clone(),
                    source,
                };
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(bar_error)?;
                let backing = match bar.kind {
                    BarKind::Io => Backing::Io(file),
                    BarKind::Mem32 | BarKind::Mem64 => {
                        Backing::Mem(Mmio::map(&file, bar.size).map_err(bar_error)?)
                    }
                };
                bars.push(BarBacking {
                    bar: bar.index,
                    backing,
                });
            }
        }
        let policy = Policy {
            config_write: options.allow_write,
            bar_access: options.allow_bar_access,
        };
        let build = |source| SysfsError::Build {
            bdf: bdf.clone(),
            source,
        };
        let desc = function
            .device_desc(policy)
            .map_err(|source| SysfsError::Analyze {
                bdf: bdf.clone(),
                source,
            })?;
        let description = desc.build().map_err(build)?;
        let parsed = devfd_format::parse(&description)
            .map_err(|e| build(devfd_format::model::BuildError::Invalid(e)))?;
        let interrupts = Interrupts::new(&parsed);
        Ok(SysfsPciDevice {
            function,
            dir,
            options,
            description,
            interrupts,
            config,
            bars,
            warned: AtomicBool::new(false),
        })
    }

    /// What was read of the function.
    pub fn function(&self) -> &PciFunction {
        &self.function
    }

    /// What the device allows.
    pub fn options(&self) -> AccessOptions {
        self.options
    }

    /// One line per thing the device refuses, and how to allow it (for a server's banner).
    pub fn notes(&self) -> Vec<String> {
        let bdf = self.function.bdf();
        let mut notes = Vec::new();
        let reason = |flag: &str| match &self.function.driver {
            Some(driver) => format!("bound to kernel driver {driver}"),
            None => format!("serve with {flag} to allow"),
        };
        if !self.options.allow_write {
            notes.push(format!(
                "{bdf}: config space read-only ({})",
                reason("--allow-write")
            ));
        }
        if !self.options.allow_bar_access && !self.function.bars.is_empty() {
            notes.push(format!(
                "{bdf}: BARs described, not accessible ({})",
                reason("--allow-bar-access")
            ));
        }
        if !self.function.interrupt_counts().is_empty() {
            notes.push(format!(
                "{bdf}: interrupts described, never delivered (delivery needs VFIO)"
            ));
        }
        notes
    }

    /// Fails with [`DeviceError::Busy`] if a driver is bound now.
    fn check_unbound(&self, what: Refused) -> Result<(), DeviceError> {
        match driver_of(&self.dir) {
            Ok(None) => Ok(()),
            Ok(Some(driver)) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    // Runs on a server thread: a closed stderr must not panic it.
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "devfd: {}: {what} refused (EBUSY): kernel driver {driver} is bound now",
                        self.function.bdf()
                    );
                }
                Err(DeviceError::Busy)
            }
            Err(_) => Err(DeviceError::Failed),
        }
    }

    fn bar(&self, region: u32) -> Result<&Backing, DeviceError> {
        self.bars
            .iter()
            .find(|b| u32::from(b.bar) == region)
            .map(|b| &b.backing)
            .ok_or(DeviceError::Unsupported)
    }
}

impl Device for SysfsPciDevice {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        match region {
            CONFIG_REGION => match read_full_at(&self.config, data, offset) {
                // Short: past the end, or past the 64 bytes a process without
                // CAP_SYS_ADMIN may read.
                Ok(n) if n == data.len() => Ok(()),
                _ => Err(DeviceError::Failed),
            },
            ROM_REGION => Err(DeviceError::Unsupported),
            _ => {
                let backing = self.bar(region)?;
                self.check_unbound(Refused::BarAccess)?;
                match backing {
                    Backing::Mem(m) if m.read(offset, data) => Ok(()),
                    Backing::Mem(_) => Err(DeviceError::Unsupported),
                    Backing::Io(f) => match f.read_at(data, offset) {
                        Ok(n) if n == data.len() => Ok(()),
                        _ => Err(DeviceError::Failed),
                    },
                }
            }
        }
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        match region {
            CONFIG_REGION => {
                if !self.options.allow_write {
                    return Err(DeviceError::Unsupported);
                }
                self.check_unbound(Refused::ConfigWrite)?;
                match self.config.write_at(data, offset) {
                    Ok(n) if n == data.len() => Ok(()),
                    _ => Err(DeviceError::Failed),
                }
            }
            ROM_REGION => Err(DeviceError::Unsupported),
            _ => {
                let backing = self.bar(region)?;
                self.check_unbound(Refused::BarAccess)?;
                match backing {
                    Backing::Mem(m) if m.write(offset, data) => Ok(()),
                    Backing::Mem(_) => Err(DeviceError::Unsupported),
                    Backing::Io(f) => match f.write_at(data, offset) {
                        Ok(n) if n == data.len() => Ok(()),
                        _ => Err(DeviceError::Failed),
                    },
                }
            }
        }
    }

    fn interrupts(&self) -> &Interrupts {
        &self.interrupts
    }

    fn kind(&self) -> &str {
        "pci"
    }
}
