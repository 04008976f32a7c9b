//! `devfd ls --dtb` and `devfd info --dtb` on the DTBs QEMU dumps, compared with dtc, and the
//! errors of `--dtb` forms (`serve --dtb` on a FUSE mount is in `dtb_live.rs`). QEMU and dtc
//! are required: missing ones fail the tests, naming the package.

#[path = "../../dtb/tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn devfd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devfd"))
        .args(args)
        .output()
        .expect("devfd runs")
}

fn ok(args: &[&str]) -> String {
    let out = devfd(args);
    assert!(
        out.status.success(),
        "devfd {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = devfd(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "devfd {args:?} should fail with 2"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn number(cells: &[u32]) -> u64 {
    cells.iter().fold(0u64, |n, &c| (n << 32) | u64::from(c))
}

/// `ls --dtb --json` against dtc, for every node with reg or interrupts: path, compatible,
/// status, regs (address after translation, size), interrupts (parent path, cells).
fn ls_json_matches_dtc(machine: &str) {
    let path = qemu_dtb_path(machine);
    let dts = dtc_view(&std::fs::read(&path).unwrap());
    let list: Vec<Value> =
        serde_json::from_str(&ok(&["ls", "--dtb", path.to_str().unwrap(), "--json"])).unwrap();
    let by_path: HashMap<&str, &Value> = list
        .iter()
        .map(|v| (v["path"].as_str().unwrap(), v))
        .collect();
    let phandles: HashMap<u32, &str> = dts
        .nodes
        .iter()
        .filter_map(|(p, n)| n.cell("phandle").map(|ph| (ph, p.as_str())))
        .collect();
    let cells_of = |p: &str| {
        let n = &dts.nodes[p];
        (
            n.cell("#address-cells").unwrap_or(2) as usize,
            n.cell("#size-cells").unwrap_or(1) as usize,
        )
    };
    let mut expected = 0;
    for p in &dts.order {
        let n = &dts.nodes[p];
        let has_reg = p != "/" && n.get("reg").is_some();
        let has_irq = n.get("interrupts").is_some() || n.get("interrupts-extended").is_some();
        if !has_reg && !has_irq {
            continue;
        }
        expected += 1;
        let v = by_path
            .get(p.as_str())
            .unwrap_or_else(|| panic!("{machine}: {p} not listed"));
        let compatible = n.strings("compatible").unwrap_or_default();
        assert_eq!(v["compatible"], serde_json::json!(compatible), "{p}");
        let status = n.strings("status").map_or("okay".into(), |s| s[0].clone());
        assert_eq!(v["status"], status.as_str(), "{p}");

        // reg, with translation: these trees map every bus either by an empty `ranges` or
        // not at all (`cpus`), so the CPU address is the bus address or null.
        let reg = n.cells("reg").filter(|_| has_reg).unwrap_or_default();
        let parent = parent_path(p);
        let (ac, sc) = cells_of(parent);
        let mut mapped = true;
        let mut bus = parent.to_string();
        while bus != "/" {
            match dts.nodes[&bus].get("ranges") {
                Some([]) => {}
                None => mapped = false,
                Some(_) => panic!("{machine}: non-empty ranges above {p}"),
            }
            bus = parent_path(&bus).to_string();
        }
        let regs = v["regs"].as_array().unwrap();
        assert_eq!(regs.len(), reg.len() / (ac + sc), "{p}: reg entries");
        for (r, e) in regs.iter().zip(reg.chunks(ac + sc)) {
            let address = number(&e[..ac]);
            assert_eq!(r["bus_address"], address, "{p}");
            let size = (sc > 0).then(|| number(&e[ac..]));
            assert_eq!(r["size"].as_u64(), size, "{p}: size");
            let cpu = mapped.then_some(address);
            assert_eq!(r["address"].as_u64(), cpu, "{p}: address");
        }

        // interrupts: parent = the controller's path.
        let mut irqs: Vec<(String, Vec<u32>)> = Vec::new();
        if let Some(ext) = n.cells("interrupts-extended") {
            let mut rest = ext.as_slice();
            while let [ph, tail @ ..] = rest {
                let ctrl = phandles[ph];
                let k = dts.nodes[ctrl].cell("#interrupt-cells").unwrap() as usize;
                irqs.push((ctrl.into(), tail[..k].to_vec()));
                rest = &tail[k..];
            }
        } else if let Some(list) = n.cells("interrupts") {
            // Walk interrupt-parent, else the tree parent, to a node with #interrupt-cells.
            let mut cur = p.clone();
            let ctrl = loop {
                let next = match dts.nodes[&cur].cell("interrupt-parent") {
                    Some(ph) => phandles[&ph].to_string(),
                    None => parent_path(&cur).to_string(),
                };
                if dts.nodes[&next].get("#interrupt-cells").is_some() {
                    break next;
                }
                cur = next;
            };
            let k = dts.nodes[&ctrl].cell("#interrupt-cells").unwrap() as usize;
            irqs.extend(list.chunks(k).map(|c| (ctrl.clone(), c.to_vec())));
        }
        let ours: Vec<(String, Vec<u32>)> = v["interrupts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let cells = i["cells"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap() as u32)
                    .collect();
                (i["parent"].as_str().unwrap().to_string(), cells)
            })
            .collect();
        assert_eq!(ours, irqs, "{machine} {p}: interrupts");
        assert!(v["labels"].is_object(), "{p}: labels");
    }
    assert_eq!(
        list.len(),
        expected,
        "{machine}: one entry per node with reg or interrupts"
    );
}

#[test]
fn ls_dtb_json_aarch64_virt() {
    ls_json_matches_dtc("aarch64-virt");
}

