mod common;

use devfd_format::model::DeviceDesc;
use devfd_format::wire::*;
use devfd_format::{Bus, Location, parse};

#[test]
fn edu_round_trips_and_looks_up() {
    let model = common::edu();
    let bytes = model.build().expect("edu builds");
    let d = parse(&bytes).expect("edu parses");
    assert_eq!(DeviceDesc::from_description(&d), model);
    assert_eq!(d.bus(), Bus::Pci);
    assert_eq!(d.version(), (1, 0));
    assert_eq!(d.len(), bytes.len());
    assert_eq!(
        d.pci_id().map(|p| (p.vendor, p.device)),
        Some((0x1234, 0x11e8))
    );
    let bar0 = d.pci_bar(0).expect("bar0");
    assert_eq!((bar0.index, bar0.offset, bar0.size), (0, 0x1000, 0x10_0000));
    assert_eq!(bar0.label(), Some("bar0"));
    assert_eq!(d.pci_config().map(|r| r.index), Some(7));
    assert!(d.pci_rom().is_none());
    assert!(d.region(1).is_none());
    assert_eq!(d.region(7).map(|r| r.location()), Some(Location::PciConfig));
    let msi = d.interrupt(1).expect("msi");
    assert_eq!(msi.kind, IRQ_KIND_MSI);
    assert_eq!(msi.vector_control_offset(0), Some(0x10_2010));
    assert_eq!(msi.vector_control_offset(1), None);
    let flat: Vec<_> = d.flat().collect();
    assert_eq!(flat.len(), d.flat_len());
    assert_eq!(flat[0].location, FLAT_LOC_PCI_BAR);
    assert_eq!(flat[2].kind, FLAT_INTERRUPT);
    // The label offset points at a NUL-terminated string inside the description.
    let at = flat[0].label_offset as usize;
    assert_eq!(&bytes[at..at + 5], b"bar0\0");
}

#[test]
fn pl031_dt_lookups() {
    let model = common::pl031();
    let bytes = model.build().expect("builds");
    let d = parse(&bytes).expect("parses");
    assert_eq!(
        d.device().compatible().collect::<Vec<_>>(),
        ["arm,pl031", "arm,primecell"]
    );
    let r = d.dt_region("/pl031@9010000", 0).expect("reg 0");
    assert_eq!(r.offset, 0x1000);
    assert!(d.dt_region("/pl031@9010000", 1).is_none());
    assert!(d.dt_interrupt("/pl031@9010000", 0).is_some());
    let flat: Vec<_> = d.flat().collect();
    assert_eq!(flat[0].location, FLAT_LOC_DT);
    let at = flat[0].dt_path_offset as usize;
    assert_eq!(&bytes[at..at + 15], b"/pl031@9010000\0");
    assert_eq!(DeviceDesc::from_description(&d), model);
}

#[test]
fn prologue_gives_desc_len() {
    let bytes = common::edu().build().expect("builds");
    let len = devfd_format::desc_len_from_prologue(&bytes[..PROLOGUE_LEN]).expect("prologue");
    assert_eq!(len, bytes.len());
}
