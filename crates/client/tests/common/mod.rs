//! Shared helpers: golden blobs, descriptions built for a test, padded device files.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::{IRQ_KIND_MSIX, REGION_MMAP, REGION_READ, REGION_WRITE};
use devfd_format::{Bus, Location, PciId};

/// Path of a golden description.
pub fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden")
        .join(name)
}

/// A PCI device with a PCI_ID and nothing else.
pub fn pci_device() -> DeviceDesc {
    let mut d = DeviceDesc::new(Bus::Pci);
    d.pci_id = Some(PciId {
        vendor: 0x1234,
        device: 0x5678,
        ..PciId::default()
    });
    d
}

/// A register-like or memory-like region without location.
pub fn region(index: u32, offset: u64, size: u64, flags: u32) -> RegionDesc {
    RegionDesc {
        index,
        offset,
        size,
        flags,
        location: Location::None,
        dt: None,
        label: None,
        sparse: None,
        dma_address: None,
        access_widths: None,
    }
}

/// A description of at least `min_len` bytes: many labelled register regions.
pub fn big_description(min_len: usize) -> Vec<u8> {
    let mut d = pci_device();
    let mut i = 0u32;
    loop {
        let mut r = region(
            i,
            0x10_0000 + u64::from(i) * 0x1000,
            0x100,
            REGION_READ | REGION_WRITE,
        );
        r.label = Some(format!(
            "register-bank-{i:04}-with-a-rather-long-descriptive-label"
        ));
        d.regions.push(r);
        let bytes = d.build().expect("valid description");
        if bytes.len() >= min_len {
            return bytes;
        }
        i += 1;
    }
}

/// Region 0: memory-like, read-write, `size` bytes at 0x1000. Interrupt 0: MSI-X, 4
/// vectors, not maskable, at `0x1000 + size`.
pub fn mmap_description(size: u64) -> Vec<u8> {
    let mut d = pci_device();
    let mut r = region(0, 0x1000, size, REGION_READ | REGION_WRITE | REGION_MMAP);
    r.label = Some("ram".into());
    d.regions.push(r);
    d.interrupts.push(InterruptDesc {
        index: 0,
        count: 4,
        kind: IRQ_KIND_MSIX,
        flags: 0,
        control_offset: 0x1000 + size,
        dt: None,
        label: None,
    });
    d.build().expect("valid description")
}

/// Writes `bytes` to `dir/name`, padded with zeros to `len` bytes (if longer).
pub fn write_padded(dir: &Path, name: &str, bytes: &[u8], len: u64) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    if len > bytes.len() as u64 {
        f.set_len(len).unwrap();
    }
    path
}

/// A copy of a golden blob in `dir`, padded to `len` bytes.
pub fn golden_copy(dir: &Path, name: &str, len: u64) -> PathBuf {
    let bytes = fs::read(golden(name)).unwrap();
    write_padded(dir, name, &bytes, len)
}
