//! Errors of the sysfs PCI source: located errors of the two parsers (configuration space,
//! the sysfs `resource` file) and the errors of reading, describing and opening a function.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The capability a configuration-space error is inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapId {
    /// A capability of the standard list (0x40–0xff), by its 8-bit ID.
    Standard(u8),
    /// An extended capability (0x100–0xfff), by its 16-bit ID.
    Extended(u16),
}

impl fmt::Display for CapId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CapId::Standard(id) => match crate::config::cap_name(id) {
                Some(name) => write!(f, "capability {id:#04x} ({name})"),
                None => write!(f, "capability {id:#04x}"),
            },
            CapId::Extended(id) => match crate::config::ext_cap_name(id) {
                Some(name) => write!(f, "extended capability {id:#06x} ({name})"),
                None => write!(f, "extended capability {id:#06x}"),
            },
        }
    }
}

/// What is wrong at a [`ConfigError`]'s location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The configuration data ends at byte `len`, before the field.
    Truncated {
        /// How many bytes of configuration space there are.
        len: usize,
    },
    /// A capability pointer below the end of the header (0x40 for the standard list, 0x100
    /// for the extended one).
    PointsIntoHeader {
        /// The pointer.
        pointer: u16,
    },
    /// A capability pointer that is not a multiple of 4.
    Misaligned {
        /// The pointer.
        pointer: u16,
    },
    /// A capability pointer to a capability the walk has visited already.
    Loop {
        /// The pointer.
        pointer: u16,
    },
    /// A capability (or the one a pointer names) runs past the end of its space: 0x100 for
    /// the standard list, the configuration space size for the extended one.
    PastEnd {
        /// Where the capability starts.
        pointer: u16,
        /// The end of the space.
        end: usize,
    },
    /// A field holds a value the PCI specification reserves.
    Reserved {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

/// A problem in configuration space, located: the byte offset of the offending field and the
/// capability it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Byte offset of the offending field in configuration space.
    pub offset: usize,
    /// The capability the field belongs to (`None` for the header).
    pub cap: Option<CapId>,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

/// How many bytes of configuration space sysfs gives a process without `CAP_SYS_ADMIN`.
pub const UNPRIVILEGED_CONFIG_LEN: usize = 64;

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config space byte {:#x}", self.offset)?;
        if let Some(cap) = self.cap {
            write!(f, " ({cap})")?;
        }
        f.write_str(": ")?;
        match self.kind {
            ConfigErrorKind::Truncated { len } => {
                write!(f, "the configuration data ends at byte {len:#x}")?;
                if len == UNPRIVILEGED_CONFIG_LEN {
                    f.write_str(
                        " (sysfs gives only the first 64 bytes to a process without \
                         CAP_SYS_ADMIN: run as root)",
                    )?;
                }
                Ok(())
            }
            ConfigErrorKind::PointsIntoHeader { pointer } => {
                let end = if pointer >= 0x100 || matches!(self.cap, Some(CapId::Extended(_))) {
                    "0x100"
                } else {
                    "0x40"
                };
                write!(
                    f,
                    "capability pointer {pointer:#x} points into the header (below {end})"
                )
            }
            ConfigErrorKind::Misaligned { pointer } => {
                write!(f, "capability pointer {pointer:#x} is not a multiple of 4")
            }
            ConfigErrorKind::Loop { pointer } => write!(
                f,
                "capability pointer {pointer:#x} loops back to a capability already visited"
            ),
            ConfigErrorKind::PastEnd { pointer, end } => write!(
                f,
                "the capability at {pointer:#x} runs past the end of its space ({end:#x})"
            ),
            ConfigErrorKind::Reserved { field, value } => {
                write!(f, "{field} holds the reserved value {value:#x}")
            }
        }
    }
}

/// What is wrong at a [`ResourceError`]'s location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceErrorKind {
    /// A line without exactly three fields.
    FieldCount {
        /// How many fields it has (counting stops at 4).
        found: usize,
    },
    /// A field that is not `0x` followed by 1–16 hexadecimal digits.
    NotHex,
    /// A resource whose end lies below its start.
    EndBeforeStart,
    /// A resource covering all 2⁶⁴ addresses (its size does not fit 64 bits).
    TooLarge,
    /// More lines than any kernel writes.
    TooManyLines {
        /// The limit.
        max: usize,
    },
}

/// A problem in a sysfs `resource` file, located by line (from 1) and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct ResourceError {
    /// Line number, from 1.
    pub line: usize,
    /// Byte offset in the file of the offending field (or line).
    pub offset: usize,
    /// What is wrong.
    pub kind: ResourceErrorKind,
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} (byte {}): ", self.line, self.offset)?;
        match self.kind {
            ResourceErrorKind::FieldCount { found } => {
                write!(f, "{found} fields where `start end flags` (3) are expected")
            }
            ResourceErrorKind::NotHex => {
                f.write_str("a field is not 0x followed by 1 to 16 hexadecimal digits")
            }
            ResourceErrorKind::EndBeforeStart => f.write_str("the end lies below the start"),
            ResourceErrorKind::TooLarge => f.write_str("the resource covers all 2^64 addresses"),
            ResourceErrorKind::TooManyLines { max } => {
                write!(f, "more than {max} lines")
            }
        }
    }
}

