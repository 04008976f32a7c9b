//! Typed, located errors: every error says what is wrong, at which byte of the blob, and in
//! which node.

use std::fmt;
use std::path::PathBuf;

/// A device tree devfd rejects: what ([`ErrorKind`]), where in the blob (byte offset) and in
/// which node (its path).
///
/// For the `/proc/device-tree` directory form the offset is one in the blob devfd assembled
/// from the directory (see [`crate::source`]); the node path is the useful part there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Byte offset, from the start of the blob, of the offending header field, token or
    /// property.
    pub offset: Option<usize>,
    /// Path of the node concerned, if the error is about a node.
    pub node: Option<String>,
}

impl Error {
    pub(crate) fn at(kind: ErrorKind, offset: usize) -> Self {
        Error {
            kind,
            offset: Some(offset),
            node: None,
        }
    }

    pub(crate) fn in_node(kind: ErrorKind, offset: usize, node: String) -> Self {
        Error {
            kind,
            offset: Some(offset),
            node: Some(node),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(offset) = self.offset {
            write!(f, "byte {offset:#x}")?;
            sep = ", ";
        }
        if let Some(node) = &self.node {
            write!(f, "{sep}node {node}")?;
            sep = ", ";
        }
        let colon = if sep.is_empty() { "" } else { ": " };
        write!(f, "{colon}{}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Describe(e) => Some(e),
            _ => None,
        }
    }
}

/// The kinds of damage a device tree can have, and the semantic rules it can break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // --- the header and the blocks --------------------------------------------------------
    /// Fewer bytes than the header needs.
    #[error("truncated: the header needs {needed} bytes, {available} present")]
    TooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The magic is not 0xd00dfeed.
    #[error("bad magic {found:#010x}: not a flattened device tree (0xd00dfeed)")]
    BadMagic {
        /// The magic read.
        found: u32,
    },
    /// A version this reader does not implement.
    #[error(
        "unsupported version {version} (last compatible {last_comp_version}): devfd reads blobs of version 17 and later that stay compatible with 17"
    )]
    BadVersion {
        /// `version`.
        version: u32,
        /// `last_comp_version`.
        last_comp_version: u32,
    },
    /// `totalsize` is smaller than the header.
    #[error("totalsize {totalsize} is smaller than the {header}-byte header")]
    TotalSizeTooSmall {
        /// `totalsize`.
        totalsize: u32,
        /// Header length.
        header: usize,
    },
    /// The buffer ends before `totalsize`.
    #[error("truncated: totalsize {totalsize}, only {available} bytes present")]
    Truncated {
        /// `totalsize`.
        totalsize: u32,
        /// Bytes present.
        available: usize,
    },
    /// A block that does not lie between the header and `totalsize`.
    #[error(
        "{block} block at {offset:#x} (+{size:#x}) lies outside the blob (header to totalsize {totalsize:#x})"
    )]
    BlockOutside {
        /// "memory reservation", "structure" or "strings".
        block: &'static str,
        /// Its offset.
        offset: u32,
        /// Its size.
        size: u32,
        /// `totalsize`.
        totalsize: u32,
    },
    /// A block offset or size that is not aligned.
    #[error("{block} block offset or size {value:#x} is not a multiple of {align}")]
    BlockMisaligned {
        /// Which block.
        block: &'static str,
        /// The offset or size.
        value: u32,
        /// Required alignment.
        align: u32,
    },
    /// Two blocks share bytes.
    #[error("the {first} and {second} blocks overlap")]
    BlocksOverlap {
        /// The block that starts first.
        first: &'static str,
        /// The other block.
        second: &'static str,
    },
    /// The memory reservation map has no terminating (0, 0) entry inside the blob.
    #[error("the memory reservation map has no (0, 0) entry before the end of the blob")]
    ReserveMapUnterminated,

    // --- the structure block --------------------------------------------------------------
    /// A token that is none of BEGIN_NODE, END_NODE, PROP, NOP, END.
    #[error("unknown structure token {token:#x}")]
    UnknownToken {
        /// The token read.
        token: u32,
    },
    /// The structure block ends inside a token.
    #[error("the structure block ends inside {what}")]
    StructTruncated {
        /// What was being read.
        what: &'static str,
    },
    /// A node name without a NUL inside the structure block.
    #[error("node name is not NUL-terminated inside the structure block")]
    UnterminatedName,
    /// A property name offset outside the strings block.
    #[error("property name offset {nameoff:#x} is outside the {size}-byte strings block")]
    NameOffsetOutside {
        /// `nameoff`.
        nameoff: u32,
        /// `size_dt_strings`.
        size: u32,
    },
    /// A property name without a NUL inside the strings block.
    #[error(
        "property name at strings offset {nameoff:#x} is not NUL-terminated inside the strings block"
    )]
    UnterminatedString {
        /// `nameoff`.
        nameoff: u32,
    },
    /// A node or property name that is empty, has a `/`, or is not printable ASCII.
    #[error("{what} name {name:?} is empty, contains '/', or is not printable ASCII")]
    BadName {
        /// "node" or "property".
        what: &'static str,
        /// The name, lossily decoded.
        name: String,
    },
    /// Nodes nested deeper than any real tree.
    #[error("nodes nest deeper than {max} levels")]
    TooDeep {
        /// The limit ([`crate::MAX_DEPTH`]).
        max: usize,
    },
    /// The structure block does not start with the root node (BEGIN_NODE with an empty name).
    #[error("the structure block does not start with the root node")]
    NoRoot,
    /// A second top-level node after the root closed.
    #[error("a second top-level node after the root")]
    ExtraRoot,
    /// END_NODE with no node open.
    #[error("END_NODE with no node open")]
    UnexpectedEndNode,
    /// END while a node is still open.
    #[error("END while {open} node(s) are still open")]
    UnclosedNode {
        /// Nodes left open.
        open: usize,
    },
    /// The structure block ends without END.
    #[error("the structure block ends without an END token")]
    MissingEnd,
    /// Bytes after END inside the structure block.
    #[error("{bytes} bytes follow the END token inside the structure block")]
    TrailingData {
        /// How many.
        bytes: usize,
    },
    /// A property outside any node.
    #[error("a property outside any node")]
    PropertyOutsideNode,
    /// A property after a subnode of the same node.
    #[error("property {name:?} follows a subnode (properties come first)")]
    PropertyAfterSubnode {
        /// The property's name.
        name: String,
    },
    /// Two children of one node with the same name.
    #[error("two subnodes are named {name:?}")]
    DuplicateNode {
        /// The name.
        name: String,
    },
    /// Two properties of one node with the same name.
    #[error("two properties are named {name:?}")]
    DuplicateProperty {
        /// The name.
        name: String,
    },

    // --- semantics ------------------------------------------------------------------------
    /// A `#…-cells` property that is not one cell.
    #[error("`{property}` is {len} bytes, one 4-byte cell required")]
    BadCellsProperty {
        /// The property.
        property: &'static str,
        /// Its length.
        len: usize,
    },
    /// A `#…-cells` value above what any binding uses.
    #[error("`{property}` = <{value}> is above the maximum {max}")]
    CellsOutOfRange {
        /// The property.
        property: &'static str,
        /// Its value.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// `reg` or `ranges` under a parent whose `#address-cells` is 0: entries without an
    /// address.
    #[error("`{property}` needs addresses, but #address-cells is 0")]
    ZeroAddressCells {
        /// The property.
        property: &'static str,
    },
    /// A property whose length is not a whole number of entries.
    #[error("`{property}` is {len} bytes, not a multiple of the {unit}-byte entry ({why})")]
    BadLength {
        /// The property.
        property: &'static str,
        /// Its length.
        len: usize,
        /// Bytes per entry.
        unit: usize,
        /// How the entry size comes about.
        why: String,
    },
    /// An entry whose range runs past the end of its address space.
    #[error("`{property}` entry {entry} runs past the end of a {bits}-bit address space")]
    Overflow {
        /// The property.
        property: &'static str,
        /// The entry.
        entry: u32,
        /// Width of the address space.
        bits: u32,
    },
    /// A `phandle` value that cannot be one.
    #[error("`phandle` {value:#x} is reserved (0 and 0xffffffff are not phandles)")]
    BadPhandle {
        /// The value.
        value: u32,
    },
    /// Two nodes with the same phandle.
    #[error("phandle {phandle:#x} is also the phandle of {other}")]
    DuplicatePhandle {
        /// The phandle.
        phandle: u32,
        /// The other node's path.
        other: String,
    },
    /// A reference to a phandle no node has.
    #[error("`{property}` refers to phandle {phandle:#x}, which no node has")]
    UnknownPhandle {
        /// The property.
        property: &'static str,
        /// The phandle.
        phandle: u32,
    },
    /// `interrupts-extended` names a node that is not an interrupt controller.
    #[error("`{property}` names {target}, which has no #interrupt-cells")]
    NotInterruptController {
        /// The property.
        property: &'static str,
        /// The node named.
        target: String,
    },
    /// The interrupt-parent chain comes back to a node it passed.
    #[error("the interrupt-parent chain loops: it comes back to {via}")]
    InterruptParentLoop {
        /// The node reached twice.
        via: String,
    },
    /// `interrupts` without any interrupt controller among the interrupt parents.
    #[error("`interrupts`, but no interrupt controller is found as interrupt parent")]
    NoInterruptParent,
    /// `interrupts` whose controller has `#interrupt-cells = <0>`.
    #[error("`interrupts`, but its controller {controller} has #interrupt-cells = <0>")]
    ZeroInterruptCells {
        /// The controller's path.
        controller: String,
    },
    /// A string property that is not a list of NUL-terminated, non-empty printable strings.
    #[error("`{property}` is not a list of non-empty NUL-terminated printable-ASCII strings")]
    BadString {
        /// The property.
        property: &'static str,
    },
    /// The description of a node could not be built (a path longer than a DT_PATH holds, a
    /// region that does not fit a device file, …).
    #[error("cannot build the node's description")]
    Describe(#[source] devfd_format::model::BuildError),
}

/// Why a device tree could not be read from a file or directory.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `/proc/device-tree` style directory that cannot be a device tree (too deep, too large).
    #[error("{}: {why}", path.display())]
    Directory {
        /// The directory or file concerned.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The blob is not a usable device tree.
    #[error("{}: invalid device tree", path.display())]
    Tree {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong, and where.
        #[source]
        error: Box<Error>,
    },
}
