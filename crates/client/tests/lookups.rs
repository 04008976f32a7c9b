//! Typed lookups and name resolution on the golden descriptions.

mod common;

use devfd_client::{ClientError, DeviceFile, DtIndex, RegionInfo};
use devfd_format::model::{DeviceDesc, DtLocation};
use devfd_format::wire::*;
use devfd_format::{Bus, Location};

fn open(name: &str) -> DeviceFile {
    DeviceFile::open(common::golden(name)).unwrap()
}

fn resolve(dev: &DeviceFile, name: &str) -> Option<u32> {
    match dev.resolve_region(name) {
        Ok(r) => Some(r.index),
        Err(ClientError::UnknownName {
            what: "region",
            name: n,
        }) => {
            assert_eq!(n, name);
            None
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn edu_lookups() {
    let dev = open("edu.bin");
    let bar0 = RegionInfo {
        index: 0,
        offset: 0x1000,
        size: 0x10_0000,
        flags: REGION_READ | REGION_WRITE,
        location: Location::PciBar { bar: 0, flags: 0 },
        dt: None,
        sparse_areas: 0,
        access_widths: dev.region(0).unwrap().access_widths,
        dma_address: None,
    };
    assert_eq!(dev.region(0), Some(bar0));
    assert_eq!(dev.pci_bar(0), Some(bar0));
    assert!(bar0.readable() && bar0.writable() && !bar0.mmappable());
    assert_eq!(bar0.end(), 0x10_1000);
    for bar in 1..=6 {
        assert_eq!(dev.pci_bar(bar), None);
    }
    let config = dev.pci_config().unwrap();
    assert_eq!(
        (config.index, config.offset, config.size),
        (7, 0x10_1000, 0x100)
    );
    assert_eq!(dev.region(7), Some(config));
    assert_eq!(dev.pci_rom(), None);
    assert_eq!(dev.region(1), None);
    assert_eq!(
        dev.regions().iter().map(|r| r.index).collect::<Vec<_>>(),
        [0, 7]
    );
    assert_eq!(dev.region_label(0), Some("regs"));
    assert_eq!(dev.region_label(7), None);
    assert_eq!(dev.region_dt_path(0), None);

    let intx = dev.interrupt(0).unwrap();
    assert_eq!(
        (intx.count, intx.kind, intx.control_offset),
        (1, IRQ_KIND_INTX, 0x10_2000)
    );
    assert!(intx.level() && intx.maskable() && intx.automasked());
    assert_eq!(intx.kind_name(), "intx");
    assert_eq!(intx.vector_offset(0), Some(0x10_2000));
    assert_eq!(intx.vector_offset(1), None);
    let msi = dev.interrupt(1).unwrap();
    assert_eq!((msi.kind, msi.flags), (IRQ_KIND_MSI, IRQ_MASKABLE));
    assert!(!msi.level() && !msi.automasked());
    assert_eq!(dev.interrupt(2), None);
    assert_eq!(dev.interrupt_label(1), Some("msi"));
    assert_eq!(dev.interrupts().len(), 2);
    assert_eq!(dev.description().pci_id().unwrap().device, 0x11e8);
}

#[test]
fn edu_names() {
    let dev = open("edu.bin");
    assert_eq!(resolve(&dev, "0"), Some(0));
    assert_eq!(resolve(&dev, "7"), Some(7));
    assert_eq!(resolve(&dev, "bar0"), Some(0));
    assert_eq!(resolve(&dev, "config"), Some(7));
    assert_eq!(resolve(&dev, "regs"), Some(0));
    for missing in [
        "1", "bar1", "bar6", "rom", "dt:0", "", "+0", "0x0", "BAR0", "intx",
    ] {
        assert_eq!(resolve(&dev, missing), None, "{missing:?}");
    }
    let err = dev.resolve_region("bar9").unwrap_err();
    assert_eq!(err.to_string(), "no region named \"bar9\"");

    assert_eq!(dev.resolve_interrupt("0").unwrap().index, 0);
    assert_eq!(dev.resolve_interrupt("intx").unwrap().index, 0);
    assert_eq!(dev.resolve_interrupt("msi").unwrap().index, 1);
    assert!(matches!(
        dev.resolve_interrupt("msix"),
        Err(ClientError::UnknownName {
            what: "interrupt",
            ..
        })
    ));
}

#[test]
fn nvme_like_lookups() {
    let dev = open("nvme-like.bin");
    let bar0 = dev.pci_bar(0).unwrap();
    assert_eq!(bar0.index, 0);
    assert_eq!(
        bar0.location,
        Location::PciBar {
            bar: 0,
            flags: BAR_MEM64 | BAR_PREFETCH
        }
    );
    assert!(bar0.mmappable());
    assert_eq!(bar0.sparse_areas, 2);
    // The upper half of the 64-bit BAR 0 is not a region of its own.
    assert_eq!(dev.pci_bar(1), None);
    let bar4 = dev.pci_bar(4).unwrap();
    assert_eq!((bar4.index, bar4.offset, bar4.size), (4, 0x11000, 32));
    assert_eq!(
        bar4.location,
        Location::PciBar {
            bar: 4,
            flags: BAR_IO
        }
    );
    let rom = dev.pci_rom().unwrap();
    assert_eq!((rom.index, rom.flags), (6, REGION_READ));
    assert!(!rom.writable());
    assert_eq!(dev.pci_config().unwrap().index, 7);
    assert_eq!(dev.mmap_areas(0).unwrap(), [(0, 0x1000), (0x2000, 0xe000)]);
    assert!(matches!(
        dev.mmap_areas(4),
        Err(ClientError::NotMappable(4))
    ));

    for (name, index) in [
        ("0", 0),
        ("4", 4),
        ("6", 6),
        ("7", 7),
        ("bar0", 0),
        ("bar4", 4),
        ("rom", 6),
        ("config", 7),
    ] {
        assert_eq!(resolve(&dev, name), Some(index), "{name}");
    }
    for missing in ["1", "bar1", "bar2", "bar5", "dt:0"] {
        assert_eq!(resolve(&dev, missing), None, "{missing:?}");
    }

    let msix = dev.resolve_interrupt("msix").unwrap();
    assert_eq!(
        (msix.index, msix.count, msix.control_offset),
        (0, 65, 0x53000)
    );
    assert_eq!(msix.vector_offset(64), Some(0x53000 + 64 * 16));
    assert_eq!(msix.vector_offset(65), None);
    assert_eq!(dev.resolve_interrupt("error").unwrap().index, 1);
    assert_eq!(dev.resolve_interrupt("1").unwrap().kind, IRQ_KIND_ERROR);
}

#[test]
fn pl031_lookups() {
    let dev = open("pl031.bin");
    let r = dev.dt_region("/pl031@9010000", 0).unwrap();
    assert_eq!((r.index, r.offset, r.size), (0, 0x1000, 0x1000));
    assert_eq!(
        r.dt,
        Some(DtIndex {
            property: DT_PROP_REG,
            index: 0
        })
    );
    assert_eq!(r.location, Location::None);
    assert_eq!(dev.dt_region("/pl031@9010000", 1), None);
    assert_eq!(dev.dt_region("/other", 0), None);
    assert_eq!(dev.region_dt_path(0), Some("/pl031@9010000"));
    assert_eq!(dev.pci_bar(0), None);
    assert_eq!(dev.pci_config(), None);

    for (name, index) in [("0", Some(0)), ("dt:0", Some(0)), ("registers", Some(0))] {
        assert_eq!(resolve(&dev, name), index, "{name}");
    }
    for missing in ["dt:1", "bar0", "config", "rom", "dt:", "dt:x", "alarm"] {
        assert_eq!(resolve(&dev, missing), None, "{missing:?}");
    }

    let irq = dev.dt_interrupt("/pl031@9010000", 0).unwrap();
    assert_eq!(
        (irq.index, irq.kind, irq.control_offset),
        (0, IRQ_KIND_WIRED, 0x2000)
    );
    assert_eq!(
        irq.dt,
        Some(DtIndex {
            property: DT_PROP_INTERRUPTS,
            index: 0
        })
    );
    assert_eq!(dev.interrupt_dt_path(0), Some("/pl031@9010000"));
    for name in ["0", "dt:0", "wired", "alarm"] {
        assert_eq!(dev.resolve_interrupt(name).unwrap().index, 0, "{name}");
    }
    assert!(dev.resolve_interrupt("dt:1").is_err());
}

#[test]
fn dt_names_count_dt_regions_in_file_order() {
    let mut d = DeviceDesc::new(Bus::Platform);
    d.compatible = vec!["vendor,thing".into()];
    let dt = |path: &str, index| DtLocation::new(path, DT_PROP_REG, index);
    let mut a = common::region(5, 0x1000, 0x100, REGION_READ);
    a.label = Some("3".into()); // a label that looks like an index: the index wins
    let mut b = common::region(2, 0x2000, 0x100, REGION_READ);
    b.dt = Some(dt("/soc/b", 1));
    b.label = Some("bar0".into()); // no PCI BAR on this bus: the label is used
    let mut c = common::region(9, 0x3000, 0x100, REGION_READ);
    c.dt = Some(dt("/soc/a", 0));
    c.label = Some("config".into());
    let mut e = common::region(3, 0x4000, 0x100, REGION_READ);
    e.label = Some("dup".into());
    let mut f = common::region(4, 0x5000, 0x100, REGION_READ);
    f.label = Some("dup".into());
    d.regions = vec![a, b, c, e, f];
    let bytes = d.build().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = common::write_padded(dir.path(), "plat", &bytes, 0);
    let dev = DeviceFile::open(path).unwrap();
    assert_eq!(resolve(&dev, "dt:0"), Some(2));
    assert_eq!(resolve(&dev, "dt:1"), Some(9));
    assert_eq!(resolve(&dev, "dt:2"), None);
    assert_eq!(resolve(&dev, "3"), Some(3));
    assert_eq!(resolve(&dev, "bar0"), Some(2));
    assert_eq!(resolve(&dev, "config"), Some(9));
    assert_eq!(resolve(&dev, "dup"), Some(3));
    assert_eq!(dev.dt_region("/soc/a", 0).unwrap().index, 9);
    assert_eq!(dev.dt_region("/soc/b", 1).unwrap().index, 2);
    assert_eq!(dev.dt_region("/soc/b", 0), None);
}
