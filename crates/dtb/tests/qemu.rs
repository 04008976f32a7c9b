//! Real device trees: the DTBs QEMU generates for aarch64 `virt` (GICv2 and GICv3) and riscv64
//! `virt`, compared field by field with what `dtc -I dtb -O dts` shows.
//!
//! Three levels: every node and property byte for byte (the tree); `reg`, interrupts,
//! `compatible` and `status` of every node, recomputed here from dtc's text with the cells of
//! its parents and controllers (the semantics); and the descriptions built from them.
//! QEMU and dtc are required: the tests fail, naming the package, when one is missing.

mod common;

use std::collections::HashMap;

use common::*;
use devfd_dtb::{DeviceTree, Tree, Trigger};
use devfd_format::wire::*;

/// The cells of `path` as dtc shows them, defaults applied.
fn cells_of(dts: &Dts, path: &str) -> (u32, u32) {
    let n = &dts.nodes[path];
    (
        n.cell("#address-cells").unwrap_or(2),
        n.cell("#size-cells").unwrap_or(1),
    )
}

fn number(cells: &[u32]) -> u128 {
    cells.iter().fold(0u128, |n, &c| (n << 32) | u128::from(c))
}

/// Translation recomputed from dtc's text (generic buses only: no PCI children in these trees).
fn translate(dts: &Dts, bus: &str, mut a: u128) -> Option<u64> {
    let mut bus = bus.to_string();
    while bus != "/" {
        let up = parent_path(&bus).to_string();
        let node = &dts.nodes[&bus];
        let ranges = node.cells("ranges")?;
        if !ranges.is_empty() {
            let (cac, sc) = cells_of(dts, &bus);
            let (pac, _) = cells_of(dts, &up);
            let entry = (cac + pac + sc) as usize;
            a = ranges.chunks(entry).find_map(|e| {
                let child = number(&e[..cac as usize]);
                let parent = number(&e[cac as usize..(cac + pac) as usize]);
                let len = number(&e[(cac + pac) as usize..]);
                (a >= child && a - child < len).then(|| parent + (a - child))
            })?;
        }
        bus = up;
    }
    u64::try_from(a).ok()
}

/// The interrupt parent recomputed from dtc's text, the way Linux's `of_irq_find_parent` does.
fn interrupt_parent(dts: &Dts, phandles: &HashMap<u32, String>, path: &str) -> Option<String> {
    let mut cur = path.to_string();
    for _ in 0..dts.nodes.len() {
        let next = match dts.nodes[&cur].cell("interrupt-parent") {
            Some(ph) => phandles[&ph].clone(),
            None if cur == "/" => return None,
            None => parent_path(&cur).to_string(),
        };
        if dts.nodes[&next].get("#interrupt-cells").is_some() {
            return Some(next);
        }
        cur = next;
    }
    panic!("interrupt-parent loop in a QEMU tree at {path}");
}

