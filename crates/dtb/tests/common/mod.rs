//! Test helpers: real DTBs dumped by QEMU, `dtc` both ways, and a parser for the DTS text
//! `dtc -I dtb -O dts` prints, so the tests can compare the crate's view with dtc's.
//!
//! QEMU and dtc are required (`scripts/install-deps` installs them); when one is missing the
//! tests fail and say what to install. They never skip.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A directory for this test process.
pub fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("devfd-dtb-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn need(program: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is missing: these tests need it (Debian package {package}; run scripts/install-deps as root)"
    );
}

/// The machines whose device trees the tests use: (name, QEMU binary, arguments).
pub const MACHINES: &[(&str, &str, &[&str])] = &[
    (
        "aarch64-virt",
        "qemu-system-aarch64",
        &["-machine", "virt", "-cpu", "cortex-a57"],
    ),
    (
        "aarch64-virt-gicv3",
        "qemu-system-aarch64",
        &["-machine", "virt,gic-version=3", "-cpu", "cortex-a57"],
    ),
    ("riscv64-virt", "qemu-system-riscv64", &["-machine", "virt"]),
];

/// The DTB QEMU generates for `machine` (one of [`MACHINES`]), dumped once per test process.
pub fn qemu_dtb(machine: &str) -> Vec<u8> {
    let (name, qemu, args) = MACHINES
        .iter()
        .find(|m| m.0 == machine)
        .unwrap_or_else(|| panic!("unknown machine {machine}"));
    let package = if qemu.contains("aarch64") {
        "qemu-system-arm"
    } else {
        "qemu-system-misc"
    };
    need(qemu, package);
    let path = scratch().join(format!("{name}.dtb"));
    if !path.exists() {
        // Tests run in parallel: dump to a file of this thread's, then rename into place.
        let tmp = scratch().join(format!("{name}.{:?}.tmp", std::thread::current().id()));
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // `-machine virt` is followed by `,dumpdtb=FILE`.
        let machine_at = args.iter().position(|a| a == "-machine").unwrap() + 1;
        args[machine_at] = format!("{},dumpdtb={}", args[machine_at], tmp.display());
        let out = Command::new(qemu)
            .args(&args)
            .args(["-nographic", "-net", "none"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{qemu} does not run: {e}"));
        assert!(
            tmp.exists(),
            "{qemu} did not dump a DTB ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    std::fs::read(&path).unwrap()
}

/// Where QEMU's DTB for `machine` is, dumping it first.
pub fn qemu_dtb_path(machine: &str) -> PathBuf {
    qemu_dtb(machine);
    scratch().join(format!("{machine}.dtb"))
}

/// Runs dtc on `input` (passed as a file: dtc stops reading a blob at its totalsize).
fn dtc(args: &[&str], input: &[u8]) -> Vec<u8> {
    need("dtc", "device-tree-compiler");
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = scratch().join(format!("dtc-input-{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&file, input).unwrap();
    let out = Command::new("dtc")
        .args(args)
        .arg(&file)
        .output()
        .expect("dtc runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "dtc {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `dtc -I dtb -O dts` of a blob.
pub fn dtb_to_dts(dtb: &[u8]) -> String {
    String::from_utf8(dtc(&["-q", "-I", "dtb", "-O", "dts"], dtb)).unwrap()
}

/// Compiles DTS source with `dtc -I dts -O dtb` (warnings off: some tests are odd on purpose).
pub fn compile(dts: &str) -> Vec<u8> {
    dtc(&["-q", "-I", "dts", "-O", "dtb"], dts.as_bytes())
}

/// A node as dtc prints it: its properties' raw bytes, by name, in order.
#[derive(Debug, Default, Clone)]
pub struct DtsNode {
    pub props: Vec<(String, Vec<u8>)>,
}

impl DtsNode {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn cell(&self, name: &str) -> Option<u32> {
        let v = self.get(name)?;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }

    pub fn cells(&self, name: &str) -> Option<Vec<u32>> {
        let v = self.get(name)?;
        assert!(v.len() % 4 == 0, "{name}: {v:?}");
        Some(
            v.chunks(4)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
                .collect(),
        )
    }

    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        let v = self.get(name)?;
        let v = v.strip_suffix(&[0]).unwrap_or(v);
        Some(
            v.split(|&b| b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        )
    }
}

/// The DTS text dtc printed: every node by path, plus the reservation entries.
#[derive(Debug, Default)]
pub struct Dts {
    pub nodes: BTreeMap<String, DtsNode>,
    /// Paths in the order dtc printed them.
    pub order: Vec<String>,
    pub reserved: Vec<(u64, u64)>,
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        let c = b[i];
        i += 1;
        out.push(match c {
            b'0' => 0,
            b'a' => 7,
            b'b' => 8,
            b't' => 9,
            b'n' => 10,
            b'v' => 11,
            b'f' => 12,
            b'r' => 13,
            b'x' => {
                let v = u8::from_str_radix(&s[i..i + 2], 16).unwrap();
                i += 2;
                v
            }
            other => other,
        });
    }
    out
}

fn number(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

/// Parses one property value as dtc prints it: `<cells>`, `"strings"`, `[bytes]`.
fn value(text: &str) -> Vec<u8> {
    let text = text.trim();
    if let Some(cells) = text.strip_prefix('<') {
        let cells = cells.strip_suffix('>').unwrap();
        return cells
            .split_whitespace()
            .flat_map(|c| (number(c) as u32).to_be_bytes())
            .collect();
    }
    if let Some(bytes) = text.strip_prefix('[') {
        let bytes = bytes.strip_suffix(']').unwrap();
        return bytes
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
    }
    if let Some(s) = text.strip_prefix('"') {
        let mut v = unescape(s.strip_suffix('"').unwrap());
        v.push(0);
        return v;
    }
    panic!("dtc printed a value this parser does not know: {text}");
}

/// Parses `dtc -I dtb -O dts` output.
pub fn parse_dts(text: &str) -> Dts {
    let mut dts = Dts::default();
    let mut stack: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line == "/dts-v1/;" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("/memreserve/") {
            let parts: Vec<&str> = rest
                .trim()
                .trim_end_matches(';')
                .split_whitespace()
                .collect();
            dts.reserved.push((number(parts[0]), number(parts[1])));
            continue;
        }
        if line == "};" {
            stack.pop();
            continue;
        }
        if let Some(head) = line.strip_suffix(" {") {
            // An optional label first: `label: name {`.
            let name = head.rsplit(": ").next().unwrap();
            let path = match stack.last() {
                None => "/".to_string(),
                Some(p) if p == "/" => format!("/{name}"),
                Some(p) => format!("{p}/{name}"),
            };
            dts.order.push(path.clone());
            dts.nodes.insert(path.clone(), DtsNode::default());
            stack.push(path);
            continue;
        }
        let line = line
            .strip_suffix(';')
            .unwrap_or_else(|| panic!("line {raw:?}"));
        let (name, v) = match line.split_once(" = ") {
            Some((n, v)) => (n, value(v)),
            None => (line, Vec::new()),
        };
        let node = stack.last().expect("property inside a node");
        dts.nodes
            .get_mut(node)
            .unwrap()
            .props
            .push((name.to_string(), v));
    }
    assert!(stack.is_empty(), "unbalanced dtc output");
    dts
}

/// Runs dtc on a blob and parses what it prints.
pub fn dtc_view(dtb: &[u8]) -> Dts {
    parse_dts(&dtb_to_dts(dtb))
}

/// Writes `bytes` to a fresh file in the scratch directory and returns its path.
pub fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The parent path of a path (`/` for top-level nodes).
pub fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "/",
    }
}

pub fn root_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
