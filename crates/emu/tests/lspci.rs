//! The edu configuration space, dumped as `lspci -x` prints it, must be understood by the real
//! `lspci -F` (pciutils). Fails, rather than skips, without `lspci`: CI installs pciutils.
//!
//! `lspci` shows BAR sizes only from sysfs, never from a dump, so the size is checked through
//! the BAR sizing protocol here instead.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use devfd_device::Device;
use devfd_emu::{Edu, EduOptions};

const CONFIG: u32 = Edu::CONFIG_REGION;

fn read32(edu: &Edu, offset: u64) -> u32 {
    let mut b = [0; 4];
    edu.read(CONFIG, offset, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn write32(edu: &Edu, offset: u64, value: u32) {
    edu.write(CONFIG, offset, &value.to_le_bytes()).unwrap();
}

/// All 256 bytes, read through the device a dword at a time.
fn config_space(edu: &Edu) -> Vec<u8> {
    (0..256u64)
        .step_by(4)
        .flat_map(|offset| read32(edu, offset).to_le_bytes())
        .collect()
}

/// The text of `lspci -x` for one function: a header line, then 16 bytes a line.
fn lspci_dump(bytes: &[u8]) -> String {
    let mut text = String::from("00:04.0 Unclassified device [00ff]: Device 1234:11e8 (rev 10)\n");
    for (line, chunk) in bytes.chunks(16).enumerate() {
        write!(text, "{:02x}:", line * 16).unwrap();
        for b in chunk {
            write!(text, " {b:02x}").unwrap();
        }
        text.push('\n');
    }
    text
}

/// Runs `lspci -F DUMP -vvnn` on `bytes` and returns its standard output.
fn lspci(bytes: &[u8], name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("edu-{name}.lspci"));
    std::fs::write(&path, lspci_dump(bytes)).unwrap();
    let output = Command::new("lspci")
        .arg("-F")
        .arg(&path)
        .arg("-vvnn")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lspci ({e}); install pciutils (apt-get install pciutils)")
        });
    assert!(
        output.status.success(),
        "lspci failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn lspci_reads_the_config_space() {
    let edu = Edu::new(EduOptions::default()).unwrap();
    write32(&edu, 0x10, 0xfe00_0000);
    write32(&edu, 0x04, 0x0002); // memory space
    let bytes = config_space(&edu);
    assert_eq!(bytes.len(), 256);
    let dump = lspci_dump(&bytes);
    assert!(
        dump.contains("\n00: 34 12 e8 11 02 00 10 00 10 00 ff 00 00 00 00 00\n"),
        "{dump}"
    );

    let out = lspci(&bytes, "enabled");
    for expected in [
        "00:04.0 Unclassified device [00ff]: Device [1234:11e8] (rev 10)",
        "Subsystem: Red Hat, Inc. Device [1af4:1100]",
        "Control: I/O- Mem+ BusMaster-",
        "DisINTx-",
        "Status: Cap+",
        "INTx-",
        "Interrupt: pin A routed to IRQ 0",
        "Region 0: Memory at fe000000 (32-bit, non-prefetchable)",
        "Capabilities: [40] MSI: Enable- Count=1/1 Maskable- 64bit+",
        "Address: 0000000000000000  Data: 0000",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        !out.contains("Region 1"),
        "only BAR0 is implemented:\n{out}"
    );
}

#[test]
fn lspci_sees_msi_and_interrupt_state() {
    let edu = Edu::new(EduOptions::default()).unwrap();
    write32(&edu, 0x10, 0xfe00_0000);
    write32(&edu, 0x04, 0x0406); // memory space, bus master, INTx disabled
    write32(&edu, 0x44, 0xfee0_0000);
    write32(&edu, 0x48, 0x0000_0001);
    write32(&edu, 0x4c, 0x4041);
    write32(&edu, 0x40, 0x0001_0000); // MSI enable
    let out = lspci(&config_space(&edu), "msi");
    for expected in [
        "Control: I/O- Mem+ BusMaster+",
        "DisINTx+",
        "Capabilities: [40] MSI: Enable+ Count=1/1 Maskable- 64bit+",
        "Address: 00000001fee00000  Data: 4041",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }

    // A pending interrupt without MSI shows in the status register.
    write32(&edu, 0x40, 0);
    edu.write(Edu::BAR0_REGION, 0x60, &1u32.to_le_bytes())
        .unwrap();
    let out = lspci(&config_space(&edu), "intx");
    assert!(out.contains("MSI: Enable-"), "{out}");
    assert!(out.contains("<PERR- INTx+"), "{out}");
}

#[test]
fn bar0_sizing_protocol() {
    let edu = Edu::new(EduOptions::default()).unwrap();
    let original = read32(&edu, 0x10);
    write32(&edu, 0x10, 0xffff_ffff);
    let sized = read32(&edu, 0x10);
    assert_eq!(sized, 0xfff0_0000);
    assert_eq!(sized & 0xf, 0, "32-bit non-prefetchable memory");
    assert_eq!((!(sized & !0xf)).wrapping_add(1), 1 << 20, "1 MiB");
    write32(&edu, 0x10, original);
    assert_eq!(read32(&edu, 0x10), 0);
    write32(&edu, 0x10, 0xfe0f_fff7);
    assert_eq!(read32(&edu, 0x10), 0xfe00_0000, "aligned to the BAR size");
    for bar in 1..6 {
        write32(&edu, 0x10 + 4 * bar, 0xffff_ffff);
        assert_eq!(
            read32(&edu, 0x10 + 4 * bar),
            0,
            "BAR{bar} is not implemented"
        );
    }
}
