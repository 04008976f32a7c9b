//! Parse+validate throughput against memcpy of the same bytes in the same run, and lookup
//! latency. `scripts/bench-report` turns criterion's estimates into the BENCHMARKS.md table.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use devfd_format::model::{DeviceDesc, DtLocation, InterruptDesc, RegionDesc};
use devfd_format::wire::*;
use devfd_format::{Bus, Location, PciId, parse};

/// edu: the typical small PCI device (2 regions, 2 interrupts).
fn edu() -> Vec<u8> {
    let mut d = DeviceDesc::new(Bus::Pci);
    d.pci_id = Some(PciId {
        vendor: 0x1234,
        device: 0x11e8,
        class: 0xff00,
        ..PciId::default()
    });
    d.label = Some("edu".into());
    let rw = REGION_READ | REGION_WRITE;
    d.regions.push(RegionDesc {
        index: 0,
        offset: 0x1000,
        size: 0x10_0000,
        flags: rw,
        location: Location::PciBar { bar: 0, flags: 0 },
        dt: None,
        label: Some("bar0".into()),
        sparse: None,
    });
    d.regions.push(RegionDesc {
        index: 7,
        offset: 0x10_1000,
        size: 256,
        flags: rw,
        location: Location::PciConfig,
        dt: None,
        label: None,
        sparse: None,
    });
    for (i, kind) in [IRQ_KIND_INTX, IRQ_KIND_MSI].into_iter().enumerate() {
        d.interrupts.push(InterruptDesc {
            index: i as u32,
            count: 1,
            kind,
            flags: IRQ_MASKABLE,
            control_offset: 0x10_2000 + 16 * i as u64,
            dt: None,
            label: None,
        });
    }
    d.build().unwrap()
}

/// A large platform device: 64 regions and 64 interrupts, each with DT path and index.
fn soc() -> Vec<u8> {
    let mut d = DeviceDesc::new(Bus::Platform);
    d.compatible = vec!["vendor,soc-block".into()];
    for i in 0..64u32 {
        d.regions.push(RegionDesc {
            index: i,
            offset: 0x10_0000 + u64::from(i) * 0x1000,
            size: 0x1000,
            flags: REGION_READ | REGION_WRITE | REGION_MMAP,
            location: Location::None,
            dt: Some(DtLocation {
                path: format!("/soc/block@{i:x}"),
                property: DT_PROP_REG,
                index: 0,
            }),
            label: None,
            sparse: None,
        });
        d.interrupts.push(InterruptDesc {
            index: i,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_LEVEL,
            control_offset: 0x20_0000 + u64::from(i) * 16,
            dt: Some(DtLocation {
                path: format!("/soc/block@{i:x}"),
                property: DT_PROP_INTERRUPTS,
                index: 0,
            }),
            label: None,
        });
    }
    d.build().unwrap()
}

fn throughput(c: &mut Criterion) {
    for (name, bytes) in [("edu", edu()), ("soc64", soc())] {
        let mut group = c.benchmark_group(format!("throughput/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut dst = vec![0u8; bytes.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&bytes));
                black_box(&dst);
            })
        });
        group.bench_function("parse", |b| {
            b.iter(|| parse(black_box(&bytes)).map(|d| d.len()))
        });
        group.finish();
    }
}

fn lookups(c: &mut Criterion) {
    let bytes = edu();
    let d = parse(&bytes).unwrap();
    let mut group = c.benchmark_group("lookup/edu");
    group.bench_function("region(7)", |b| {
        b.iter(|| black_box(&d).region(black_box(7)).map(|r| r.offset))
    });
    group.bench_function("pci_bar(0)", |b| {
        b.iter(|| black_box(&d).pci_bar(black_box(0)).map(|r| r.offset))
    });
    group.bench_function("pci_config", |b| {
        b.iter(|| black_box(&d).pci_config().map(|r| r.offset))
    });
    group.bench_function("interrupt(1)", |b| {
        b.iter(|| {
            black_box(&d)
                .interrupt(black_box(1))
                .map(|i| i.control_offset)
        })
    });
    group.finish();
    let bytes = soc();
    let d = parse(&bytes).unwrap();
    let mut group = c.benchmark_group("lookup/soc64");
    group.bench_function("region(63)", |b| {
        b.iter(|| black_box(&d).region(black_box(63)).map(|r| r.offset))
    });
    group.bench_function("dt_region(last)", |b| {
        b.iter(|| {
            black_box(&d)
                .dt_region(black_box("/soc/block@3f"), 0)
                .map(|r| r.offset)
        })
    });
    group.finish();
}

criterion_group!(benches, throughput, lookups);
criterion_main!(benches);
