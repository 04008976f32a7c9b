//! The client's error type: what failed, where in the device file, and the errno if any.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The kind of a device-file access, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A read (`pread`).
    Read,
    /// A write (`pwrite`).
    Write,
    /// A mapping (`mmap`).
    Map,
    /// A wait for readiness (`poll`).
    Poll,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Map => "mmap",
            Op::Poll => "poll",
        })
    }
}

/// Why an operation on a device file failed.
///
/// Errors found by the client before any syscall carry the errno a conforming server would
/// have answered with (SPEC.md §6.6), see [`ClientError::errno`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The device file (or a directory of them) could not be opened or read.
    #[error("cannot open {}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A read of the description failed.
    #[error("reading the description failed")]
    Discovery(#[source] io::Error),
    /// The file ended before `desc_len` bytes of description.
    #[error(
        "the description is truncated: desc_len is {desc_len} but only {got} bytes could be read"
    )]
    Truncated {
        /// `desc_len` from the prologue.
        desc_len: usize,
        /// Bytes the file returned.
        got: usize,
    },
    /// The file is not a valid devfd description.
    #[error("invalid description")]
    Format(#[from] devfd_format::Error),
    /// The kernel or the server failed an access.
    #[error("{op} of {len} bytes at file offset {offset:#x} failed")]
    Io {
        /// What was attempted.
        op: Op,
        /// File offset of the access.
        offset: u64,
        /// Its length.
        len: usize,
        /// What the OS or server said (its errno is [`ClientError::errno`]).
        #[source]
        source: io::Error,
    },
    /// An access transferred fewer bytes than asked: the file ends there. A description
    /// file that no server answers has no live regions or control windows.
    #[error(
        "{op} of {len} bytes at file offset {offset:#x} stopped after {done} bytes: end of file \
         (a plain description file has no live regions)"
    )]
    Short {
        /// What was attempted.
        op: Op,
        /// File offset of the access.
        offset: u64,
        /// Its length.
        len: usize,
        /// Bytes transferred.
        done: usize,
    },
    /// No region has this index.
    #[error("no region {0}")]
    NoSuchRegion(u32),
    /// No interrupt has this index.
    #[error("no interrupt {0}")]
    NoSuchInterrupt(u32),
    /// A name that matches no region or interrupt.
    #[error("no {what} named {name:?}")]
    UnknownName {
        /// `"region"` or `"interrupt"`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// A vector number past the interrupt's count.
    #[error("interrupt {interrupt} has {count} vectors, there is no vector {vector}")]
    NoSuchVector {
        /// Interrupt index.
        interrupt: u32,
        /// The vector asked for.
        vector: u32,
        /// Its vector count.
        count: u32,
    },
    /// The access does not fit inside the region.
    #[error("{len} bytes at offset {offset:#x} do not fit in region {region} ({size:#x} bytes)")]
    OutOfRange {
        /// Region index.
        region: u32,
        /// Offset within the region.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Region size.
        size: u64,
    },
    /// A register access of a width the region does not accept (SPEC.md §6.2), or a bulk
    /// access to a register-like region that cannot be split into accepted widths.
    #[error(
        "region {region} does not accept a {width}-byte access at offset {offset:#x} (widths {widths:#x})"
    )]
    WidthNotAccepted {
        /// Region index.
        region: u32,
        /// Offset within the region.
        offset: u64,
        /// Access width.
        width: usize,
        /// The widths it accepts (`WIDTH_*` bits).
        widths: u8,
    },
    /// A register access not naturally aligned within a register-like region.
    #[error(
        "a {width}-byte access at offset {offset:#x} of region {region} is not naturally aligned"
    )]
    Misaligned {
        /// Region index.
        region: u32,
        /// Offset within the region.
        offset: u64,
        /// Access width.
        width: usize,
    },
    /// The region's flags do not allow this access.
    #[error("region {region} does not allow {op}")]
    NotPermitted {
        /// Region index.
        region: u32,
        /// The refused access.
        op: Op,
    },
    /// Mask or unmask of an interrupt without `IRQ_MASKABLE`.
    #[error("interrupt {0} is not maskable")]
    NotMaskable(u32),
    /// The region has no `REGION_MMAP`.
    #[error("region {0} cannot be mapped (no REGION_MMAP)")]
    NotMappable(u32),
    /// The region restricts mmap to sparse areas; map them one at a time.
    #[error("region {region} may only be mapped area by area ({areas} sparse areas)")]
    Sparse {
        /// Region index.
        region: u32,
        /// Number of areas.
        areas: u32,
    },
    /// A sparse area number past the region's areas.
    #[error("region {region} has {count} mappable areas, there is no area {area}")]
    NoSuchArea {
        /// Region index.
        region: u32,
        /// The area asked for.
        area: usize,
        /// Areas there are.
        count: usize,
    },
    /// The area is not aligned to this host's page size.
    #[error(
        "region {region}: a mapping of {size:#x} bytes at offset {offset:#x} is not aligned to \
         the host page size {page_size:#x}"
    )]
    PageSize {
        /// Region index.
        region: u32,
        /// Where the mapping would start: in the device file, or in the region (`D.rN`).
        offset: u64,
        /// Its length.
        size: u64,
        /// The host's page size.
        page_size: u64,
    },
    /// Mapping failed, directly and through the `D.rN` file.
    #[error("cannot mmap region {region} through {}", path.display())]
    Map {
        /// Region index.
        region: u32,
        /// The file whose mapping failed.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The server offers region `region` for mapping but cannot hand its memory over: FUSE
    /// passthrough needs a server with CAP_SYS_ADMIN (root). Reads and writes still work.
    #[error(
        "region {region} cannot be mapped: the server cannot pass {} through (FUSE passthrough \
         needs a server running as root); read and write the region instead",
        path.display()
    )]
    MmapUnavailable {
        /// Region index.
        region: u32,
        /// The `D.rN` file.
        path: PathBuf,
    },
    /// The device has no reset word (its description has no RESET sub-record).
    #[error("the device cannot be reset through its device file (no RESET in its description)")]
    NoReset,
    /// A [`crate::Mapping`] access outside the mapping.
    #[error("{len} bytes at offset {offset:#x} do not fit in the mapping ({size:#x} bytes)")]
    OutsideMapping {
        /// Offset within the mapping.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// Mapping length.
        size: usize,
    },
    /// A typed [`crate::Mapping`] access not naturally aligned.
    #[error("a {width}-byte mapping access at offset {offset:#x} is not naturally aligned")]
    MisalignedMapping {
        /// Offset within the mapping.
        offset: usize,
        /// Access width.
        width: usize,
    },
    /// The mapping lacks the protection (`PROT_READ`/`PROT_WRITE`) for this access.
    #[error("the mapping of region {region} does not allow {op}")]
    MappingProtection {
        /// Region index.
        region: u32,
        /// The refused access.
        op: Op,
    },
    /// No event arrived before the timeout.
    #[error("timed out waiting for an interrupt")]
    TimedOut,
}

