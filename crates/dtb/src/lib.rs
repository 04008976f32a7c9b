//! The device-tree source of devfd: it reads a flattened device tree (a DTB file,
//! `/sys/firmware/fdt`, or the `/proc/device-tree` directory form) and turns every enabled
//! node with `reg` or interrupts into a platform device description.
//!
//! * [`Tree::parse`] checks the blob like libfdt does (header, blocks, tokens, names), with
//!   overflow-safe arithmetic, and borrows names and values from it.
//! * [`DeviceTree::parse`] also checks the semantics devfd relies on — cells, `reg`,
//!   `ranges` and address translation, `status`, phandles, interrupt parents, `interrupts`
//!   and `interrupts-extended` — and lists the nodes with resources ([`DtNode`]).
//! * [`DtNode::description`] is a node's [`devfd_format::model::DeviceDesc`]: DT_COMPATIBLE,
//!   a REGION per memory-mapped `reg` entry, an INTERRUPT per interrupt, each with its DT
//!   path, index and (format 1.2) translated address or controller and specifier.
//! * [`source::read`] reads any of the three forms; [`write::FdtWriter`] writes blobs.
//!
//! Every input is untrusted: errors are typed and located ([`Error`]: byte offset and node
//! path), nothing panics, and there is no `unsafe`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod devices;
mod error;
mod fdt;
pub mod source;
mod tree;
pub mod write;

pub use devices::{
    DEFAULT_ADDRESS_CELLS, DEFAULT_SIZE_CELLS, DeviceTree, DtNode, Interrupt, MAX_CELLS, Reg,
    Trigger,
};
pub use error::{Error, ErrorKind, SourceError};
pub use fdt::{FDT_MAGIC, HEADER_LEN, Header, MAX_DEPTH, VERSION};
pub use tree::{Children, NodeId, Property, Tree};

/// Reads a device tree from `path` ([`source::read`]) and returns its bytes, checked: the
/// bytes parse as a [`DeviceTree`] (parse them again to use it, as it borrows from them).
pub fn load(path: &std::path::Path) -> Result<Vec<u8>, SourceError> {
    let bytes = source::read(path)?;
    DeviceTree::parse(&bytes).map_err(|error| SourceError::Tree {
        path: path.to_owned(),
        error: Box::new(error),
    })?;
    Ok(bytes)
}