fn check_machine(machine: &str) {
    let dtb = qemu_dtb(machine);
    let dts = dtc_view(&dtb);
    let tree = Tree::parse(&dtb).unwrap_or_else(|e| panic!("{machine}: {e}"));

    // 1. The tree: nodes in dtc's order, each property's name and bytes.
    let paths: Vec<String> = tree.nodes().map(|n| tree.path(n)).collect();
    assert_eq!(paths, dts.order, "{machine}: node paths");
    for id in tree.nodes() {
        let path = tree.path(id);
        let ours: Vec<(String, Vec<u8>)> = tree
            .properties(id)
            .iter()
            .map(|p| (p.name.to_string(), p.value.to_vec()))
            .collect();
        assert_eq!(
            ours, dts.nodes[&path].props,
            "{machine}: properties of {path}"
        );
        assert_eq!(tree.find(&path), Some(id), "{machine}: find {path}");
    }
    assert_eq!(
        tree.reserved(),
        dts.reserved.as_slice(),
        "{machine}: /memreserve/"
    );

    // 2. The semantics of every node with reg or interrupts.
    let dt = DeviceTree::from_tree(tree.clone()).unwrap_or_else(|e| panic!("{machine}: {e}"));
    let phandles: HashMap<u32, String> = dts
        .nodes
        .iter()
        .filter_map(|(p, n)| n.cell("phandle").map(|ph| (ph, p.clone())))
        .collect();
    let mut expected_paths = Vec::new();
    for path in &dts.order {
        let node = &dts.nodes[path];
        let has_reg = path != "/" && node.get("reg").is_some();
        let has_irq = node.get("interrupts").is_some() || node.get("interrupts-extended").is_some();
        if !has_reg && !has_irq {
            continue;
        }
        expected_paths.push(path.clone());
        let ours = dt
            .node(path)
            .unwrap_or_else(|| panic!("{machine}: {path} is not listed"));
        let what = format!("{machine} {path}");
        assert_eq!(
            ours.compatible,
            node.strings("compatible").unwrap_or_default(),
            "{what}: compatible"
        );
        let status = node
            .strings("status")
            .map(|s| s[0].clone())
            .unwrap_or_else(|| "okay".into());
        assert_eq!(ours.status, status, "{what}: status");
        assert_eq!(ours.enabled, status == "okay" || status == "ok", "{what}");

        // reg: entries of the parent's #address-cells + #size-cells.
        let reg = if has_reg {
            node.cells("reg").unwrap()
        } else {
            Vec::new()
        };
        let (ac, sc) = cells_of(&dts, parent_path(path));
        let entry = (ac + sc) as usize;
        assert_eq!(reg.len() % entry, 0, "{what}: reg");
        assert_eq!(ours.regs.len(), reg.len() / entry, "{what}: reg entries");
        for (r, e) in ours.regs.iter().zip(reg.chunks(entry)) {
            let address = number(&e[..ac as usize]);
            let size = (sc != 0).then(|| number(&e[ac as usize..]));
            assert_eq!(r.bus_address, address, "{what}: reg[{}] address", r.index);
            assert_eq!(r.size, size, "{what}: reg[{}] size", r.index);
            let cpu = translate(&dts, parent_path(path), address);
            assert_eq!(r.address, cpu, "{what}: reg[{}] CPU address", r.index);
        }

        // interrupts: the controller's #interrupt-cells per specifier.
        let mut expected: Vec<(String, Vec<u32>)> = Vec::new();
        if let Some(ext) = node.cells("interrupts-extended") {
            let mut rest = ext.as_slice();
            while let [ph, tail @ ..] = rest {
                let ctrl = phandles[ph].clone();
                let n = dts.nodes[&ctrl].cell("#interrupt-cells").unwrap() as usize;
                expected.push((ctrl, tail[..n].to_vec()));
                rest = &tail[n..];
            }
        } else if let Some(list) = node.cells("interrupts") {
            let ctrl = interrupt_parent(&dts, &phandles, path).expect("an interrupt parent");
            let n = dts.nodes[&ctrl].cell("#interrupt-cells").unwrap() as usize;
            for spec in list.chunks(n) {
                expected.push((ctrl.clone(), spec.to_vec()));
            }
        }
        let ours_irqs: Vec<(String, Vec<u32>)> = ours
            .interrupts
            .iter()
            .map(|i| (i.parent.clone(), i.cells.clone()))
            .collect();
        assert_eq!(ours_irqs, expected, "{what}: interrupts");
        for i in &ours.interrupts {
            assert_eq!(dt.tree().path(i.controller), i.parent);
        }
    }
    let listed: Vec<String> = dt.nodes().iter().map(|n| n.path.clone()).collect();
    assert_eq!(
        listed, expected_paths,
        "{machine}: nodes with reg or interrupts"
    );

    // 3. Every device's description is valid and says what the node says.
    let mut devices = 0;
    for node in dt.devices() {
        devices += 1;
        let bytes = node.build().unwrap_or_else(|e| panic!("{machine}: {e}"));
        let d = devfd_format::parse(&bytes).unwrap();
        assert_eq!(d.bus(), devfd_format::Bus::Platform);
        let compatible: Vec<&str> = d.device().compatible().collect();
        assert_eq!(compatible, node.compatible);
        let mapped: Vec<_> = node.regs.iter().filter_map(|r| r.mapped()).collect();
        assert_eq!(d.region_count() as usize, mapped.len(), "{}", node.path);
        for (r, (address, size)) in d.regions().zip(mapped) {
            assert_eq!(r.size, size);
            assert_eq!(r.dt_address(), Some(address));
            assert_eq!(r.dt().unwrap().path, node.path);
            assert_eq!(r.dt().unwrap().property, DT_PROP_REG);
            assert_eq!(r.flags, REGION_READ | REGION_WRITE);
        }
        assert_eq!(d.interrupt_count() as usize, node.interrupts.len());
        for (i, irq) in d.interrupts().zip(&node.interrupts) {
            let x = i.dt_interrupt().unwrap();
            assert_eq!(x.controller, irq.parent);
            assert_eq!(x.cells.collect::<Vec<_>>(), irq.cells);
            assert_eq!(i.dt().unwrap().index, irq.index);
            assert_eq!(i.level(), irq.trigger == Trigger::Level);
        }
        assert_eq!(
            d.version(),
            (1, 2),
            "{}: DT_ADDRESS/DT_INTERRUPT",
            node.path
        );
    }
    assert!(devices > 10, "{machine}: only {devices} devices");
    assert_eq!(dt.describe_all().unwrap().len(), devices);
}

