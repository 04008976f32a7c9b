//! A small flattened-device-tree writer: what devfd uses to turn the `/proc/device-tree`
//! directory form into a blob, and what tests and benchmarks use to make blobs (valid or
//! deliberately damaged) without `dtc`.

use std::collections::HashMap;

use crate::fdt::{
    FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_NOP, FDT_PROP, HEADER_LEN, VERSION,
};

/// Builds a version-17 blob node by node: [`Self::begin_node`] (the root with name `""`),
/// [`Self::property`]s, children, [`Self::end_node`], then [`Self::finish`]. Property names
/// are stored once in the strings block. It writes what it is told, valid or not.
#[derive(Debug, Default, Clone)]
pub struct FdtWriter {
    structure: Vec<u8>,
    strings: Vec<u8>,
    names: HashMap<String, u32>,
    reserved: Vec<(u64, u64)>,
    boot_cpuid: u32,
}

/// Big-endian cells, as a property value.
pub fn cells(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// A NUL-terminated string list, as a property value.
pub fn strings(values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn pad4(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

impl FdtWriter {
    /// An empty blob.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a memory reservation entry.
    pub fn reserve(&mut self, address: u64, size: u64) -> &mut Self {
        self.reserved.push((address, size));
        self
    }

    /// Appends a raw 32-bit token (for damaged blobs).
    pub fn token(&mut self, token: u32) -> &mut Self {
        self.structure.extend_from_slice(&token.to_be_bytes());
        self
    }

    /// Opens a node.
    pub fn begin_node(&mut self, name: &str) -> &mut Self {
        self.token(FDT_BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        pad4(&mut self.structure);
        self
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) -> &mut Self {
        self.token(FDT_END_NODE)
    }

    /// Appends a NOP token.
    pub fn nop(&mut self) -> &mut Self {
        self.token(FDT_NOP)
    }

    /// The strings-block offset of `name`, adding it if new.
    pub fn name_offset(&mut self, name: &str) -> u32 {
        if let Some(&at) = self.names.get(name) {
            return at;
        }
        let at = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.names.insert(name.to_owned(), at);
        at
    }

    /// Appends a property with this name offset (for damaged blobs).
    pub fn raw_property(&mut self, nameoff: u32, value: &[u8]) -> &mut Self {
        self.token(FDT_PROP);
        self.structure
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.structure.extend_from_slice(&nameoff.to_be_bytes());
        self.structure.extend_from_slice(value);
        pad4(&mut self.structure);
        self
    }

    /// Appends a property.
    pub fn property(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let at = self.name_offset(name);
        self.raw_property(at, value)
    }

    /// Appends a property of big-endian cells.
    pub fn cells(&mut self, name: &str, values: &[u32]) -> &mut Self {
        self.property(name, &cells(values))
    }

    /// Appends a string-list property.
    pub fn strings(&mut self, name: &str, values: &[&str]) -> &mut Self {
        self.property(name, &strings(values))
    }

    /// Appends END and lays out the blob: header, reservation map, structure block, strings
    /// block.
    pub fn finish(&self) -> Vec<u8> {
        let mut structure = self.structure.clone();
        structure.extend_from_slice(&FDT_END.to_be_bytes());
        let rsv_at = HEADER_LEN.next_multiple_of(8);
        let rsv_len = self.reserved.len().saturating_add(1).saturating_mul(16);
        let struct_at = rsv_at.saturating_add(rsv_len);
        let strings_at = struct_at.saturating_add(structure.len());
        let total = strings_at.saturating_add(self.strings.len());
        let mut out = Vec::with_capacity(total);
        for field in [
            FDT_MAGIC,
            total as u32,
            struct_at as u32,
            strings_at as u32,
            rsv_at as u32,
            VERSION,
            16,
            self.boot_cpuid,
            self.strings.len() as u32,
            structure.len() as u32,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out.resize(rsv_at, 0);
        for &(address, size) in &self.reserved {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&size.to_be_bytes());
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&structure);
        out.extend_from_slice(&self.strings);
        out
    }
}
