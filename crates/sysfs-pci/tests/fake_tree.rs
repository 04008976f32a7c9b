//! The sysfs PCI source on fake trees in a temporary directory: what it reads, the
//! description it builds, and what it refuses. The `resourceN` files here are ordinary
//! files, so BAR access (mmap and pread/pwrite) is exercised without touching any device.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use devfd_device::{AccessError, Device, DeviceError, RegionMap, Target};
use devfd_format::wire::{
    BAR_IO, BAR_MEM64, BAR_PREFETCH, IRQ_KIND_INTX, IRQ_KIND_MSI, IRQ_KIND_MSIX, IRQ_MASKABLE,
    REGION_READ, REGION_WRITE,
};
use devfd_format::{AccessWidths, Location};
use devfd_sysfs_pci::{
    AccessOptions, Address, BarKind, CONFIG_REGION, ConfigErrorKind, Policy, Refused, Sysfs,
    SysfsError, SysfsPciDevice, analyze, config::Bytes,
};

/// A fresh directory under the target's temporary directory.
fn fresh(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "sysfs-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A virtio-net-like PCI Express function: BAR0 64-bit prefetchable 512 KiB, BAR2 I/O 32
/// bytes, BAR3 32-bit 4 KiB, a 256 KiB ROM, INTA, MSI (4 vectors, 64-bit, maskable), MSI-X
/// (3 entries), PCI Express, and AER + ARI in the extended space.
fn config_space() -> Vec<u8> {
    let mut c = vec![0u8; 4096];
    c[0..4].copy_from_slice(&[0xf4, 0x1a, 0x41, 0x10]);
    c[4..6].copy_from_slice(&0x0006u16.to_le_bytes());
    c[6] = 0x10; // capability list
    c[8] = 0x01; // revision
    c[9..12].copy_from_slice(&[0x00, 0x00, 0x02]); // Ethernet
    c[0x10..0x14].copy_from_slice(&0x0000_000cu32.to_le_bytes());
    c[0x14..0x18].copy_from_slice(&0x0000_0040u32.to_le_bytes());
    c[0x18..0x1c].copy_from_slice(&0x0000_c001u32.to_le_bytes());
    c[0x1c..0x20].copy_from_slice(&0xfe00_0000u32.to_le_bytes());
    c[0x2c..0x30].copy_from_slice(&[0xf4, 0x1a, 0x00, 0x11]);
    c[0x30..0x34].copy_from_slice(&0xfeb0_0000u32.to_le_bytes());
    c[0x34] = 0x40;
    c[0x3c] = 11;
    c[0x3d] = 1;
    c[0x40..0x44].copy_from_slice(&[0x09, 0x50, 0x10, 0x01]); // vendor specific
    c[0x50..0x54].copy_from_slice(&[0x05, 0x70, 0x84, 0x01]); // MSI: MMC 2, 64-bit, PVM
    c[0x70..0x74].copy_from_slice(&[0x11, 0x90, 0x02, 0x00]); // MSI-X: 3 entries
    c[0x74..0x78].copy_from_slice(&0x8000u32.to_le_bytes());
    c[0x78..0x7c].copy_from_slice(&0x0004_8000u32.to_le_bytes());
    c[0x90..0x94].copy_from_slice(&[0x10, 0x00, 0x02, 0x00]); // PCI Express
    c[0x100..0x104].copy_from_slice(&(0x0001u32 | 1 << 16 | 0x148 << 20).to_le_bytes());
    c[0x148..0x14c].copy_from_slice(&(0x000eu32 | 1 << 16).to_le_bytes());
    c
}

const RESOURCE: &str = "0x0000004000000000 0x000000400007ffff 0x000000000014220c
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x000000000000c000 0x000000000000c01f 0x0000000000040101
0x00000000fe000000 0x00000000fe000fff 0x0000000000040200
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x00000000feb00000 0x00000000feb3ffff 0x0000000000046200
";

/// A function directory `root/bdf` with `config`, `resource`, `irq`, `msi_bus`, and
/// `resourceN` files of the BARs' sizes.
fn function(root: &Path, bdf: &str, config: &[u8], resource: &str) -> PathBuf {
    let dir = root.join(bdf);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("resource"), resource).unwrap();
    std::fs::write(dir.join("irq"), "11\n").unwrap();
    std::fs::write(dir.join("msi_bus"), "1\n").unwrap();
    for (n, size) in [(0, 512 * 1024), (2, 32), (3, 4096)] {
        let f = std::fs::File::create(dir.join(format!("resource{n}"))).unwrap();
        f.set_len(size).unwrap();
    }
    dir
}