#[test]
fn aarch64_virt_matches_dtc() {
    check_machine("aarch64-virt");
}

#[test]
fn aarch64_virt_gicv3_matches_dtc() {
    check_machine("aarch64-virt-gicv3");
}

#[test]
fn riscv64_virt_matches_dtc() {
    check_machine("riscv64-virt");
}

#[test]
fn aarch64_virt_uart_and_rtc() {
    let dtb = qemu_dtb("aarch64-virt");
    let dt = DeviceTree::parse(&dtb).unwrap();
    for (path, compatible, address, spi) in [
        ("/pl011@9000000", "arm,pl011", 0x900_0000u64, 1u32),
        ("/pl031@9010000", "arm,pl031", 0x901_0000, 2),
    ] {
        let n = dt.node(path).unwrap();
        assert!(n.is_device());
        assert_eq!(n.compatible, [compatible, "arm,primecell"]);
        assert_eq!(n.regs[0].mapped(), Some((address, 0x1000)));
        assert_eq!(n.interrupts.len(), 1);
        assert_eq!(n.interrupts[0].parent, "/intc@8000000");
        assert_eq!(n.interrupts[0].cells, [0, spi, 4], "GIC SPI, level high");
        assert_eq!(n.interrupts[0].trigger, Trigger::Level);
    }
    // virtio-mmio interrupts are edge-triggered (flags 1).
    let v = dt.node("/virtio_mmio@a000000").unwrap();
    assert_eq!(v.interrupts[0].trigger, Trigger::Edge);
    // The timer has four PPIs; the CPU's reg is an ID on a bus without ranges.
    assert_eq!(dt.node("/timer").unwrap().interrupts.len(), 4);
    let cpu = dt.node("/cpus/cpu@0").unwrap();
    assert_eq!((cpu.regs[0].address, cpu.regs[0].size), (None, None));
    assert!(!cpu.is_device());
    // Memory has no compatible: listed, not a device.
    assert!(!dt.node("/memory@40000000").unwrap().is_device());
    // The GIC's child translates through the GIC's empty `ranges`.
    let v2m = dt.node("/intc@8000000/v2m@8020000").unwrap();
    assert_eq!(v2m.regs[0].mapped(), Some((0x802_0000, 0x1000)));
    // The PCIe host's ECAM is above 4 GiB.
    let pcie = dt.node("/pcie@10000000").unwrap();
    assert_eq!(pcie.regs[0].mapped(), Some((0x40_1000_0000, 0x1000_0000)));
}

