//! The `devfd` binary as a user runs it: exit codes, output, JSON schema, error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn devfd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devfd"))
        .args(args)
        .output()
        .expect("devfd runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden(name: &str) -> String {
    root().join("tests/golden").join(name).display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("devfd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn inspect_shows_tree_and_address_map() {
    let out = devfd(&["inspect", &golden("edu.bin")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("devfd 1.0 pci device"), "{s}");
    assert!(s.contains("1234:11e8"), "{s}");
    assert!(s.contains("region 0   bar0 mem32"), "{s}");
    assert!(s.contains("address map"), "{s}");
    assert!(s.contains("record 5 END"), "{s}");
}

#[test]
fn inspect_json_has_the_documented_fields() {
    let out = devfd(&["inspect", "--json", &golden("edu.bin")]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bus"], "pci");
    assert_eq!(v["version"], "1.0");
    assert_eq!(v["regions"][0]["index"], 0);
    assert_eq!(v["regions"][0]["offset"], 0x1000);
    assert_eq!(v["regions"][0]["size"], 0x10_0000);
    assert_eq!(
        v["regions"][0]["flags"],
        serde_json::json!(["read", "write"])
    );
    assert_eq!(v["interrupts"][1]["index"], 1);
    assert_eq!(v["interrupts"][1]["count"], 1);
    assert_eq!(v["interrupts"][1]["flags"], serde_json::json!(["maskable"]));
    assert_eq!(v["device"]["pci"]["vendor"], 0x1234);
}

#[test]
fn inspect_reads_standard_input() {
    let bytes = std::fs::read(golden("pl031.bin")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_devfd"))
        .args(["inspect", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bus"], "platform");
    assert_eq!(v["device"]["compatible"][0], "arm,pl031");
}

#[test]
fn bad_input_is_exit_2_with_a_located_message() {
    let mut bytes = std::fs::read(golden("edu.bin")).unwrap();
    bytes[0x5c + 4..0x5c + 8].copy_from_slice(&0u32.to_le_bytes());
    let path = tmp("broken.bin");
    std::fs::write(&path, &bytes).unwrap();
    let out = devfd(&["inspect", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("byte 0x60, record 1 (REGION): rec_len is 0"),
        "{err}"
    );
    let out = devfd(&["inspect", "/nonexistent/devfd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("reading /nonexistent/devfd"));
}

#[test]
fn lint_lists_every_problem_and_exits_1() {
    let mut bytes = std::fs::read(golden("edu.bin")).unwrap();
    // Region 0's size to 0, and an unknown must-understand flag on region 7.
    bytes[0x5c + 20..0x5c + 28].copy_from_slice(&0u64.to_le_bytes());
    bytes[0xa4 + 8] |= 0x40;
    let path = tmp("two-problems.bin");
    std::fs::write(&path, &bytes).unwrap();
    let out = devfd(&["lint", path.to_str().unwrap(), &golden("pl031.bin")]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(s.contains("record 1 (REGION): region 0 has size 0"), "{s}");
    assert!(
        s.contains("byte 0xac, record 2 (REGION): unknown must-understand flags 0x40"),
        "{s}"
    );
    assert!(s.contains("pl031.bin: ok"), "{s}");
    let out = devfd(&["lint", &golden("edu.bin")]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn build_writes_the_golden_bytes() {
    let out_path = tmp("edu.bin");
    let example = root().join("examples/edu.toml");
    let out = devfd(&[
        "build",
        example.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(&out_path).unwrap(),
        std::fs::read(golden("edu.bin")).unwrap()
    );
}

#[test]
fn build_errors_name_the_item() {
    let desc = tmp("bad.toml");
    std::fs::write(
        &desc,
        "bus = \"pci\"\n[pci]\nvendor = 1\ndevice = 2\n[[region]]\nbar = 9\nsize = 16\n",
    )
    .unwrap();
    let out = devfd(&[
        "build",
        desc.to_str().unwrap(),
        "-o",
        tmp("x.bin").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("PCI BAR number 9 is above 5"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn flat_text_json_and_raw() {
    let out = devfd(&["flat", &golden("nvme-like.bin")]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert_eq!(s.lines().count(), 1 + 6, "{s}");
    assert!(s.contains("irq/msix"), "{s}");
    let out = devfd(&["flat", "--json", &golden("nvme-like.bin")]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
    assert_eq!(v[4]["count"], 65);
    let out = devfd(&["flat", "--raw", &golden("nvme-like.bin")]);
    assert_eq!(out.stdout.len(), 6 * 64);
    // Entry 0 is region 0 at 0x1000: kind 1, index 0.
    assert_eq!(&out.stdout[0..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        u64::from_le_bytes(out.stdout[16..24].try_into().unwrap()),
        0x1000
    );
}

#[test]
fn man_page_and_completions_come_from_the_clap_definition() {
    let out = devfd(&["man"]);
    assert!(out.status.success());
    let man = text(&out.stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH devfd"), "{man}");
    for sub in ["inspect", "lint", "build", "flat"] {
        assert!(man.contains(sub), "man page lacks {sub}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = devfd(&["completions", shell]);
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("inspect"));
    }
    let out = devfd(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}
