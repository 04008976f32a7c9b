//! Parse+validate throughput (criterion) and lookup latency. The comparison with libfdt in
//! the same pinned run, which BENCHMARKS.md reports, is the `parse_vs_libfdt` bench
//! (`scripts/bench-report`).

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use devfd_format::parse;

fn throughput(c: &mut Criterion) {
    for input in [
        common::edu(),
        common::pl031(),
        common::soc(64),
        common::soc(256),
    ] {
        let bytes = input.bytes;
        let mut group = c.benchmark_group(format!("throughput/{}", input.name));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("parse", |b| {
            b.iter(|| parse(black_box(&bytes)).map(|d| d.len()))
        });
        group.finish();
    }
}

fn lookups(c: &mut Criterion) {
    let bytes = common::edu().bytes;
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
    let bytes = common::soc(64).bytes;
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