fn bind(dir: &Path, driver: &str) {
    std::os::unix::fs::symlink(
        format!("../../../bus/pci/drivers/{driver}"),
        dir.join("driver"),
    )
    .unwrap();
}

fn unbind(dir: &Path) {
    std::fs::remove_file(dir.join("driver")).unwrap();
}

fn tree(name: &str) -> (Sysfs, PathBuf, Address) {
    let root = fresh(name);
    let dir = function(&root, "0000:00:03.0", &config_space(), RESOURCE);
    (
        Sysfs::new(&root),
        dir,
        Address::parse("0000:00:03.0").unwrap(),
    )
}

#[test]
fn reads_identity_bars_rom_interrupts_and_capabilities() {
    let (sysfs, dir, address) = tree("read");
    bind(&dir, "virtio-pci");
    let f = sysfs.read(address).unwrap();
    assert_eq!((f.id.vendor, f.id.device), (0x1af4, 0x1041));
    assert_eq!(
        (f.id.subsystem_vendor, f.id.subsystem_device),
        (0x1af4, 0x1100)
    );
    assert_eq!((f.id.class, f.id.revision), (0x02_0000, 1));
    assert_eq!(f.config_size, 4096);
    let bars: Vec<_> = f
        .bars
        .iter()
        .map(|b| (b.index, b.kind, b.prefetchable, b.size))
        .collect();
    assert_eq!(
        bars,
        [
            (0, BarKind::Mem64, true, 512 * 1024),
            (2, BarKind::Io, false, 32),
            (3, BarKind::Mem32, false, 4096)
        ]
    );
    let rom = f.rom.unwrap();
    assert_eq!((rom.size, rom.enabled), (256 * 1024, false));
    let intx = f.intx.unwrap();
    assert_eq!((intx.pin_name(), intx.line, intx.irq), ('A', 11, Some(11)));
    let msi = f.msi.unwrap();
    assert_eq!(
        (msi.vectors, msi.is_64bit, msi.per_vector_mask),
        (4, true, true)
    );
    let msix = f.msix.unwrap();
    assert_eq!(
        (msix.table_size, msix.table_bar, msix.table_offset),
        (3, 0, 0x8000)
    );
    assert_eq!((msix.pba_bar, msix.pba_offset), (0, 0x48000));
    let caps: Vec<_> = f
        .capabilities
        .iter()
        .map(devfd_sysfs_pci::capability_text)
        .collect();
    assert_eq!(
        caps,
        [
            "[40] Vendor Specific",
            "[50] MSI",
            "[70] MSI-X",
            "[90] PCI Express",
            "[100 v1] Advanced Error Reporting",
            "[148 v1] Alternative Routing-ID Interpretation"
        ]
    );
    assert_eq!(f.driver.as_deref(), Some("virtio-pci"));
    assert_eq!(f.msi_bus, Some(true));
    assert_eq!(f.interrupt_counts(), [("intx", 1), ("msi", 4), ("msix", 3)]);
}