/// Why a function's sysfs data cannot be made into a [`crate::PciFunction`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzeError {
    /// Configuration space is damaged.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The `resource` file is damaged.
    #[error("resource file: {0}")]
    Resource(#[from] ResourceError),
    /// The `config` file's size is neither 256 nor 4096 bytes.
    #[error("the config file is {0} bytes, not 256 or 4096")]
    ConfigSize(u64),
    /// The kernel's resources contradict what a BAR can be.
    #[error("BAR {bar}: {reason}")]
    Bar {
        /// BAR number.
        bar: u8,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What [`SysfsError::DriverBound`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Writes to configuration space (`--allow-write`).
    ConfigWrite,
    /// Access to the BARs through sysfs `resourceN` (`--allow-bar-access`).
    BarAccess,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::ConfigWrite => "--allow-write (config space writes)",
            Refused::BarAccess => "--allow-bar-access (BAR access)",
        })
    }
}

/// Why a PCI function could not be listed, described or opened.
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// A PCI address that is not `DOMAIN:BUS:DEVICE.FUNCTION`.
    #[error(
        "{0:?} is not a PCI address (expected DOMAIN:BUS:DEVICE.FUNCTION such as 0000:00:03.0, \
         or BUS:DEVICE.FUNCTION)"
    )]
    BadAddress(String),
    /// No such function under the sysfs root.
    #[error("no PCI function {bdf} (no {})", path.display())]
    NoSuchFunction {
        /// The address.
        bdf: String,
        /// The directory that is missing.
        path: PathBuf,
    },
    /// A sysfs file could not be read.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The function's sysfs data is damaged.
    #[error("{bdf}")]
    Analyze {
        /// The function.
        bdf: String,
        /// What is wrong.
        source: AnalyzeError,
    },
    /// Describing the function needs configuration space beyond the 64 bytes sysfs gives a
    /// process without `CAP_SYS_ADMIN`.
    #[error(
        "{bdf}: describing a function needs its whole configuration space (capabilities, MSI, \
         MSI-X), but sysfs gives only the first 64 bytes to a process without CAP_SYS_ADMIN: \
         run as root"
    )]
    NeedsRoot {
        /// The function.
        bdf: String,
    },
    /// A kernel driver is bound to the function, so access that could disturb it is refused.
    #[error(
        "{bdf} is bound to the kernel driver {driver}, so {what} is refused (EBUSY): the \
         driver owns the device and devfd would disturb it. Unbind it first (echo {bdf} > \
         /sys/bus/pci/devices/{bdf}/driver/unbind) if the device is not in use, or serve it \
         without the flag (config space stays readable)"
    )]
    DriverBound {
        /// The function.
        bdf: String,
        /// The bound driver's name.
        driver: String,
        /// What was asked for.
        what: Refused,
    },
    /// `--allow-bar-access` for a BAR the kernel offers no `resourceN` file for.
    #[error(
        "{bdf}: BAR {bar} has no {} (the kernel offers no mapping of it on this machine)",
        path.display()
    )]
    NoBarFile {
        /// The function.
        bdf: String,
        /// BAR number.
        bar: u8,
        /// The missing file.
        path: PathBuf,
    },
    /// A BAR's `resourceN` could not be opened or mapped.
    #[error("{bdf}: BAR {bar}: cannot open or map {}", path.display())]
    Bar {
        /// The function.
        bdf: String,
        /// BAR number.
        bar: u8,
        /// The `resourceN` file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The description could not be built (a BAR layout the format cannot hold).
    #[error("{bdf}: cannot build the description")]
    Build {
        /// The function.
        bdf: String,
        /// Why.
        source: devfd_format::model::BuildError,
    },
}

impl SysfsError {
    /// The errno that best names the failure: `EBUSY` for a bound driver, `EACCES` for a
    /// missing privilege, `ENOENT` for a missing function, `EINVAL` for a bad address or
    /// damaged data, else the I/O error's own.
    pub fn errno(&self) -> i32 {
        match self {
            SysfsError::DriverBound { .. } => libc::EBUSY,
            SysfsError::NeedsRoot { .. } => libc::EACCES,
            SysfsError::NoSuchFunction { .. } | SysfsError::NoBarFile { .. } => libc::ENOENT,
            SysfsError::BadAddress(_) | SysfsError::Analyze { .. } | SysfsError::Build { .. } => {
                libc::EINVAL
            }
            SysfsError::Io { source, .. } | SysfsError::Bar { source, .. } => {
                source.raw_os_error().unwrap_or(libc::EIO)
            }
        }
    }
}
