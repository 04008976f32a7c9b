//! Property tests: `parse(build(x)) == x` for generated valid descriptions, and parse never
//! panics on arbitrary or mutated bytes.

use devfd_format::model::{DeviceDesc, DtInterruptDesc, DtLocation, InterruptDesc, RegionDesc};
use devfd_format::wire::*;
use devfd_format::{AccessWidths, Bus, Location, PciId, parse};
use proptest::prelude::*;

fn label() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-zA-Z0-9 _\u{e9}\u{3bb}-]{1,24}")
}

fn dt(property: u32) -> impl Strategy<Value = Option<DtLocation>> {
    // Version 1.2 details: a region's translated address, an interrupt's controller + cells.
    let address = proptest::option::of(0u64..1 << 62);
    let interrupt = proptest::option::of((
        "(/[a-z0-9@,._-]{1,12}){1,3}",
        proptest::collection::vec(any::<u32>(), 0..=16),
    ));
    proptest::option::of(
        ("(/[a-z0-9@,._-]{1,12}){1,3}", 0u32..8, address, interrupt).prop_map(
            move |(path, index, address, interrupt)| {
                let mut dt = DtLocation::new(path, property, index);
                if property == DT_PROP_INTERRUPTS {
                    dt.interrupt =
                        interrupt.map(|(controller, cells)| DtInterruptDesc { controller, cells });
                } else {
                    dt.address = address;
                }
                dt
            },
        ),
    )
}

#[derive(Debug, Clone)]
struct RegionSeed {
    size_pages: u64,
    gap_pages: u64,
    small: Option<u64>,
    flags: u32,
    location: u8,
    bar_flags: u32,
    dt: Option<DtLocation>,
    label: Option<String>,
    sparse: bool,
    /// ACCESS mask of a register-like region; 0: no ACCESS sub-record.
    widths: u32,
}

fn region_seed() -> impl Strategy<Value = RegionSeed> {
    (
        1u64..64,
        0u64..4,
        proptest::option::of(1u64..4096),
        0u32..8,
        0u8..4,
        prop_oneof![
            Just(0),
            Just(BAR_MEM64),
            Just(BAR_MEM64 | BAR_PREFETCH),
            Just(BAR_IO)
        ],
        dt(DT_PROP_REG),
        label(),
        any::<bool>(),
        0u32..16,
    )
        .prop_map(
            |(
                size_pages,
                gap_pages,
                small,
                flags,
                location,
                bar_flags,
                dt,
                label,
                sparse,
                widths,
            )| {
                RegionSeed {
                    size_pages,
                    gap_pages,
                    small,
                    flags,
                    location,
                    bar_flags,
                    dt,
                    label,
                    sparse,
                    widths,
                }
            },
        )
}

/// (vectors, kind, flags, DT origin, label) of a generated interrupt.
type IrqSeed = (u32, u32, u32, Option<DtLocation>, Option<String>);

fn irq_seed() -> impl Strategy<Value = IrqSeed> {
    (1u32..64, 1u32..7, 0u32..8, dt(DT_PROP_INTERRUPTS), label())
}