#[test]
fn the_description() {
    let (sysfs, _dir, address) = tree("describe");
    let f = sysfs.read(address).unwrap();
    let bytes = f.device_desc(Policy::default()).unwrap().build().unwrap();
    let d = devfd_format::parse(&bytes).unwrap();
    assert_eq!(d.device().label(), Some("0000:00:03.0"));
    assert_eq!(d.pci_id().unwrap(), f.id);
    let bar0 = d.pci_bar(0).unwrap();
    assert_eq!(bar0.size, 512 * 1024);
    assert_eq!(
        bar0.location(),
        Location::PciBar {
            bar: 0,
            flags: BAR_MEM64 | BAR_PREFETCH
        }
    );
    assert_eq!(bar0.flags, 0, "no access without --allow-bar-access");
    assert_eq!(
        bar0.label(),
        Some("bar0: no access (needs --allow-bar-access)")
    );
    let bar2 = d.pci_bar(2).unwrap();
    assert_eq!(
        bar2.location(),
        Location::PciBar {
            bar: 2,
            flags: BAR_IO
        }
    );
    assert_eq!(bar2.access_widths(), AccessWidths::new(0b0111));
    assert!(d.pci_bar(1).is_none(), "the upper half of BAR0");
    assert_eq!(d.pci_rom().unwrap().size, 256 * 1024);
    let config = d.pci_config().unwrap();
    assert_eq!((config.index, config.size), (CONFIG_REGION, 4096));
    assert_eq!(config.flags, REGION_READ);
    let irqs: Vec<_> = d
        .interrupts()
        .map(|i| (i.index, i.kind, i.count, i.flags & IRQ_MASKABLE != 0))
        .collect();
    assert_eq!(
        irqs,
        [
            (0, IRQ_KIND_INTX, 1, true),
            (1, IRQ_KIND_MSI, 4, true),
            (2, IRQ_KIND_MSIX, 3, true)
        ]
    );
    // With everything allowed: read-write BARs and config space.
    let bytes = f
        .device_desc(Policy {
            config_write: true,
            bar_access: true,
        })
        .unwrap()
        .build()
        .unwrap();
    let d = devfd_format::parse(&bytes).unwrap();
    assert_eq!(d.pci_bar(0).unwrap().flags, REGION_READ | REGION_WRITE);
    assert_eq!(d.pci_config().unwrap().flags, REGION_READ | REGION_WRITE);
}

#[test]
fn config_space_reads_equal_the_file_and_writes_are_refused_without_the_flag() {
    let (sysfs, dir, address) = tree("config");
    bind(&dir, "virtio-pci");
    let dev = SysfsPciDevice::open(&sysfs, address, AccessOptions::default()).unwrap();
    let file = std::fs::read(dir.join("config")).unwrap();
    let mut all = Vec::new();
    for off in (0..4096u64).step_by(8) {
        let mut b = [0u8; 8];
        dev.read(CONFIG_REGION, off, &mut b).unwrap();
        all.extend_from_slice(&b);
    }
    assert_eq!(all, file);
    // The description has no REGION_WRITE on config space: the dispatcher answers EPERM.
    let parsed = devfd_format::parse(dev.description()).unwrap();
    let map = RegionMap::new(&parsed);
    let config = parsed.pci_config().unwrap();
    let err = map.resolve(config.offset + 4, 2, true).unwrap_err();
    assert_eq!(err.errno(), libc::EPERM);
    assert!(matches!(
        map.resolve(config.offset + 4, 2, false),
        Ok(Target::Region {
            index: 7,
            offset: 4
        })
    ));
    // And the device refuses too, if called anyway; the file is unchanged.
    assert_eq!(
        dev.write(CONFIG_REGION, 4, &[0, 0]),
        Err(DeviceError::Unsupported)
    );
    // BARs: no access at all.
    let bar0 = parsed.pci_bar(0).unwrap();
    assert_eq!(
        map.resolve(bar0.offset, 4, false).unwrap_err().errno(),
        libc::EPERM
    );
    assert_eq!(dev.read(0, 0, &mut [0; 4]), Err(DeviceError::Unsupported));
    assert_eq!(std::fs::read(dir.join("config")).unwrap(), file);
    let notes = dev.notes().join("\n");
    assert!(
        notes.contains("read-only (bound to kernel driver virtio-pci)"),
        "{notes}"
    );
    assert!(notes.contains("delivery needs VFIO"), "{notes}");
}

