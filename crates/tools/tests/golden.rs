//! Golden vectors: the bytes every example builds to, and their readable dumps, are committed
//! under `tests/golden/`. A change to the writer, the layout or the views shows up here.
//! Regenerate deliberately with `DEVFD_BLESS=1 cargo test -p devfd-tools --test golden`.

use std::path::{Path, PathBuf};

use devfd_format::model::DeviceDesc;
use devfd_format::wire::*;
use devfd_format::write::Writer;
use devfd_format::{Bus, PciId, parse};
use devfd_tools::{describe, inspect};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check(name: &str, bytes: &[u8]) {
    let dir = root().join("tests/golden");
    let d = parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dump = format!(
        "{}\n{}\nflat table\n{}",
        inspect::render_text(name, &d),
        inspect::render_hex(&d),
        inspect::render_flat(&d)
    );
    let json = serde_json::to_string_pretty(&inspect::render_json(&d)).unwrap() + "\n";
    let files = [
        (format!("{name}.bin"), bytes.to_vec()),
        (format!("{name}.txt"), dump.into_bytes()),
        (format!("{name}.json"), json.into_bytes()),
    ];
    for (file, content) in files {
        let path = dir.join(&file);
        if std::env::var_os("DEVFD_BLESS").is_some() {
            std::fs::write(&path, &content).unwrap();
            continue;
        }
        let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            golden == content,
            "{file} differs from its golden copy; rerun with DEVFD_BLESS=1 if intended"
        );
    }
    // The golden bytes parse back to the same model.
    let again = DeviceDesc::from_description(&d).build().unwrap();
    assert_eq!(again, bytes, "{name}: not canonical");
}

fn example(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(root().join(format!("examples/{name}.toml"))).unwrap();
    describe::describe(&text).unwrap().build().unwrap()
}

#[test]
fn edu_example() {
    check("edu", &example("edu"));
}

#[test]
fn pl031_example() {
    check("pl031", &example("pl031"));
}

#[test]
fn pl031_access_example() {
    let bytes = example("pl031-access");
    let d = parse(&bytes).unwrap();
    assert_eq!(d.version(), (1, 1), "ACCESS is a 1.1 feature");
    check("pl031-access", &bytes);
}

#[test]
fn pl031_dt_example() {
    // What devfd builds from QEMU aarch64 virt's /pl031@9010000 (crates/dtb tests compare).
    let bytes = example("pl031-dt");
    let d = parse(&bytes).unwrap();
    assert_eq!(
        d.version(),
        (1, 2),
        "DT_ADDRESS and DT_INTERRUPT are 1.2 features"
    );
    let r = d.region(0).unwrap();
    assert_eq!(r.dt_address(), Some(0x901_0000));
    let x = d.interrupt(0).unwrap().dt_interrupt().unwrap();
    assert_eq!(x.controller, "/intc@8000000");
    assert_eq!(x.cells.collect::<Vec<_>>(), [0, 2, 4]);
    check("pl031-dt", &bytes);
}

#[test]
fn examples_without_access_are_version_1_0() {
    for name in ["edu", "pl031", "nvme-like"] {
        assert_eq!(parse(&example(name)).unwrap().version(), (1, 0), "{name}");
    }
}

#[test]
fn edu_dma_example() {
    check("edu-dma", &example("edu-dma"));
}

#[test]
fn nvme_like_example() {
    check("nvme-like", &example("nvme-like"));
}

#[test]
fn every_record_type_has_a_golden_vector() {
    let mut seen = std::collections::BTreeSet::new();
    for name in [
        "edu",
        "pl031",
        "nvme-like",
        "pl031-access",
        "pl031-dt",
        "edu-dma",
    ] {
        let bytes = std::fs::read(root().join(format!("tests/golden/{name}.bin"))).unwrap();
        let d = parse(&bytes).unwrap();
        for r in d.records() {
            seen.insert(r.type_code());
            let body = match r.type_code() {
                REC_DEVICE => DEVICE_BODY_LEN,
                REC_REGION => REGION_BODY_LEN,
                REC_INTERRUPT => INTERRUPT_BODY_LEN,
                _ => continue,
            };
            seen.extend(r.sub_records(body).map(|s| s.type_code()));
        }
    }
    let all = [
        REC_DEVICE,
        REC_REGION,
        REC_INTERRUPT,
        REC_END,
        REC_PCI_ID,
        REC_DT_COMPATIBLE,
        REC_PCI_BAR,
        REC_PCI_CONFIG,
        REC_PCI_ROM,
        REC_DT_PATH,
        REC_DT_INDEX,
        REC_SPARSE_MMAP,
        REC_LABEL,
        REC_ACCESS,
        REC_DT_ADDRESS,
        REC_DT_INTERRUPT,
        REC_DMA_WINDOW,
        REC_RESET,
    ];
    for t in all {
        assert!(
            seen.contains(&t),
            "no golden vector holds record type {t:#x}"
        );
    }
}

#[test]
fn minimal_and_unknown_records() {
    // The smallest valid PCI description, and one with skippable unknown records.
    let id = PciId {
        vendor: 0x1af4,
        device: 0x1041,
        ..PciId::default()
    };
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.pci_id(&id).unwrap();
    w.end(dev).unwrap();
    check("minimal-pci", &w.finish().unwrap());

    let mut w = Writer::new(Bus::Pci, 1 << 16).unwrap();
    let dev = w.begin_device().unwrap();
    w.pci_id(&id).unwrap();
    w.record(0x0777, 0, b"future device info").unwrap();
    w.end(dev).unwrap();
    w.record(0x0042, 1 << 17, &[0xab; 8]).unwrap();
    let r = w
        .begin_region(0, 0x1000, 0x1000, REGION_READ | 1 << 16)
        .unwrap();
    w.record(0x0199, 0, &[1, 2, 3]).unwrap();
    w.pci_bar(1, BAR_MEM64).unwrap();
    w.end(r).unwrap();
    let bytes = w.finish().unwrap();
    let d = parse(&bytes).unwrap();
    assert_eq!(d.pci_bar(1).unwrap().offset, 0x1000);
    let dump = inspect::render_text("unknown-records", &d);
    assert!(dump.contains("UNKNOWN"), "{dump}");
    // Unknown records are not part of the model, so compare only the dump, not canonical bytes.
    let dir = root().join("tests/golden");
    if std::env::var_os("DEVFD_BLESS").is_some() {
        std::fs::write(dir.join("unknown-records.bin"), &bytes).unwrap();
        std::fs::write(dir.join("unknown-records.txt"), inspect::render_hex(&d)).unwrap();
    }
    assert_eq!(
        std::fs::read(dir.join("unknown-records.bin")).unwrap(),
        bytes
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("unknown-records.txt")).unwrap(),
        inspect::render_hex(&d)
    );
}