/// Lays seeds out in a valid description: offsets ascend from 1 MiB, BARs are unique.
fn assemble(
    bus: Bus,
    pci: PciId,
    compatible: Vec<String>,
    dev_label: Option<String>,
    regions: Vec<RegionSeed>,
    irqs: Vec<IrqSeed>,
) -> DeviceDesc {
    let mut d = DeviceDesc::new(bus);
    match bus {
        Bus::Pci => d.pci_id = Some(pci),
        _ => d.compatible = compatible,
    }
    d.label = dev_label;
    let mut next = 0x10_0000u64;
    let mut next_bar = 0u8;
    let (mut config, mut rom) = (false, false);
    for (index, s) in regions.into_iter().enumerate() {
        let mmap = s.flags & REGION_MMAP != 0;
        let size = match s.small {
            Some(n) if !mmap => n,
            _ => s.size_pages * PAGE_SIZE,
        };
        let offset = next + s.gap_pages * PAGE_SIZE;
        let mut location = Location::None;
        if bus == Bus::Pci {
            location = match s.location {
                1 if next_bar < 6 => {
                    // A 64-bit BAR takes two slots; BAR 5 has no upper half.
                    let mut flags = s.bar_flags;
                    if next_bar == 5 {
                        flags &= !BAR_MEM64;
                    }
                    let bar = next_bar;
                    next_bar += if flags & BAR_MEM64 != 0 { 2 } else { 1 };
                    Location::PciBar { bar, flags }
                }
                2 if !config && !mmap => {
                    config = true;
                    Location::PciConfig
                }
                3 if !rom => {
                    rom = true;
                    Location::PciRom
                }
                _ => Location::None,
            };
        }
        let size = if location == Location::PciConfig {
            4096
        } else {
            size
        };
        let sparse = (mmap && s.sparse).then(|| vec![(0, PAGE_SIZE.min(size))]);
        d.regions.push(RegionDesc {
            index: index as u32 * 3,
            offset,
            size,
            flags: s.flags,
            location,
            dt: s.dt,
            label: s.label,
            sparse,
            // Some mmap regions are DMA windows (1.2), at a bus address derived from the
            // generated widths so that it varies with the case.
            dma_address: (mmap && s.widths & 1 != 0).then_some(u64::from(s.widths) << 20),
            access_widths: AccessWidths::new(s.widths).filter(|_| !mmap),
        });
        next = offset + size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    }
    for (index, (count, kind, flags, dt, label)) in irqs.into_iter().enumerate() {
        let kind = if bus != Bus::Pci && kind <= IRQ_KIND_MSIX {
            IRQ_KIND_WIRED
        } else {
            kind
        };
        let mut flags = flags;
        if flags & IRQ_AUTOMASKED != 0 {
            flags |= IRQ_MASKABLE;
        }
        if matches!(kind, IRQ_KIND_MSI | IRQ_KIND_MSIX) {
            flags &= !IRQ_LEVEL;
        }
        let count = match kind {
            IRQ_KIND_INTX => 1,
            IRQ_KIND_MSI => count.min(32),
            _ => count,
        };
        d.interrupts.push(InterruptDesc {
            index: index as u32,
            count,
            kind,
            flags,
            control_offset: next,
            dt,
            label,
        });
        next += u64::from(count) * IRQ_CONTROL_STRIDE;
    }
    d
}