#[test]
fn a_bound_driver_refuses_writes_and_bar_access_with_ebusy() {
    let (sysfs, dir, address) = tree("bound");
    bind(&dir, "e1000e");
    let before = std::fs::read(dir.join("config")).unwrap();
    for (options, what) in [
        (
            AccessOptions {
                allow_write: true,
                allow_bar_access: false,
            },
            Refused::ConfigWrite,
        ),
        (
            AccessOptions {
                allow_write: false,
                allow_bar_access: true,
            },
            Refused::BarAccess,
        ),
    ] {
        let err = SysfsPciDevice::open(&sysfs, address, options).unwrap_err();
        assert_eq!(err.errno(), libc::EBUSY);
        assert!(
            matches!(&err, SysfsError::DriverBound { driver, what: w, .. } if driver == "e1000e" && *w == what),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("bound to the kernel driver e1000e"), "{text}");
        assert!(text.contains("EBUSY") && text.contains("unbind"), "{text}");
    }
    assert_eq!(std::fs::read(dir.join("config")).unwrap(), before);
}

#[test]
fn writes_and_bar_access_when_allowed_and_ebusy_once_a_driver_binds() {
    let (sysfs, dir, address) = tree("allowed");
    let dev = SysfsPciDevice::open(
        &sysfs,
        address,
        AccessOptions {
            allow_write: true,
            allow_bar_access: true,
        },
    )
    .unwrap();
    // Config space write reaches the file.
    dev.write(CONFIG_REGION, 0x3c, &[5]).unwrap();
    assert_eq!(std::fs::read(dir.join("config")).unwrap()[0x3c], 5);
    // Memory BAR through the mapping, every width; the bytes land in resource0.
    dev.write(0, 0x10, &0x1122_3344u32.to_le_bytes()).unwrap();
    dev.write(0, 0x18, &0x0102_0304_0506_0708u64.to_le_bytes())
        .unwrap();
    dev.write(0, 0x7_fffe, &[0xaa, 0xbb]).unwrap();
    let mut b = [0u8; 4];
    dev.read(0, 0x10, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x1122_3344);
    let mut one = [0u8];
    dev.read(0, 0x11, &mut one).unwrap();
    assert_eq!(one, [0x33]);
    let file = std::fs::File::open(dir.join("resource0")).unwrap();
    let mut got = [0u8; 16];
    file.read_exact_at(&mut got, 0x10).unwrap();
    assert_eq!(&got[..4], &0x1122_3344u32.to_le_bytes());
    assert_eq!(&got[8..], &0x0102_0304_0506_0708u64.to_le_bytes());
    // Out of the BAR or misaligned: refused by the device even if a presentation let it by.
    assert_eq!(dev.read(0, 0x8_0000, &mut b), Err(DeviceError::Unsupported));
    assert_eq!(dev.read(0, 0x11, &mut b), Err(DeviceError::Unsupported));
    // I/O BAR: pread/pwrite on resource2.
    dev.write(2, 4, &0xbeefu16.to_le_bytes()).unwrap();
    let mut w = [0u8; 2];
    dev.read(2, 4, &mut w).unwrap();
    assert_eq!(u16::from_le_bytes(w), 0xbeef);
    // A driver binds while served: every BAR access and config write is EBUSY now, reads of
    // config space still work, and nothing more reaches the files.
    bind(&dir, "virtio-pci");
    let busy = Err(DeviceError::Busy);
    assert_eq!(dev.write(CONFIG_REGION, 0x3c, &[9]), busy);
    assert_eq!(dev.write(0, 0x10, &[0; 4]), busy);
    assert_eq!(dev.read(0, 0x10, &mut b), busy);
    assert_eq!(dev.read(2, 4, &mut w), busy);
    assert_eq!(AccessError::Device(DeviceError::Busy).errno(), libc::EBUSY);
    dev.read(CONFIG_REGION, 0x3c, &mut one).unwrap();
    assert_eq!(one, [5]);
    unbind(&dir);
    dev.read(0, 0x10, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x1122_3344);
}

