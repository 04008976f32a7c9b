//! Shared fixtures for the format tests.
#![allow(dead_code)]

use devfd_format::model::{DeviceDesc, DtLocation, InterruptDesc, RegionDesc};
use devfd_format::wire::*;
use devfd_format::{Bus, Location, PciId};

/// QEMU's edu device as devfd describes it: BAR0, config space, INTx and MSI.
pub fn edu() -> DeviceDesc {
    let mut d = DeviceDesc::new(Bus::Pci);
    d.pci_id = Some(PciId {
        vendor: 0x1234,
        device: 0x11e8,
        subsystem_vendor: 0x1af4,
        subsystem_device: 0x1100,
        class: 0x00ff00,
        revision: 0x10,
    });
    d.label = Some("edu".into());
    d.regions.push(RegionDesc {
        index: 0,
        offset: 0x1000,
        size: 0x10_0000,
        flags: REGION_READ | REGION_WRITE,
        location: Location::PciBar { bar: 0, flags: 0 },
        dt: None,
        label: Some("bar0".into()),
        sparse: None,
        dma_address: None,
        access_widths: None,
    });
    d.regions.push(RegionDesc {
        index: 7,
        offset: 0x10_1000,
        size: 256,
        flags: REGION_READ | REGION_WRITE,
        location: Location::PciConfig,
        dt: None,
        label: None,
        sparse: None,
        dma_address: None,
        access_widths: None,
    });
    d.interrupts.push(InterruptDesc {
        index: 0,
        count: 1,
        kind: IRQ_KIND_INTX,
        flags: IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
        control_offset: 0x10_2000,
        dt: None,
        label: None,
    });
    d.interrupts.push(InterruptDesc {
        index: 1,
        count: 1,
        kind: IRQ_KIND_MSI,
        flags: IRQ_MASKABLE,
        control_offset: 0x10_2010,
        dt: None,
        label: None,
    });
    d
}

/// An ARM PL031 RTC as a device-tree platform device.
pub fn pl031() -> DeviceDesc {
    let mut d = DeviceDesc::new(Bus::Platform);
    d.compatible = vec!["arm,pl031".into(), "arm,primecell".into()];
    d.regions.push(RegionDesc {
        index: 0,
        offset: 0x1000,
        size: 0x1000,
        flags: REGION_READ | REGION_WRITE,
        location: Location::None,
        dt: Some(DtLocation::new("/pl031@9010000", DT_PROP_REG, 0)),
        label: None,
        sparse: None,
        dma_address: None,
        access_widths: None,
    });
    d.interrupts.push(InterruptDesc {
        index: 0,
        count: 1,
        kind: IRQ_KIND_WIRED,
        flags: IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
        control_offset: 0x2000,
        dt: Some(DtLocation::new("/pl031@9010000", DT_PROP_INTERRUPTS, 0)),
        label: None,
    });
    d
}