#[test]
fn ls_dtb_json_aarch64_virt_gicv3() {
    ls_json_matches_dtc("aarch64-virt-gicv3");
}

#[test]
fn ls_dtb_json_riscv64_virt() {
    ls_json_matches_dtc("riscv64-virt");
}

#[test]
fn ls_dtb_text_one_line_per_node() {
    let path = qemu_dtb_path("aarch64-virt");
    let out = ok(&["ls", "--dtb", path.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    let json: Vec<Value> =
        serde_json::from_str(&ok(&["ls", "--dtb", path.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(lines.len(), json.len());
    let rtc = lines
        .iter()
        .find(|l| l.starts_with("/pl031@9010000 "))
        .unwrap();
    for part in [
        "arm,pl031,arm,primecell",
        "okay",
        "regs [0x9010000+4KiB]",
        "irqs [/intc@8000000<0x0 0x2 0x4>]",
    ] {
        assert!(rtc.contains(part), "{rtc}: {part}");
    }
    let cpu = lines
        .iter()
        .find(|l| l.starts_with("/cpus/cpu@0 "))
        .unwrap();
    assert!(cpu.contains("regs [bus:0x0]"), "{cpu}");
}

#[test]
fn info_dtb_prints_the_nodes_description() {
    let path = qemu_dtb_path("aarch64-virt");
    let file = path.to_str().unwrap();
    let out = ok(&["info", "--dtb", file, "/pl031@9010000"]);
    for part in [
        "devfd 1.2 platform device",
        "compatible arm,pl031, arm,primecell",
        "region 0   dt reg[0]",
        "/pl031@9010000  cpu 0x9010000",
        "interrupts[0]  parent /intc@8000000 <0x0 0x2 0x4>",
        "DT_ADDRESS",
        "DT_INTERRUPT",
    ] {
        assert!(out.contains(part), "{out}\n--- missing {part}");
    }
    let v: Value =
        serde_json::from_str(&ok(&["info", "--dtb", file, "/pl011@9000000", "--json"])).unwrap();
    assert_eq!(v["version"], "1.2");
    assert_eq!(v["device"]["compatible"][0], "arm,pl011");
    assert_eq!(v["regions"][0]["dt"]["address"], 0x900_0000);
    assert_eq!(v["interrupts"][0]["dt"]["controller"], "/intc@8000000");
    assert_eq!(
        v["interrupts"][0]["dt"]["cells"],
        serde_json::json!([0, 1, 4])
    );
    // Byte for byte the golden vector (crates/dtb tests check the same).
    let bin = ok(&["info", "--dtb", file, "/pl031@9010000", "--json"]);
    let v: Value = serde_json::from_str(&bin).unwrap();
    assert_eq!(v["desc_len"], 364);
}

#[test]
fn dtb_errors_name_the_problem() {
    let path = qemu_dtb_path("aarch64-virt");
    let file = path.to_str().unwrap();
    let e = fails(&["info", "--dtb", file, "/nope"]);
    assert!(e.contains("no node /nope"), "{e}");
    let e = fails(&["info", "--dtb", file, "/chosen"]);
    assert!(e.contains("neither reg nor interrupts"), "{e}");
    let e = fails(&["info", "--dtb", file, "/memory@40000000"]);
    assert!(e.contains("no `compatible`"), "{e}");
    let e = fails(&["info", "--dtb", file]);
    assert!(e.contains("<PATH>"), "the node is required: {e}");
    // A truncated blob: the error is located.
    let bytes = std::fs::read(&path).unwrap();
    let cut = write_temp("cut.dtb", &bytes[..100]);
    let e = fails(&["ls", "--dtb", cut.to_str().unwrap()]);
    assert!(
        e.contains("invalid device tree") && e.contains("byte 0x4"),
        "{e}"
    );
    let e = fails(&["ls", "--dtb", "/nonexistent.dtb"]);
    assert!(e.contains("cannot read /nonexistent.dtb"), "{e}");
    // serve: a node named by --node without a model, or that is not a device, is an error
    // (before anything is mounted).
    let e = fails(&[
        "serve",
        "--dtb",
        file,
        "--node",
        "/virtio_mmio@a000000",
        "--mount",
        "/nonexistent",
    ]);
    assert!(
        e.contains("--node /virtio_mmio@a000000") && e.contains("no emulated model"),
        "{e}"
    );
    let e = fails(&[
        "serve",
        "--dtb",
        file,
        "--node",
        "/cpus/cpu@0",
        "--mount",
        "/nonexistent",
    ]);
    assert!(e.contains("not a device"), "{e}");
    let e = fails(&["serve", "--node", "/pl031@9010000"]);
    assert!(e.contains("--dtb"), "--node needs --dtb: {e}");
}

#[test]
fn ls_dtb_reads_the_directory_form() {
    let path = qemu_dtb_path("riscv64-virt");
    let bytes = std::fs::read(&path).unwrap();
    let tree = devfd_dtb::Tree::parse(&bytes).unwrap();
    let base = scratch().join("riscv-proc-device-tree");
    let _ = std::fs::remove_dir_all(&base);
    for id in tree.nodes() {
        let dir = base.join(tree.path(id).trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        for p in tree.properties(id) {
            std::fs::write(dir.join(p.name), p.value).unwrap();
        }
    }
    let from_dir: Vec<Value> =
        serde_json::from_str(&ok(&["ls", "--dtb", base.to_str().unwrap(), "--json"])).unwrap();
    let from_blob: Vec<Value> =
        serde_json::from_str(&ok(&["ls", "--dtb", path.to_str().unwrap(), "--json"])).unwrap();
    let key = |v: &Value| v["path"].as_str().unwrap().to_string();
    let mut a = from_dir.clone();
    let mut b = from_blob.clone();
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a, b);
}