#[test]
fn bar_access_needs_the_resource_files() {
    let (sysfs, dir, address) = tree("nobarfile");
    std::fs::remove_file(dir.join("resource3")).unwrap();
    let err = SysfsPciDevice::open(
        &sysfs,
        address,
        AccessOptions {
            allow_write: false,
            allow_bar_access: true,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, SysfsError::NoBarFile { bar: 3, .. }),
        "{err:?}"
    );
    // Without the flag nothing is opened, so the function serves fine.
    SysfsPciDevice::open(&sysfs, address, AccessOptions::default()).unwrap();
}

#[test]
fn listing_sorts_skips_strangers_and_isolates_damage() {
    let root = fresh("list");
    let good = config_space();
    function(&root, "0000:00:05.0", &good[..256], RESOURCE);
    function(&root, "0000:00:02.0", &good, RESOURCE);
    let mut looped = good.clone();
    looped[0x91] = 0x50; // PCI Express -> MSI again
    function(&root, "0000:00:04.0", &looped, RESOURCE);
    function(&root, "0000:00:06.0", &good[..100], RESOURCE);
    function(&root, "0000:00:07.0", &good, "0x10 0x0 0x200\n");
    std::fs::create_dir(root.join("not-a-function")).unwrap();
    std::fs::create_dir(root.join("00:08.0")).unwrap(); // not the canonical name
    let list = Sysfs::new(&root).list().unwrap();
    let names: Vec<_> = list.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(
        names,
        [
            "0000:00:02.0",
            "0000:00:04.0",
            "0000:00:05.0",
            "0000:00:06.0",
            "0000:00:07.0"
        ]
    );
    let f = list[0].1.as_ref().unwrap();
    assert_eq!((f.config_size, f.capabilities.len()), (4096, 6));
    let chain = |e: &SysfsError| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    };
    let e = list[1].1.as_ref().unwrap_err();
    assert_eq!(
        chain(e),
        "0000:00:04.0: config space byte 0x91 (capability 0x10 (PCI Express)): capability \
         pointer 0x50 loops back to a capability already visited"
    );
    // A 256-byte space has no extended capabilities, whatever PCI Express says.
    let f = list[2].1.as_ref().unwrap();
    assert_eq!((f.config_size, f.capabilities.len()), (256, 4));
    let e = list[3].1.as_ref().unwrap_err();
    assert_eq!(
        chain(e),
        "0000:00:06.0: the config file is 100 bytes, not 256 or 4096"
    );
    let e = list[4].1.as_ref().unwrap_err();
    assert!(chain(e).contains("resource file: line 1 (byte 0): the end lies below the start"));
    // Addresses are validated before they become paths.
    let sysfs = Sysfs::new(&root);
    assert!(matches!(
        sysfs.find("../../etc"),
        Err(SysfsError::BadAddress(_))
    ));
    assert!(matches!(
        sysfs.find("00:09.0"),
        Err(SysfsError::NoSuchFunction { .. })
    ));
    assert_eq!(sysfs.find("00:02.0").unwrap().to_string(), "0000:00:02.0");
}

#[test]
fn without_cap_sys_admin_only_the_header_is_read() {
    // What sysfs gives a process without CAP_SYS_ADMIN: 64 bytes of a 4096-byte file.
    let config = config_space();
    let inputs = devfd_sysfs_pci::Inputs {
        config_size: 4096,
        resource: RESOURCE.as_bytes(),
        ..Default::default()
    };
    let address = Address::parse("00:03.0").unwrap();
    let f = analyze(address, &mut Bytes(&config[..64]), &inputs).unwrap();
    assert!(!f.capabilities_read);
    assert_eq!((f.id.vendor, f.bars.len()), (0x1af4, 3));
    assert!(f.msi.is_none() && f.msix.is_none());
    // A short read that is not the unprivileged limit is damage, located.
    let e = analyze(address, &mut Bytes(&config[..0x60]), &inputs).unwrap_err();
    let devfd_sysfs_pci::AnalyzeError::Config(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.kind, ConfigErrorKind::Truncated { len: 0x60 });
    assert_eq!(e.offset, 0x50, "the MSI capability, 24 bytes from 0x50");
}
