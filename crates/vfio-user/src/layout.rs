//! How a devfd device looks over vfio-user: its PCI regions at VFIO's indices (BARs 0–5,
//! ROM 6, config 7), its interrupts at VFIO's irq indices (INTx 0, MSI 1, MSI-X 2, ERR 3,
//! REQ 4), built once from the description.

use devfd_device::RegionMap;
use devfd_format::wire::{
    IRQ_KIND_ERROR, IRQ_KIND_INTX, IRQ_KIND_MSI, IRQ_KIND_MSIX, IRQ_KIND_REQUEST, IRQ_MASKABLE,
};
use devfd_format::{AccessWidths, Bus, Location};

use crate::error::VfioUserError;
use crate::wire::*;

/// A VFIO region backed by a devfd region.
#[derive(Debug, Clone)]
pub struct RegionSlot {
    /// The devfd region index.
    pub devfd_index: u32,
    /// Its offset in the device file (for [`RegionMap`] checks).
    pub file_offset: u64,
    /// Size.
    pub size: u64,
    /// `REGION_FLAG_READ` / `REGION_FLAG_WRITE` (MMAP is added when the device has memory).
    pub flags: u32,
    /// Memory-like (any access length) rather than register-like.
    pub memory_like: bool,
    /// Register widths accepted.
    pub widths: AccessWidths,
    /// Mappable areas (offset, size) relative to the region, from a SPARSE sub-record.
    pub sparse: Vec<(u64, u64)>,
}

/// A VFIO irq index backed by a devfd interrupt.
#[derive(Debug, Clone, Copy)]
pub struct IrqSlot {
    /// The devfd interrupt index.
    pub devfd_index: u32,
    /// Vectors.
    pub count: u32,
    /// Whether it can be masked.
    pub maskable: bool,
}

/// A region or irq index past the last one the device reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no region or irq index {0}")]
pub struct NoSuchIndex(pub u32);

/// The whole layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// VFIO regions 0..9 (None: absent, reported with size 0).
    pub regions: Vec<Option<RegionSlot>>,
    /// VFIO irq indices 0..5 (None: count 0).
    pub irqs: Vec<Option<IrqSlot>>,
    /// Whether the device resets (DEVICE_RESET is offered).
    pub reset: bool,
    /// The device file's address map, for checking accesses as the device file does.
    pub map: RegionMap,
}

impl Layout {
    /// The layout of a device with description `bytes` that resets if `resettable`; only PCI
    /// devices can be served.
    pub fn new(bytes: &[u8], resettable: bool) -> Result<Self, VfioUserError> {
        let d = devfd_format::parse(bytes)?;
        if d.bus() != Bus::Pci {
            return Err(VfioUserError::Unservable(format!(
                "vfio-user serves PCI devices; this one's bus is {:?}",
                d.bus()
            )));
        }
        let mut regions: Vec<Option<RegionSlot>> = vec![None; PCI_NUM_REGIONS as usize];
        for r in d.regions() {
            let index = match r.location() {
                Location::PciBar { bar, .. } => u32::from(bar),
                Location::PciRom => PCI_ROM_REGION,
                Location::PciConfig => PCI_CONFIG_REGION,
                Location::None => continue,
            };
            let mut flags = 0;
            if r.readable() {
                flags |= REGION_FLAG_READ;
            }
            if r.writable() {
                flags |= REGION_FLAG_WRITE;
            }
            let sparse = r.sparse_areas().map(Iterator::collect).unwrap_or_default();
            if let Some(slot) = regions.get_mut(index as usize) {
                *slot = Some(RegionSlot {
                    devfd_index: r.index,
                    file_offset: r.offset,
                    size: r.size,
                    flags,
                    memory_like: r.mmappable(),
                    widths: r.access_widths().unwrap_or(AccessWidths::ALL),
                    sparse,
                });
            }
        }
        if regions
            .get(PCI_CONFIG_REGION as usize)
            .is_none_or(Option::is_none)
        {
            return Err(VfioUserError::Unservable(
                "the device has no PCI configuration-space region; vfio-user clients need one"
                    .into(),
            ));
        }
        let mut irqs: Vec<Option<IrqSlot>> = vec![None; PCI_NUM_IRQS as usize];
        for i in d.interrupts() {
            let index = match i.kind {
                IRQ_KIND_INTX => PCI_INTX_IRQ,
                IRQ_KIND_MSI => PCI_MSI_IRQ,
                IRQ_KIND_MSIX => PCI_MSIX_IRQ,
                IRQ_KIND_ERROR => PCI_ERR_IRQ,
                IRQ_KIND_REQUEST => PCI_REQ_IRQ,
                _ => continue,
            };
            if let Some(slot) = irqs.get_mut(index as usize) {
                *slot = Some(IrqSlot {
                    devfd_index: i.index,
                    count: if index == PCI_INTX_IRQ { 1 } else { i.count },
                    maskable: i.flags & IRQ_MASKABLE != 0,
                });
            }
        }
        Ok(Layout {
            regions,
            irqs,
            reset: resettable,
            map: RegionMap::new(&d),
        })
    }

    /// The VFIO region `index`: `Ok(None)` if absent but in range, `Err` past the last.
    pub fn region(&self, index: u32) -> Result<Option<&RegionSlot>, NoSuchIndex> {
        self.regions
            .get(index as usize)
            .map(Option::as_ref)
            .ok_or(NoSuchIndex(index))
    }

    /// The VFIO irq index `index`: `Ok(None)` if absent but in range, `Err` past the last.
    pub fn irq(&self, index: u32) -> Result<Option<&IrqSlot>, NoSuchIndex> {
        self.irqs
            .get(index as usize)
            .map(Option::as_ref)
            .ok_or(NoSuchIndex(index))
    }

    /// The VFIO irq index of devfd interrupt `devfd_index`.
    pub fn vfio_irq_of(&self, devfd_index: u32) -> Option<u32> {
        self.irqs
            .iter()
            .position(|s| s.is_some_and(|s| s.devfd_index == devfd_index))
            .map(|i| i as u32)
    }
}

/// Splits an access of `len` bytes at `offset` into naturally aligned pieces of widths the
/// region accepts, largest first; `None` if some piece cannot be made (a region of 4-byte
/// registers read 2 bytes at a time).
pub fn split_access(
    offset: u64,
    len: usize,
    widths: AccessWidths,
    pieces: &mut Vec<(u64, usize)>,
) -> Option<()> {
    pieces.clear();
    let mut at = offset;
    let end = offset.checked_add(len as u64)?;
    while at < end {
        let left = end.checked_sub(at)?;
        let width = [8usize, 4, 2, 1]
            .into_iter()
            .find(|&w| widths.allows(w) && w as u64 <= left && at.is_multiple_of(w as u64))?;
        pieces.push((at.checked_sub(offset)?, width));
        at = at.checked_add(width as u64)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_split_into_aligned_accepted_widths() {
        let mut p = Vec::new();
        split_access(0, 256, AccessWidths::ALL, &mut p).unwrap();
        assert_eq!(p.len(), 32);
        split_access(2, 8, AccessWidths::ALL, &mut p).unwrap();
        assert_eq!(p, [(0, 2), (2, 4), (6, 2)]);
        let only4 = AccessWidths::new(devfd_format::wire::WIDTH_4).unwrap();
        split_access(4, 8, only4, &mut p).unwrap();
        assert_eq!(p, [(0, 4), (4, 4)]);
        assert!(split_access(2, 4, only4, &mut p).is_none());
        assert!(split_access(u64::MAX - 1, 4, AccessWidths::ALL, &mut p).is_none());
    }
}
