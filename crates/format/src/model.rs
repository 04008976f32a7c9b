//! An owned description: build one, write it with [`DeviceDesc::build`], read one back with
//! [`DeviceDesc::from_description`]. `DeviceDesc::from_description(&parse(&d.build()?)?) == d`.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::Error;
use crate::types::{AccessWidths, Bus, Location};
use crate::view::{Description, PciId};
use crate::write::{WriteError, Writer};

/// An owned device description.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceDesc {
    /// The bus.
    pub bus: Bus,
    /// Header flags.
    pub flags: u32,
    /// PCI identity (PCI bus).
    pub pci_id: Option<PciId>,
    /// Device-tree `compatible` strings (platform bus).
    pub compatible: Vec<String>,
    /// A human-readable name.
    pub label: Option<String>,
    /// Regions, in file order.
    pub regions: Vec<RegionDesc>,
    /// Interrupts, in file order.
    pub interrupts: Vec<InterruptDesc>,
    /// File offset of the reset word (a RESET sub-record, version 1.2); `None`: no reset.
    pub reset: Option<u64>,
}

/// A device-tree node property entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DtLocation {
    /// Absolute node path.
    pub path: String,
    /// `DT_PROP_*`.
    pub property: u32,
    /// Entry of the property.
    pub index: u32,
    /// A region's CPU physical address after translation through every parent's `ranges`
    /// (a DT_ADDRESS sub-record, version 1.2).
    pub address: Option<u64>,
    /// An interrupt's controller and specifier (a DT_INTERRUPT sub-record, version 1.2).
    pub interrupt: Option<DtInterruptDesc>,
}

impl DtLocation {
    /// Entry `index` of `property` of node `path`, with no address or interrupt detail.
    pub fn new(path: impl Into<String>, property: u32, index: u32) -> Self {
        DtLocation {
            path: path.into(),
            property,
            index,
            address: None,
            interrupt: None,
        }
    }
}

/// An interrupt's controller node and specifier cells (DT_INTERRUPT).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DtInterruptDesc {
    /// Absolute path of the controller's node.
    pub controller: String,
    /// The specifier cells, as the controller's binding defines them.
    pub cells: Vec<u32>,
}

/// An owned region.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RegionDesc {
    /// Region index.
    pub index: u32,
    /// Offset in the device file.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// `REGION_*` flags.
    pub flags: u32,
    /// Bus location.
    pub location: Location,
    /// Device-tree origin.
    pub dt: Option<DtLocation>,
    /// Human-readable name.
    pub label: Option<String>,
    /// Sparse mmap areas `(offset, size)`, relative to the region; `None` if unrestricted.
    pub sparse: Option<Vec<(u64, u64)>>,
    /// The access widths of a register-like region (an ACCESS sub-record, version 1.1);
    /// `None` writes no ACCESS: all of 1, 2, 4 and 8 bytes are accepted.
    pub access_widths: Option<AccessWidths>,
    /// The bus (IO virtual) address of a DMA window region (a DMA_WINDOW sub-record, version
    /// 1.2); `None` for other regions.
    pub dma_address: Option<u64>,
}

/// An owned interrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InterruptDesc {
    /// Interrupt index.
    pub index: u32,
    /// Vector count.
    pub count: u32,
    /// `IRQ_KIND_*`.
    pub kind: u32,
    /// `IRQ_*` flags.
    pub flags: u32,
    /// Offset of the control window.
    pub control_offset: u64,
    /// Device-tree origin.
    pub dt: Option<DtLocation>,
    /// Human-readable name.
    pub label: Option<String>,
}

/// Why a [`DeviceDesc`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The writer refused a record (a string too long, the description too large, …).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The bytes written break a validation rule (overlapping regions, a bad BAR, …).
    #[error("the description is invalid")]
    Invalid(#[from] Error),
}

impl DeviceDesc {
    /// An empty description of a device on `bus`.
    pub fn new(bus: Bus) -> Self {
        DeviceDesc {
            bus,
            flags: 0,
            pci_id: None,
            compatible: Vec::new(),
            label: None,
            regions: Vec::new(),
            interrupts: Vec::new(),
            reset: None,
        }
    }

