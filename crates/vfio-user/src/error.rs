//! Errors of the vfio-user presentation and source.

use std::io;

/// A message that breaks the protocol, located by command, field and byte offset in the
/// message (the header is bytes 0–15).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The header's size is below 16 or above what devfd accepts.
    #[error("message size {size} (header byte 4) is outside 16..={max}")]
    BadSize {
        /// The size the header claims.
        size: u32,
        /// The largest accepted.
        max: usize,
    },
    /// Header flags with undefined bits, or a type other than command/reply.
    #[error("header flags {flags:#x} (byte 8) have undefined bits or an unknown type")]
    BadFlags {
        /// The flags.
        flags: u32,
    },
    /// A reply where a command was expected, or the reverse.
    #[error("{what} where a {expected} was expected (message id {id})")]
    WrongType {
        /// What arrived.
        what: &'static str,
        /// What was expected.
        expected: &'static str,
        /// Its message id.
        id: u16,
    },
    /// A command number this protocol does not define.
    #[error("unknown command {0}")]
    UnknownCommand(u16),
    /// The payload is shorter than the command's fixed part.
    #[error("{command}: payload of {got} bytes, the fixed part needs {need}")]
    Short {
        /// The command.
        command: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes there.
        got: usize,
    },
    /// A field with a value the protocol or devfd does not accept.
    #[error("{command}: {field} = {value:#x} at byte {offset}: {reason}")]
    BadField {
        /// The command.
        command: &'static str,
        /// The field.
        field: &'static str,
        /// Its byte offset in the message.
        offset: usize,
        /// Its value.
        value: u64,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The wrong number of file descriptors came with the message.
    #[error("{command}: {got} file descriptors, {want}")]
    Fds {
        /// The command.
        command: &'static str,
        /// How many came.
        got: usize,
        /// What was expected, in words.
        want: &'static str,
    },
    /// VERSION's capabilities are not the JSON the protocol defines.
    #[error("VERSION capabilities (byte 20 on): {0}")]
    Capabilities(String),
    /// A reply's payload does not fit the command it answers.
    #[error("reply to {command}: {reason}")]
    BadReply {
        /// The command answered.
        command: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ProtocolError {
    /// The errno an error reply carries for this error.
    pub fn errno(&self) -> i32 {
        match self {
            ProtocolError::UnknownCommand(_) => libc::ENOTSUP,
            ProtocolError::BadSize { size, max } if *size as usize > *max => libc::E2BIG,
            _ => libc::EINVAL,
        }
    }
}

/// Why serving or using a vfio-user device failed.
#[derive(Debug, thiserror::Error)]
pub enum VfioUserError {
    /// A socket call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The peer broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// The server answered a command with an error.
    #[error("{command} failed on the server: {}", errno_text(*.errno))]
    Remote {
        /// The command.
        command: &'static str,
        /// The errno of the error reply.
        errno: i32,
    },
    /// The peer's version is not one devfd speaks.
    #[error("the peer speaks vfio-user {major}.{minor}; devfd speaks 0.1")]
    Version {
        /// Its major version.
        major: u16,
        /// Its minor version.
        minor: u16,
    },
    /// The device cannot be presented over vfio-user.
    #[error("{0}")]
    Unservable(String),
    /// The server's description of its device cannot become a devfd description.
    #[error("describing the server's device: {0}")]
    Describe(#[from] devfd_format::model::BuildError),
    /// A device's own description is invalid.
    #[error("invalid description: {0}")]
    Parse(#[from] devfd_format::Error),
}

/// `strerror` text of an errno, for messages.
pub(crate) fn errno_text(errno: i32) -> String {
    if errno == 0 {
        "error reply without an errno".into()
    } else {
        io::Error::from_raw_os_error(errno).to_string()
    }
}

impl VfioUserError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        VfioUserError::Io {
            what: what.into(),
            source,
        }
    }
}
