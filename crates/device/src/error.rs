//! Errors of device-file accesses, each with the errno SPEC.md §6.6 gives it.

/// Why a device-file access failed (SPEC.md §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No description, region or control window at the offset, or the access runs past it.
    #[error("no region at offset {offset:#x} for {len} bytes")]
    NoSuchRange {
        /// File offset of the access.
        offset: u64,
        /// Its length.
        len: usize,
    },
    /// A register width other than 1/2/4/8, an unaligned offset, or a control-window access
    /// that is not exactly one field.
    #[error("bad access shape: {len} bytes at offset {offset:#x}")]
    BadShape {
        /// File offset of the access.
        offset: u64,
        /// Its length.
        len: usize,
    },
    /// Not allowed by the region's or interrupt's flags, or a write to the description.
    #[error("not permitted: {0}")]
    NotPermitted(&'static str),
    /// A value the target does not accept (a mask word other than 0 or 1, the reserved word).
    #[error("invalid value {0:#x}")]
    BadValue(u64),
    /// The device model failed the access.
    #[error("device error")]
    Device(#[from] DeviceError),
    /// The device model did not answer within the server's bound.
    #[error("the device did not answer in time")]
    TimedOut,
}

impl AccessError {
    /// The errno a device file answers with.
    pub fn errno(&self) -> i32 {
        match self {
            AccessError::NoSuchRange { .. } => ENXIO,
            AccessError::BadShape { .. } | AccessError::BadValue(_) => EINVAL,
            AccessError::NotPermitted(_) => EPERM,
            AccessError::Device(DeviceError::Busy) => EBUSY,
            AccessError::Device(_) => EIO,
            AccessError::TimedOut => ETIMEDOUT,
        }
    }
}

const EPERM: i32 = 1;
const EIO: i32 = 5;
const EBUSY: i32 = 16;
const ENXIO: i32 = 6;
const EINVAL: i32 = 22;
const ETIMEDOUT: i32 = 110;

/// A failure inside a device model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The device cannot perform this access (e.g. an unimplemented register width).
    #[error("unsupported access")]
    Unsupported,
    /// The device is broken or its backing failed.
    #[error("device failure")]
    Failed,
    /// The device is in use by another driver (a real function bound to a kernel driver),
    /// so an access that could disturb it is refused; the device file answers `EBUSY`.
    #[error("device busy: another driver owns it")]
    Busy,
}