impl ClientError {
    /// The errno of the failure: the OS's or server's for failed syscalls, or the one a
    /// conforming server answers with (SPEC.md §6.6) for an access the client refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            ClientError::Open { source, .. }
            | ClientError::Discovery(source)
            | ClientError::Io { source, .. }
            | ClientError::Map { source, .. } => source.raw_os_error(),
            ClientError::MmapUnavailable { .. } => Some(libc::ENODEV),
            ClientError::NoReset => Some(libc::ENOTSUP),
            ClientError::OutOfRange { .. }
            | ClientError::OutsideMapping { .. }
            | ClientError::NoSuchArea { .. } => Some(libc::ENXIO),
            ClientError::Misaligned { .. }
            | ClientError::WidthNotAccepted { .. }
            | ClientError::MisalignedMapping { .. }
            | ClientError::PageSize { .. } => Some(libc::EINVAL),
            ClientError::NotPermitted { op: Op::Map, .. }
            | ClientError::MappingProtection { .. } => Some(libc::EACCES),
            ClientError::NotPermitted { .. } | ClientError::NotMaskable(_) => Some(libc::EPERM),
            ClientError::NotMappable(_) | ClientError::Sparse { .. } => Some(libc::ENXIO),
            ClientError::TimedOut => Some(libc::ETIMEDOUT),
            ClientError::Truncated { .. }
            | ClientError::Format(_)
            | ClientError::Short { .. }
            | ClientError::NoSuchRegion(_)
            | ClientError::NoSuchInterrupt(_)
            | ClientError::UnknownName { .. }
            | ClientError::NoSuchVector { .. } => None,
        }
    }
}
