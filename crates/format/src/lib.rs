//! The devfd description format: the fixed header and typed records at offset 0 of a devfd
//! device file (see SPEC.md in the repository).
//!
//! * [`parse`] validates a description once and returns a borrowed [`Description`] whose
//!   accessors and lookups cannot fail.
//! * [`lint`] reports every problem of a damaged description, each with its byte offset.
//! * [`RecordIter`] walks raw records lazily, stopping at the first framing error.
//! * With the `alloc` feature, [`model::DeviceDesc`] is an owned description and
//!   [`write::Writer`] a low-level builder; `parse(build(x)) == x`.
//!
//! The crate is `no_std`, has no `unsafe`, and never panics on any input.
#![no_std]
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

#[cfg(feature = "alloc")]
extern crate alloc;

mod check;
mod error;
mod record;
mod types;
mod view;
pub mod wire;

#[cfg(feature = "alloc")]
pub mod model;
#[cfg(feature = "alloc")]
pub mod write;

pub use check::MIN_DESC_LEN;
pub use error::{Error, ErrorKind, RecordRef};
pub use record::{RawRecord, RecordIter};
pub use types::{
    AccessWidths, Bus, Location, dt_property_from_name, dt_property_name, irq_kind_from_name,
    irq_kind_name, record_type_name,
};
pub use view::{
    Description, Device, DtCells, DtInterrupt, DtRef, FlatEntry, Interrupt, PciId, Records, Region,
    SparseAreas,
};

/// Validates `bytes` as a description (SPEC.md §7) and returns a view of it.
///
/// `bytes` may extend past the description (`desc_len`); the extra bytes are ignored. The
/// work is bounded by [`wire::MAX_DESC_LEN`] and [`wire::MAX_RECORDS`] whatever the input.
pub fn parse(bytes: &[u8]) -> Result<Description<'_>, Error> {
    check::validate(bytes, &mut check::Checker::strict())
}

/// Validates `bytes` and reports every problem to `report`; returns how many there were.
///
/// Per-record problems come in file order, then the whole-description ones (END, counts,
/// duplicate indices, overlaps). A framing error, which hides everything after it, is the
/// last one reported.
pub fn lint(bytes: &[u8], report: &mut dyn FnMut(Error)) -> usize {
    let mut count = 0usize;
    let mut counting = |e: Error| {
        count = count.saturating_add(1);
        report(e);
    };
    let fatal = check::validate(bytes, &mut check::Checker::collecting(&mut counting)).err();
    if let Some(e) = fatal {
        counting(e);
    }
    count
}

/// Reads `desc_len` from a description's first [`wire::PROLOGUE_LEN`] bytes, so a reader can
/// fetch the whole description with one more read (SPEC.md §2.3).
///
/// Checks only the magic, the major version, that the first record is DEVICE, and that
/// `desc_len` is within the format's limits; [`parse`] checks the rest.
pub fn desc_len_from_prologue(prologue: &[u8]) -> Result<usize, Error> {
    check::prologue(prologue).map(|p| p.desc_len as usize)
}
