//! The sysfs PCI source on arbitrary input: configuration space (header, capability list,
//! extended capability list) and the sysfs `resource` file are untrusted. Never a panic or
//! a hang; errors are located inside the input; whatever is accepted builds a description
//! that parses.
//!
//! Input: byte 0 = flags (bit 0: a 4096-byte space, bit 1: only 64 bytes readable as for a
//! process without CAP_SYS_ADMIN, bit 2: a driver is bound), bytes 1–2 = length of the
//! configuration bytes (little-endian, at most 4096), then those bytes, then the `resource`
//! text.
#![no_main]

use devfd_sysfs_pci::config::{self, Bytes};
use devfd_sysfs_pci::{Address, AnalyzeError, Inputs, Policy, analyze, resource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, l0, l1, rest @ ..] = data else {
        return;
    };
    let len = usize::from(u16::from_le_bytes([*l0, *l1]))
        .min(rest.len())
        .min(config::EXTENDED_CONFIG_SPACE_LEN);
    let (space, resource_text) = rest.split_at(len);

    // The parsers on their own: every error lies within the input.
    if let Ok(header) = config::parse_header(&mut Bytes(space)) {
        match config::walk_capabilities(&mut Bytes(space), &header) {
            Ok(caps) => {
                assert!(caps.list.len() <= 48);
                for c in &caps.list {
                    assert!(c.offset >= 0x40 && c.offset <= 0xfc && c.offset % 4 == 0);
                }
            }
            Err(e) => assert!(e.offset < config::CONFIG_SPACE_LEN, "{e}"),
        }
    }
    match config::walk_extended(&mut Bytes(space), space.len()) {
        Ok(list) => assert!(list.len() <= 960),
        Err(e) => assert!(e.offset < config::EXTENDED_CONFIG_SPACE_LEN, "{e}"),
    }
    match resource::parse_resource(resource_text) {
        Ok(lines) => {
            assert!(lines.len() <= resource::MAX_LINES);
            for r in &lines {
                let _ = r.size();
            }
        }
        Err(e) => assert!(e.offset <= resource_text.len(), "{e}"),
    }

    // The whole function, and its description under every policy.
    let readable = if flags & 2 != 0 { 64 } else { space.len() };
    let readable_space = &space[..space.len().min(readable)];
    let inputs = Inputs {
        config_size: if flags & 1 != 0 { 4096 } else { 256 },
        resource: resource_text,
        driver: (flags & 4 != 0).then_some("fuzz-driver"),
        irq: Some(11),
        msi_bus: Some(true),
        msi_irqs: None,
    };
    let address = Address::parse("0000:00:03.0").unwrap();
    let function = match analyze(address, &mut Bytes(readable_space), &inputs) {
        Ok(f) => f,
        Err(AnalyzeError::Config(e)) => {
            assert!(e.offset < config::EXTENDED_CONFIG_SPACE_LEN, "{e}");
            return;
        }
        Err(_) => return,
    };
    assert!(function.bars.len() <= 6);
    for pair in function.bars.windows(2) {
        assert!(pair[0].index < pair[1].index);
    }
    for (config_write, bar_access) in [(false, false), (true, true)] {
        let policy = Policy {
            config_write,
            bar_access,
        };
        if let Ok(desc) = function.device_desc(policy) {
            let bytes = desc
                .build()
                .expect("the description of an analyzed function builds");
            let d = devfd_format::parse(&bytes).expect("and parses");
            assert_eq!(d.pci_id(), Some(function.id));
            assert_eq!(
                d.region_count() as usize,
                function.bars.len() + 1 + usize::from(function.rom.is_some())
            );
        }
    }
});
