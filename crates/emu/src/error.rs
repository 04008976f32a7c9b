//! Errors of building devices and of the shared memory behind them.

use std::io;

/// Why an emulated device could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    /// [`crate::from_spec`] was given a kind it does not know.
    #[error("unknown device kind `{0}` (known: edu, pl031, memory, fault)")]
    UnknownKind(String),
    /// An option the device kind does not have.
    #[error("device `{kind}` has no option `{option}`")]
    UnknownOption {
        /// The device kind.
        kind: String,
        /// The option as given.
        option: String,
    },
    /// An option whose value cannot be used.
    #[error("option `{option}`: bad value `{value}`: {reason}")]
    BadOption {
        /// The option.
        option: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A memory size that is not a whole number of 4 KiB pages, or is 0.
    #[error("memory size {0:#x} is not a non-zero multiple of 4096")]
    BadMemorySize(u64),
    /// A memory device larger than the machine's RAM, without `overcommit`.
    #[error(
        "memory size {size} bytes exceeds this machine's RAM ({ram} bytes); memory devices are \
         lazily backed, so add overcommit=1 to accept that touching it all may get the server \
         OOM-killed"
    )]
    MemoryOverRam {
        /// Requested size.
        size: u64,
        /// `MemTotal`.
        ram: u64,
    },
    /// The description could not be built (a bug, or a size the format cannot hold).
    #[error("cannot build the description")]
    Build(#[from] devfd_format::model::BuildError),
    /// The description built does not parse (a bug in the device's description).
    #[error("the description does not parse")]
    Parse(#[from] devfd_format::Error),
    /// The shared memory behind a memory device could not be made.
    #[error(transparent)]
    SharedMemory(#[from] ShmError),
    /// A device-tree node that does not give a model what it needs (a register block of
    /// the right size, …).
    #[error("the node does not suit the {model} model: {why}")]
    UnsuitableNode {
        /// The model.
        model: &'static str,
        /// What is missing.
        why: String,
    },
    /// A device's worker thread could not be started.
    #[error("cannot start the {name} thread")]
    Thread {
        /// Which thread.
        name: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// Why a [`crate::SharedMemory`] could not be made or accessed.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A size of 0, or one this machine cannot address.
    #[error("shared memory size {0:#x} is 0 or too large")]
    BadSize(u64),
    /// A system call failed.
    #[error("{call} failed")]
    System {
        /// The call (`memfd_create`, `mmap`, …).
        call: &'static str,
        /// The error it returned.
        source: io::Error,
    },
    /// The size exceeds this process's file-size limit (`ulimit -f`, RLIMIT_FSIZE).
    #[error("{0} bytes of shared memory exceed the file-size limit (ulimit -f)")]
    OverFileSizeLimit(u64),
    /// [`crate::SharedMemory::from_fd`] was given a file that is not sealed against shrinking,
    /// so a mapping of it could fault (SIGBUS) when another holder truncates it.
    #[error("the file is not a memfd sealed against shrinking")]
    NotSealed,
    /// An access that does not lie within the memory.
    #[error("{len} bytes at {offset:#x} run past the end ({size:#x})")]
    OutOfBounds {
        /// Offset of the access.
        offset: u64,
        /// Its length.
        len: usize,
        /// Size of the memory.
        size: u64,
    },
}

impl ShmError {
    /// The last OS error, blamed on `call`.
    pub(crate) fn last_os_error(call: &'static str) -> Self {
        ShmError::System {
            call,
            source: io::Error::last_os_error(),
        }
    }
}