#[test]
fn aarch64_virt_pl031_description_is_the_golden_vector() {
    let dtb = qemu_dtb("aarch64-virt");
    let dt = DeviceTree::parse(&dtb).unwrap();
    let bytes = dt.node("/pl031@9010000").unwrap().build().unwrap();
    let golden = std::fs::read(root_dir().join("tests/golden/pl031-dt.bin")).unwrap();
    assert_eq!(
        bytes, golden,
        "tests/golden/pl031-dt.bin is what devfd builds for virt's PL031"
    );
}

#[test]
fn riscv64_virt_plic_and_clint() {
    let dtb = qemu_dtb("riscv64-virt");
    let dt = DeviceTree::parse(&dtb).unwrap();
    // interrupts-extended: two CPU-local interrupts of the CPU's interrupt controller.
    let clint = dt.node("/soc/clint@2000000").unwrap();
    let parents: Vec<(&str, &[u32])> = clint
        .interrupts
        .iter()
        .map(|i| (i.parent.as_str(), i.cells.as_slice()))
        .collect();
    let intc = "/cpus/cpu@0/interrupt-controller";
    assert_eq!(parents, [(intc, &[3][..]), (intc, &[7][..])]);
    // The PLIC has #address-cells = <0> but no child with reg: accepted.
    let plic = dt.tree().find("/soc/plic@c000000").unwrap();
    assert_eq!(dt.address_cells(plic), 0);
    // The UART's interrupt-parent is the PLIC, one cell.
    let uart = dt.node("/soc/serial@10000000").unwrap();
    assert_eq!(uart.interrupts[0].parent, "/soc/plic@c000000");
    assert_eq!(uart.interrupts[0].cells, [10]);
    assert_eq!(uart.regs[0].mapped(), Some((0x1000_0000, 0x100)));
}

#[test]
fn directory_form_reads_like_the_blob() {
    // Unpack the aarch64 virt tree into the /proc/device-tree form, read it back.
    let dtb = qemu_dtb("aarch64-virt");
    let tree = Tree::parse(&dtb).unwrap();
    let base = scratch().join("proc-device-tree");
    let _ = std::fs::remove_dir_all(&base);
    for id in tree.nodes() {
        let dir = base.join(tree.path(id).trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        for p in tree.properties(id) {
            std::fs::write(dir.join(p.name), p.value).unwrap();
        }
    }
    let bytes = devfd_dtb::load(&base).unwrap();
    let from_dir = DeviceTree::parse(&bytes).unwrap();
    let from_blob = DeviceTree::parse(&dtb).unwrap();
    // Directory order is by name; compare by path.
    let mut a: Vec<_> = from_dir
        .nodes()
        .iter()
        .map(|n| {
            (
                n.path.clone(),
                n.regs.clone(),
                n.interrupts
                    .iter()
                    .map(|i| (i.parent.clone(), i.cells.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let mut b: Vec<_> = from_blob
        .nodes()
        .iter()
        .map(|n| {
            (
                n.path.clone(),
                n.regs.clone(),
                n.interrupts
                    .iter()
                    .map(|i| (i.parent.clone(), i.cells.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(a, b);
}

#[test]
fn sys_firmware_fdt_when_present() {
    // CI machines boot without a device tree (x86, ACPI); when there is one it must parse.
    let path = std::path::Path::new(devfd_dtb::source::SYS_FIRMWARE_FDT);
    if path.exists() {
        devfd_dtb::load(path).unwrap();
    } else {
        let e = devfd_dtb::load(path).unwrap_err().to_string();
        assert!(e.contains("/sys/firmware/fdt"), "{e}");
    }
}
