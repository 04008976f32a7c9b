//! The descriptions the parse benchmarks measure, shared by `parse` and `parse_vs_libfdt`.
//!
//! `edu` and `pl031` are the exact bytes `devfd serve` serves (each device's
//! `description()` in devfd-emu); `soc(n)` is a large platform device built here.

#![allow(dead_code)] // each bench uses a subset

use devfd_format::model::{DeviceDesc, DtLocation, InterruptDesc, RegionDesc};
use devfd_format::wire::*;
use devfd_format::{Bus, Location, parse};

/// A description under test and what it holds (counted from the bytes, not stated by hand).
pub struct Input {
    /// Short name for the tables.
    pub name: String,
    /// The description: exactly `desc_len` bytes.
    pub bytes: Vec<u8>,
}

/// Record counts of a valid description.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// Top-level records (DEVICE … END).
    pub records: usize,
    /// Sub-records inside them (PCI_ID, DT_PATH, LABEL, …).
    pub sub_records: usize,
    /// REGION records.
    pub regions: usize,
    /// INTERRUPT records.
    pub interrupts: usize,
}

impl Input {
    /// Counts the records of the (valid) description.
    pub fn counts(&self) -> Counts {
        let d = parse(&self.bytes).expect("benchmark input is valid");
        let device_subs = d
            .device()
            .record()
            .map_or(0, |r| r.sub_records(DEVICE_BODY_LEN).count());
        let region_subs: usize = d.regions().map(|r| r.sub_records().count()).sum();
        let irq_subs: usize = d.interrupts().map(|i| i.sub_records().count()).sum();
        Counts {
            records: d.records().count(),
            sub_records: device_subs + region_subs + irq_subs,
            regions: d.regions().count(),
            interrupts: d.interrupts().count(),
        }
    }
}

fn served(kind: &str) -> Input {
    let dev = devfd_emu::from_spec_str(kind).expect("demo device");
    Input {
        name: kind.to_string(),
        bytes: dev.description().to_vec(),
    }
}

/// The edu description exactly as the server serves it (devfd-emu's `Edu`).
pub fn edu() -> Input {
    served("edu")
}

/// The PL031 RTC description exactly as the server serves it (devfd-emu's `Pl031`).
pub fn pl031() -> Input {
    served("pl031")
}

/// A large platform device: `n` regions and `n` interrupts, each with a DT path and index.
pub fn soc(n: u32) -> Input {
    let controls = (0x10_0000 + u64::from(n) * 0x1000).max(0x20_0000);
    let mut d = DeviceDesc::new(Bus::Platform);
    d.compatible = vec!["vendor,soc-block".into()];
    for i in 0..n {
        d.regions.push(RegionDesc {
            index: i,
            offset: 0x10_0000 + u64::from(i) * 0x1000,
            size: 0x1000,
            flags: REGION_READ | REGION_WRITE | REGION_MMAP,
            location: Location::None,
            dt: Some(DtLocation::new(format!("/soc/block@{i:x}"), DT_PROP_REG, 0)),
            label: None,
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        d.interrupts.push(InterruptDesc {
            index: i,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_LEVEL,
            control_offset: controls + u64::from(i) * 16,
            dt: Some(DtLocation::new(
                format!("/soc/block@{i:x}"),
                DT_PROP_INTERRUPTS,
                0,
            )),
            label: None,
        });
    }
    Input {
        name: format!("soc{n}"),
        bytes: d.build().expect("valid soc description"),
    }
}