fn device() -> impl Strategy<Value = DeviceDesc> {
    (
        prop_oneof![Just(Bus::Pci), Just(Bus::Platform)],
        any::<(u16, u16, u16, u16, u8)>(),
        0u32..0x100_0000,
        proptest::collection::vec("[a-z0-9]{1,8},[a-z0-9-]{1,12}", 1..4),
        label(),
        proptest::collection::vec(region_seed(), 0..10),
        proptest::collection::vec(irq_seed(), 0..5),
    )
        .prop_map(
            |(bus, (v, dv, sv, sd, rev), class, compatible, l, regions, irqs)| {
                let pci = PciId {
                    vendor: v,
                    device: dv,
                    subsystem_vendor: sv,
                    subsystem_device: sd,
                    class,
                    revision: rev,
                };
                assemble(bus, pci, compatible, l, regions, irqs)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn build_then_parse_gives_back_the_model(model in device()) {
        let bytes = model.build().expect("generated descriptions are valid");
        let d = parse(&bytes).expect("built descriptions parse");
        prop_assert_eq!(&DeviceDesc::from_description(&d), &model);
        // And the bytes are canonical: building the parsed model gives the same bytes.
        prop_assert_eq!(DeviceDesc::from_description(&d).build().unwrap(), bytes.clone());
        // Every region and interrupt is found by its lookups.
        for r in &model.regions {
            prop_assert_eq!(d.region(r.index).map(|v| (v.offset, v.size)), Some((r.offset, r.size)));
            if let Location::PciBar { bar, .. } = r.location {
                prop_assert_eq!(d.pci_bar(bar).map(|v| v.index), Some(r.index));
            }
            if let Some(dt) = &r.dt {
                prop_assert!(d.dt_region(&dt.path, dt.index).is_some());
            }
        }
        for i in &model.interrupts {
            prop_assert_eq!(d.interrupt(i.index).map(|v| v.count), Some(i.count));
        }
        prop_assert_eq!(d.flat().count(), model.regions.len() + model.interrupts.len());
        // The lowest version whose features are used: 1.2 for DT_ADDRESS, DT_INTERRUPT or
        // DMA_WINDOW,
        // else 1.1 for ACCESS, else 1.0.
        let uses_access = model.regions.iter().any(|r| r.access_widths.is_some());
        let uses_dt_detail = model.regions.iter().any(|r| r.dt.as_ref().is_some_and(|d| d.address.is_some()))
            || model.interrupts.iter().any(|i| i.dt.as_ref().is_some_and(|d| d.interrupt.is_some()));
        let uses_dma = model.regions.iter().any(|r| r.dma_address.is_some());
        for r in &model.regions {
            prop_assert_eq!(d.region(r.index).and_then(|v| v.dma_address()), r.dma_address);
        }
        let minor = if uses_dt_detail || uses_dma { 2 } else { u16::from(uses_access) };
        prop_assert_eq!(d.version(), (1, minor));
        for (r, e) in model.regions.iter().zip(d.flat()) {
            let expected = match (r.flags & REGION_MMAP != 0, r.access_widths) {
                (true, _) => 0,
                (false, Some(w)) => u32::from(w.bits()),
                (false, None) => WIDTHS_ALL,
            };
            prop_assert_eq!(e.access_widths, expected);
        }
        prop_assert_eq!(devfd_format::desc_len_from_prologue(&bytes[..PROLOGUE_LEN]).unwrap(), bytes.len());
    }

    #[test]
    fn mutated_descriptions_never_panic(model in device(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = model.build().unwrap();
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if let Ok(d) = parse(&bytes) {
            // Whatever still parses must survive parse -> model -> build -> parse.
            let again = DeviceDesc::from_description(&d);
            let rebuilt = again.build().expect("a parsed description rebuilds");
            prop_assert_eq!(DeviceDesc::from_description(&parse(&rebuilt).unwrap()), again);
        }
        devfd_format::lint(&bytes, &mut |_| {});
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
        devfd_format::lint(&bytes, &mut |_| {});
    }
}

/// Inputs the fuzzers once broke: each must still parse or fail cleanly, and round-trip if
/// accepted.
#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(d) = parse(&bytes) {
            let model = DeviceDesc::from_description(&d);
            let rebuilt = model.build().expect("accepted descriptions rebuild");
            assert_eq!(
                DeviceDesc::from_description(&parse(&rebuilt).unwrap()),
                model
            );
        }
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn lay_out_places_regions_then_windows_after_the_description() {
    let mut d = DeviceDesc::new(Bus::Platform);
    d.compatible = vec!["vendor,dev".into()];
    for (index, size) in [(0u32, 0x10u64), (3, 0x2001), (1, 0x1000)] {
        d.regions.push(RegionDesc {
            index,
            offset: 0,
            size,
            flags: REGION_READ | REGION_WRITE,
            location: Location::None,
            dt: None,
            label: None,
            sparse: None,
            access_widths: None,
            dma_address: None,
        });
    }
    for index in 0..2 {
        d.interrupts.push(InterruptDesc {
            index,
            count: 2,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_MASKABLE,
            control_offset: 0,
            dt: None,
            label: None,
        });
    }
    d.lay_out().unwrap();
    let offsets: Vec<u64> = d.regions.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0x1000, 0x2000, 0x5000]);
    let windows: Vec<u64> = d.interrupts.iter().map(|i| i.control_offset).collect();
    assert_eq!(windows, [0x6000, 0x6020]);
    let bytes = d.build().unwrap();
    assert!(bytes.len() < 0x1000);
    // A description longer than a page pushes everything to the next page boundary.
    d.label = Some("x".repeat(4000));
    d.lay_out().unwrap();
    assert_eq!(d.regions[0].offset, 0x2000);
    d.build().unwrap();
    // write() is build() without the validation.
    assert_eq!(d.write().unwrap(), d.build().unwrap());
}