    /// Writes the description; fails if the result would not pass [`crate::parse`].
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        let bytes = self.write()?;
        crate::parse(&bytes)?;
        Ok(bytes)
    }

    /// Writes the description without validating it (see [`Self::build`]); only misuse of the
    /// writer or a value the format cannot hold fails.
    pub fn write(&self) -> Result<Vec<u8>, WriteError> {
        let mut w = Writer::new(self.bus, self.flags)?;
        let device = w.begin_device()?;
        if let Some(id) = &self.pci_id {
            w.pci_id(id)?;
        }
        if !self.compatible.is_empty() {
            w.compatible(self.compatible.iter().map(String::as_str))?;
        }
        if let Some(label) = &self.label {
            w.label(label)?;
        }
        if let Some(offset) = self.reset {
            w.reset_word(offset)?;
        }
        w.end(device)?;
        for r in &self.regions {
            let token = w.begin_region(r.index, r.offset, r.size, r.flags)?;
            if let Some(label) = &r.label {
                w.label(label)?;
            }
            match r.location {
                Location::None => {}
                Location::PciBar { bar, flags } => w.pci_bar(bar, flags)?,
                Location::PciConfig => w.pci_config()?,
                Location::PciRom => w.pci_rom()?,
            }
            if let Some(dt) = &r.dt {
                write_dt(&mut w, dt)?;
            }
            if let Some(areas) = &r.sparse {
                w.sparse_mmap(areas)?;
            }
            if let Some(widths) = r.access_widths {
                w.access(u32::from(widths.bits()))?;
            }
            if let Some(address) = r.dma_address {
                w.dma_window(address)?;
            }
            w.end(token)?;
        }
        for i in &self.interrupts {
            let token = w.begin_interrupt(i.index, i.count, i.kind, i.flags, i.control_offset)?;
            if let Some(label) = &i.label {
                w.label(label)?;
            }
            if let Some(dt) = &i.dt {
                write_dt(&mut w, dt)?;
            }
            w.end(token)?;
        }
        w.finish()
    }

    /// Places the regions and interrupt control windows after the description, as a server
    /// that has no layout of its own does: each region on the next page boundary after the
    /// description (or after the previous region), in order; then each control window right
    /// after the last region, in order. The description's length does not depend on the
    /// offsets, so it is measured once.
    pub fn lay_out(&mut self) -> Result<(), WriteError> {
        const PAGE: u64 = crate::wire::PAGE_SIZE;
        let align = |n: u64, to: u64| n.div_ceil(to).saturating_mul(to);
        let desc_len = self.write()?.len() as u64;
        let mut next = align(desc_len, PAGE).max(PAGE);
        for r in &mut self.regions {
            r.offset = next;
            next = align(next.saturating_add(r.size), PAGE);
        }
        for i in &mut self.interrupts {
            i.control_offset = next;
            let size = u64::from(i.count).saturating_mul(crate::wire::IRQ_CONTROL_STRIDE);
            next = next.saturating_add(size);
        }
        Ok(())
    }

    /// The owned form of a validated description (unknown records are not kept).
    pub fn from_description(d: &Description<'_>) -> Self {
        let device = d.device();
        let dt =
            |r: Option<crate::DtRef<'_>>| r.map(|r| DtLocation::new(r.path, r.property, r.index));
        DeviceDesc {
            bus: d.bus(),
            flags: d.flags(),
            pci_id: device.pci_id(),
            compatible: device.compatible().map(String::from).collect(),
            label: device.label().map(String::from),
            reset: device.reset_offset(),
            regions: d
                .regions()
                .map(|r| RegionDesc {
                    index: r.index,
                    offset: r.offset,
                    size: r.size,
                    flags: r.flags,
                    location: r.location(),
                    dt: dt(r.dt()).map(|mut dt| {
                        dt.address = r.dt_address();
                        dt
                    }),
                    label: r.label().map(String::from),
                    sparse: r.sparse_areas().map(|a| a.collect()),
                    dma_address: r.dma_address(),
                    access_widths: r.access(),
                })
                .collect(),
            interrupts: d
                .interrupts()
                .map(|i| InterruptDesc {
                    index: i.index,
                    count: i.count,
                    kind: i.kind,
                    flags: i.flags,
                    control_offset: i.control_offset,
                    dt: dt(i.dt()).map(|mut dt| {
                        dt.interrupt = i.dt_interrupt().map(|x| DtInterruptDesc {
                            controller: x.controller.into(),
                            cells: x.cells.collect(),
                        });
                        dt
                    }),
                    label: i.label().map(String::from),
                })
                .collect(),
        }
    }
}

/// DT_PATH + DT_INDEX, then the 1.2 detail records the location carries.
fn write_dt(w: &mut Writer, dt: &DtLocation) -> Result<(), WriteError> {
    w.dt(&dt.path, dt.property, dt.index)?;
    if let Some(address) = dt.address {
        w.dt_address(address)?;
    }
    if let Some(irq) = &dt.interrupt {
        w.dt_interrupt(&irq.controller, &irq.cells)?;
    }
    Ok(())
}
