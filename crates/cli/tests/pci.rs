//! `devfd ls --pci`, `devfd info --pci` and `devfd serve --pci` on this machine's real PCI
//! functions, checked against `lspci -vv -nn` (pciutils) and sysfs, and on fake sysfs trees
//! (`DEVFD_SYSFS_PCI`) for what must not be tried on real hardware.
//!
//! **The real functions are this machine's disk and network.** Against them these tests only
//! read (`config`, `resource`, `irq`, the `driver` link, and config space through a device
//! file served read-only). They never write config space, never open, map, read or write a
//! BAR (`resourceN`), never bind or unbind a driver. `--allow-write` and `--allow-bar-access`
//! are given for a real function only when a kernel driver is bound to it, to check that
//! serve refuses them (EBUSY) before it opens anything for writing. Writes and BAR access
//! themselves run on fake trees of ordinary files.
//!
//! Needs root (config space past 64 bytes, FUSE mounts), `/dev/fuse` and `lspci`; missing
//! pieces fail the tests loudly rather than skipping them (`scripts/install-deps`).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use devfd_client::DeviceFile;
use serde_json::Value;

const SYSFS: &str = "/sys/bus/pci/devices";
const STARTUP: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Helpers: commands, a served mount.

/// `devfd ARGS…` to completion; killed (and the test failed) after 20 s, so a server that
/// starts where it should have refused cannot hang the test.
fn devfd(args: &[&str], env: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_devfd"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(root) = env {
        c.env("DEVFD_SYSFS_PCI", root);
    }
    let mut child = c.spawn().expect("devfd runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let out = child.wait_with_output().unwrap();
            panic!("devfd {args:?} still running after 20 s: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn devfd_ok(args: &[&str], env: Option<&Path>) -> String {
    let out = devfd(args, env);
    assert!(
        out.status.success(),
        "devfd {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn fresh_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(format!(
        "/tmp/devfd-pci-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    unmount(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn is_mounted(dir: &Path) -> bool {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(dir))
}

fn unmount(dir: &Path) {
    if is_mounted(dir) {
        let _ = Command::new("umount").arg("-l").arg(dir).status();
    }
}

/// A `devfd serve` child; dropping it stops the server and removes the mount point.
struct Served {
    child: Child,
    dir: PathBuf,
    out: PathBuf,
    err: PathBuf,
}

impl Served {
    fn start(name: &str, args: &[&str], env: Option<&Path>, expect: &[&str]) -> Served {
        let dir = fresh_dir(name);
        let out = dir.with_extension("out");
        let err = dir.with_extension("err");
        let mut c = Command::new(env!("CARGO_BIN_EXE_devfd"));
        c.arg("serve").arg("--mount").arg(&dir).args(args);
        if let Some(root) = env {
            c.env("DEVFD_SYSFS_PCI", root);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("devfd serve starts");
        let mut s = Served {
            child,
            dir,
            out,
            err,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("devfd serve exited with {status}:\n{}", s.output());
            }
            let banner = std::fs::read_to_string(&s.out).unwrap_or_default();
            if banner.contains("devfd: serving")
                && is_mounted(&s.dir)
                && expect.iter().all(|f| s.dir.join(f).exists())
            {
                return s;
            }
            assert!(Instant::now() < deadline, "not served:\n{}", s.output());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        unmount(&self.dir);
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
    }
}

// ---------------------------------------------------------------------------------------------
// What sysfs and lspci say, parsed independently of devfd.

fn sysfs_hex(dir: &Path, file: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap()
}

fn sysfs_driver(dir: &Path) -> Option<String> {
    std::fs::read_link(dir.join("driver"))
        .ok()
        .map(|t| t.file_name().unwrap().to_string_lossy().into_owned())
}

/// Sizes of the resource lines 0–6 (end - start + 1, 0 when absent).
fn sysfs_resource_sizes(dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(dir.join("resource"))
        .unwrap()
        .lines()
        .take(7)
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .map(|f| u64::from_str_radix(&f[2..], 16).unwrap())
                .collect();
            if v[0] == 0 && v[1] == 0 {
                0
            } else {
                v[1] - v[0] + 1
            }
        })
        .collect()
}

/// One function as `lspci -vv -nn -D` prints it.
#[derive(Debug, Default)]
struct Lspci {
    class: u32,
    vendor: u32,
    device: u32,
    revision: Option<u32>,
    subsystem: Option<(u32, u32)>,
    /// `(bar, kind, prefetchable, size)`.
    regions: Vec<(u64, String, bool, u64)>,
    rom_size: Option<u64>,
    /// `(offset, extended, text after "] ")`.
    capabilities: Vec<(u64, bool, String)>,
    /// Lines after a capability header (MSI-X table, …), keyed by the capability's offset.
    details: BTreeMap<u64, Vec<String>>,
    driver: Option<String>,
    pin: Option<char>,
    irq: Option<u64>,
}

/// `[size=512K]` → 524288.
fn lspci_size(line: &str) -> u64 {
    let s = line
        .split("[size=")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().unwrap();
    n << match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        u => panic!("unit {u} in {line}"),
    }
}

/// The last `[xxxx:yyyy]` of a line.
fn id_pair(line: &str) -> (u32, u32) {
    let at = line.rfind('[').unwrap();
    let inner = &line[at + 1..line[at..].find(']').unwrap() + at];
    let (a, b) = inner.split_once(':').unwrap();
    (
        u32::from_str_radix(a, 16).unwrap(),
        u32::from_str_radix(b, 16).unwrap(),
    )
}

fn run_lspci() -> BTreeMap<String, Lspci> {
    let out = Command::new("lspci")
        .args(["-vv", "-nn", "-D"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lspci ({e}): install pciutils (apt-get install pciutils)")
        });
    assert!(out.status.success(), "lspci failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains("<access denied>"),
        "lspci could not read config space: run the tests as root"
    );
    let mut all = BTreeMap::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let head = lines.next().unwrap();
        let (bdf, rest) = head.split_once(' ').unwrap();
        let mut f = Lspci::default();
        // `Ethernet controller [0200]: Red Hat, Inc. ... [1af4:1041] (rev 01)`
        let class_at = rest.find("]: ").unwrap();
        f.class = u32::from_str_radix(&rest[class_at - 4..class_at], 16).unwrap();
        let ids_part = rest.split(" (rev ").next().unwrap();
        let ids_part = ids_part.split(" (prog-if").next().unwrap();
        (f.vendor, f.device) = id_pair(ids_part);
        f.revision = rest
            .split(" (rev ")
            .nth(1)
            .map(|r| u32::from_str_radix(&r[..2], 16).unwrap());
        let mut current_cap: Option<u64> = None;
        for line in lines {
            let t = line.trim();
            if let Some(s) = t.strip_prefix("Subsystem: ") {
                f.subsystem = Some(id_pair(s));
            } else if let Some(r) = t.strip_prefix("Region ") {
                let bar: u64 = r.split(':').next().unwrap().parse().unwrap();
                let (kind, pf) = if r.contains("I/O ports") {
                    ("io".to_owned(), false)
                } else {
                    let k = if r.contains("64-bit") {
                        "mem64"
                    } else {
                        "mem32"
                    };
                    (k.to_owned(), r.contains(", prefetchable"))
                };
                f.regions.push((bar, kind, pf, lspci_size(r)));
            } else if t.starts_with("Expansion ROM") {
                f.rom_size = Some(lspci_size(t));
            } else if let Some(c) = t.strip_prefix("Capabilities: [") {
                let (inside, after) = c.split_once("] ").unwrap();
                let offset = u64::from_str_radix(inside.split(' ').next().unwrap(), 16).unwrap();
                f.capabilities
                    .push((offset, inside.contains(" v"), after.to_owned()));
                current_cap = Some(offset);
            } else if let Some(d) = t.strip_prefix("Kernel driver in use: ") {
                f.driver = Some(d.to_owned());
                current_cap = None;
            } else if let Some(i) = t.strip_prefix("Interrupt: pin ") {
                f.pin = i.chars().next();
                f.irq = i.split("IRQ ").nth(1).and_then(|n| n.trim().parse().ok());
            } else if let Some(cap) = current_cap {
                f.details.entry(cap).or_default().push(t.to_owned());
            }
        }
        all.insert(bdf.to_owned(), f);
    }
    all
}

/// `Count=5` → 5; `Count=1/4` → 4 (capable).
fn lspci_count(text: &str) -> u64 {
    let c = text.split("Count=").nth(1).unwrap();
    let c = c.split(' ').next().unwrap();
    c.rsplit('/').next().unwrap().parse().unwrap()
}

fn machine_functions() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(SYSFS)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no PCI functions in {SYSFS}");
    v
}

// ---------------------------------------------------------------------------------------------
// This machine.

#[test]
fn ls_pci_json_agrees_with_lspci_and_sysfs_for_every_function() {
    assert!(
        is_root(),
        "run as root: sysfs gives others 64 bytes of config space"
    );
    let json: Value = serde_json::from_str(&devfd_ok(&["ls", "--pci", "--json"], None)).unwrap();
    let list = json.as_array().unwrap();
    let lspci = run_lspci();
    let names = machine_functions();
    let bdfs: Vec<&str> = list.iter().map(|f| f["bdf"].as_str().unwrap()).collect();
    assert_eq!(bdfs, names, "every function, in order");
    let lspci_names: Vec<&String> = lspci.keys().collect();
    assert_eq!(
        lspci_names,
        names.iter().collect::<Vec<_>>(),
        "lspci lists the same"
    );
    // What was compared, so that a parser that finds nothing cannot pass.
    let (mut bars, mut caps_seen, mut tables, mut drivers) = (0, 0, 0, 0);
    for f in list {
        let bdf = f["bdf"].as_str().unwrap();
        assert!(f.get("error").is_none(), "{bdf}: {f}");
        let l = &lspci[bdf];
        let dir = Path::new(SYSFS).join(bdf);
        let num = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{bdf}: {k} in {f}"));
        // Identity: devfd = sysfs = lspci.
        for (key, file) in [
            ("vendor", "vendor"),
            ("device", "device"),
            ("subsystem_vendor", "subsystem_vendor"),
            ("subsystem_device", "subsystem_device"),
            ("class", "class"),
            ("revision", "revision"),
        ] {
            assert_eq!(
                num(key),
                sysfs_hex(&dir, file),
                "{bdf}: {key} vs sysfs {file}"
            );
        }
        assert_eq!(
            (num("vendor"), num("device")),
            (l.vendor.into(), l.device.into())
        );
        assert_eq!(num("class") >> 8, u64::from(l.class), "{bdf}: class");
        assert_eq!(num("revision"), u64::from(l.revision.unwrap_or(0)), "{bdf}");
        if let Some((sv, sd)) = l.subsystem {
            assert_eq!(
                (num("subsystem_vendor"), num("subsystem_device")),
                (sv.into(), sd.into()),
                "{bdf}: subsystem"
            );
        }
        // Driver: devfd = sysfs link = lspci.
        let driver = f["driver"].as_str().map(str::to_owned);
        assert_eq!(driver, sysfs_driver(&dir), "{bdf}: driver vs sysfs");
        assert_eq!(driver, l.driver, "{bdf}: driver vs lspci");
        // BARs: kinds and sizes as lspci shows them, sizes as sysfs resource has them.
        let regions: Vec<(u64, String, bool, u64)> = f["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["bar"].as_u64().unwrap(),
                    r["kind"].as_str().unwrap().to_owned(),
                    r["prefetchable"].as_bool().unwrap(),
                    r["size"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(regions, l.regions, "{bdf}: BARs vs lspci");
        bars += regions.len();
        caps_seen += l.capabilities.len();
        drivers += usize::from(driver.is_some());
        let sizes = sysfs_resource_sizes(&dir);
        for (bar, _, _, size) in &regions {
            assert_eq!(
                *size, sizes[*bar as usize],
                "{bdf}: BAR {bar} vs sysfs resource"
            );
        }
        let nonzero: Vec<usize> = (0..6).filter(|&i| sizes[i] != 0).collect();
        let ours: Vec<usize> = regions.iter().map(|r| r.0 as usize).collect();
        assert_eq!(ours, nonzero, "{bdf}: every BAR sysfs has");
        assert_eq!(f["rom_size"].as_u64(), l.rom_size, "{bdf}: ROM vs lspci");
        assert_eq!(
            f["rom_size"].as_u64().unwrap_or(0),
            sizes.get(6).copied().unwrap_or(0),
            "{bdf}: ROM vs sysfs"
        );
        // Config space size: the file's.
        let config_len = std::fs::metadata(dir.join("config")).unwrap().len();
        assert_eq!(num("config_size"), config_len, "{bdf}: config size");
        // Capabilities: the same list, offsets and kinds.
        let caps: Vec<(u64, bool, u64)> = f["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["offset"].as_u64().unwrap(),
                    c["extended"].as_bool().unwrap(),
                    c["id"].as_u64().unwrap(),
                )
            })
            .collect();
        let theirs: Vec<(u64, bool)> = l.capabilities.iter().map(|c| (c.0, c.1)).collect();
        let ours: Vec<(u64, bool)> = caps.iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(ours, theirs, "{bdf}: capability list vs lspci");
        for ((offset, extended, id), (_, _, text)) in caps.iter().zip(&l.capabilities) {
            let prefix = match (extended, id) {
                (false, 0x01) => "Power Management",
                (false, 0x05) => "MSI:",
                (false, 0x09) => "Vendor Specific",
                (false, 0x10) => "Express",
                (false, 0x11) => "MSI-X:",
                (true, 0x01) => "Advanced Error Reporting",
                _ => continue,
            };
            assert!(
                text.starts_with(prefix),
                "{bdf}: [{offset:x}] {text} vs id {id:#x}"
            );
        }
        // Interrupts: INTx pin and IRQ, MSI and MSI-X counts and tables.
        let irqs = f["interrupts"].as_array().unwrap();
        let irq = |kind: &str| irqs.iter().find(|i| i["kind"] == kind);
        match (irq("intx"), l.pin) {
            (Some(i), Some(pin)) => {
                assert_eq!(i["pin"].as_str().unwrap(), pin.to_string(), "{bdf}: pin");
                assert_eq!(i["irq"].as_u64(), l.irq, "{bdf}: IRQ");
            }
            (None, None) => {}
            other => panic!("{bdf}: INTx: {other:?}"),
        }
        for (offset, _, text) in &l.capabilities {
            if text.starts_with("MSI-X:") {
                let m = irq("msix").unwrap_or_else(|| panic!("{bdf}: no msix in {f}"));
                assert_eq!(m["count"].as_u64().unwrap(), lspci_count(text), "{bdf}");
                assert_eq!(m["offset"].as_u64().unwrap(), *offset);
                let details = l.details[offset].join("\n");
                let table = format!(
                    "Vector table: BAR={} offset={:08x}",
                    m["table_bar"],
                    m["table_offset"].as_u64().unwrap()
                );
                let pba = format!(
                    "PBA: BAR={} offset={:08x}",
                    m["pba_bar"],
                    m["pba_offset"].as_u64().unwrap()
                );
                assert!(details.contains(&table), "{bdf}: {table} in {details}");
                assert!(details.contains(&pba), "{bdf}: {pba} in {details}");
                tables += 1;
            } else if text.starts_with("MSI:") {
                let m = irq("msi").unwrap_or_else(|| panic!("{bdf}: no msi in {f}"));
                assert_eq!(m["count"].as_u64().unwrap(), lspci_count(text), "{bdf}");
                assert_eq!(m["is_64bit"].as_bool().unwrap(), text.contains("64bit+"));
                assert_eq!(
                    m["per_vector_mask"].as_bool().unwrap(),
                    text.contains("Maskable+")
                );
            }
        }
        assert_eq!(
            irq("msix").is_some(),
            l.capabilities.iter().any(|c| c.2.starts_with("MSI-X:")),
            "{bdf}: MSI-X"
        );
        assert_eq!(
            irq("msi").is_some(),
            l.capabilities.iter().any(|c| c.2.starts_with("MSI:")),
            "{bdf}: MSI"
        );
    }
    eprintln!(
        "compared {} functions: {bars} BARs, {caps_seen} capabilities, {tables} MSI-X tables, \
         {drivers} drivers",
        list.len()
    );
    let with_bars = lspci.values().filter(|l| !l.regions.is_empty()).count();
    let with_caps = lspci
        .values()
        .filter(|l| !l.capabilities.is_empty())
        .count();
    assert_eq!(bars, lspci.values().map(|l| l.regions.len()).sum::<usize>());
    assert!(with_bars == 0 || bars > 0, "no BAR compared");
    assert!(with_caps == 0 || caps_seen > 0, "no capability compared");
}

#[test]
fn ls_pci_prints_one_line_per_function_and_info_the_description() {
    let text = devfd_ok(&["ls", "--pci"], None);
    let names = machine_functions();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), names.len(), "{text}");
    for (line, bdf) in lines.iter().zip(&names) {
        let dir = Path::new(SYSFS).join(bdf);
        let ids = format!(
            "{:04x}:{:04x}",
            sysfs_hex(&dir, "vendor"),
            sysfs_hex(&dir, "device")
        );
        let class = format!("[{:04x}]", sysfs_hex(&dir, "class") >> 8);
        let driver = sysfs_driver(&dir).unwrap_or("-".into());
        assert!(line.starts_with(bdf.as_str()), "{line}");
        for part in [&ids, &class, &format!("driver {driver}")] {
            assert!(line.contains(part.as_str()), "{line} lacks {part}");
        }
    }
    for bdf in &names {
        let info = devfd_ok(&["info", "--pci", bdf], None);
        assert!(info.contains("devfd 1.0 pci device"), "{info}");
        assert!(info.contains("config"), "{info}");
        let json: Value =
            serde_json::from_str(&devfd_ok(&["info", "--pci", bdf, "--json"], None)).unwrap();
        assert_eq!(json["bus"], "pci");
        assert_eq!(json["pci"]["bdf"], bdf.as_str());
        assert_eq!(json["device"]["label"], bdf.as_str());
    }
    let out = devfd(&["info", "--pci", "00:1f.9"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PCI address"));
}

/// Reads config space of every function through `devfd serve --pci` and compares it with
/// sysfs `config`, byte for byte.
#[test]
fn config_space_through_serve_equals_sysfs_byte_for_byte() {
    assert!(is_root(), "run as root (full config space and FUSE mounts)");
    let names = machine_functions();
    let list = names.join(",");
    let files: Vec<String> = (0..names.len()).map(|n| format!("pci{n}")).collect();
    let expect: Vec<&str> = files.iter().map(String::as_str).collect();
    let s = Served::start("config", &["--pci", &list], None, &expect);
    for (file, bdf) in files.iter().zip(&names) {
        let dev = DeviceFile::open_read_only(s.path(file)).unwrap();
        assert_eq!(dev.description().device().label(), Some(bdf.as_str()));
        let region = dev.pci_config().unwrap();
        let sysfs_path = Path::new(SYSFS).join(bdf).join("config");
        // A live function's status bits may change between two reads: three tries.
        let mut last = None;
        for _ in 0..3 {
            let theirs = std::fs::read(&sysfs_path).unwrap();
            let mut ours = vec![0u8; region.size as usize];
            dev.read_bulk(region, 0, &mut ours).unwrap();
            if ours == theirs {
                last = None;
                break;
            }
            let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
            last = Some(format!(
                "{bdf}: {} bytes served, {} in sysfs, first difference at {first:?}",
                ours.len(),
                theirs.len()
            ));
        }
        assert_eq!(last, None);
        // Read-only: a write never reaches the device (EPERM from the description's flags).
        let config_offset = dev.description().pci_config().unwrap().offset;
        let raw = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(s.path(file))
            .unwrap();
        let err = raw.write_at(&[0], config_offset + 0x3c).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{bdf}");
        // BARs: described, no access at all.
        for r in dev.description().regions() {
            if let devfd_format::Location::PciBar { .. } = r.location() {
                assert_eq!(r.flags, 0, "{bdf}: BAR {}", r.index);
                let mut b = [0u8; 4];
                let err = raw.read_at(&mut b, r.offset).unwrap_err();
                assert_eq!(
                    err.raw_os_error(),
                    Some(libc::EPERM),
                    "{bdf}: BAR {}",
                    r.index
                );
            }
        }
    }
    let banner = s.output();
    assert!(banner.contains("delivery needs VFIO"), "{banner}");
}

/// `--allow-write` and `--allow-bar-access` for a function a driver is bound to: serve
/// refuses before opening anything for writing, naming the driver.
#[test]
fn serve_refuses_writes_and_bar_access_of_bound_functions_with_ebusy() {
    assert!(is_root());
    let bound: Vec<(String, String)> = machine_functions()
        .into_iter()
        .filter_map(|bdf| sysfs_driver(&Path::new(SYSFS).join(&bdf)).map(|d| (bdf, d)))
        .collect();
    assert!(
        !bound.is_empty(),
        "this machine has no function with a driver bound"
    );
    for (bdf, driver) in &bound {
        for flag in ["--allow-write", "--allow-bar-access"] {
            let dir = fresh_dir("refuse");
            let out = devfd(
                &[
                    "serve",
                    "--mount",
                    dir.to_str().unwrap(),
                    "--pci",
                    bdf,
                    flag,
                ],
                None,
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{bdf} {flag}: {err}");
            assert!(!is_mounted(&dir));
            let _ = std::fs::remove_dir(&dir);
            assert!(err.contains("EBUSY"), "{err}");
            assert!(
                err.contains(&format!("bound to the kernel driver {driver}")),
                "{err}"
            );
            assert!(err.contains(flag), "{err}");
        }
    }
    // The flags need --pci.
    let out = devfd(&["serve", "--allow-write"], None);
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// Fake trees: writes and BAR access, which must not be tried on this machine's devices.

/// A fake function without a driver: BAR0 32-bit 4 KiB (resource0 an ordinary file), INTA,
/// MSI-X with 2 entries.
fn fake_tree(name: &str) -> (PathBuf, PathBuf) {
    let root = fresh_dir(name);
    let dir = root.join("0000:01:00.0");
    std::fs::create_dir(&dir).unwrap();
    let mut c = vec![0u8; 256];
    c[0..4].copy_from_slice(&[0x34, 0x12, 0xe8, 0x11]);
    c[6] = 0x10;
    c[8] = 0x10;
    c[9..12].copy_from_slice(&[0x00, 0xff, 0x00]);
    c[0x10..0x14].copy_from_slice(&0xfe00_0000u32.to_le_bytes());
    c[0x2c..0x30].copy_from_slice(&[0xf4, 0x1a, 0x00, 0x11]);
    c[0x34] = 0x40;
    c[0x3d] = 1;
    c[0x40..0x44].copy_from_slice(&[0x11, 0x00, 0x01, 0x00]);
    c[0x44..0x48].copy_from_slice(&0x800u32.to_le_bytes());
    c[0x48..0x4c].copy_from_slice(&0xc00u32.to_le_bytes());
    std::fs::write(dir.join("config"), &c).unwrap();
    let zeros = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
    let resource = format!(
        "0x00000000fe000000 0x00000000fe000fff 0x0000000000040200\n{}",
        zeros.repeat(6)
    );
    std::fs::write(dir.join("resource"), resource).unwrap();
    std::fs::write(dir.join("irq"), "10\n").unwrap();
    File::create(dir.join("resource0"))
        .unwrap()
        .set_len(4096)
        .unwrap();
    (root, dir)
}

#[test]
fn fake_tree_ls_json_fields() {
    let (root, _dir) = fake_tree("ls");
    let json: Value =
        serde_json::from_str(&devfd_ok(&["ls", "--pci", "--json"], Some(&root))).unwrap();
    let f = &json[0];
    assert_eq!(f["bdf"], "0000:01:00.0");
    assert_eq!(
        (f["vendor"].as_u64(), f["device"].as_u64()),
        (Some(0x1234), Some(0x11e8))
    );
    assert_eq!(f["subsystem_vendor"].as_u64(), Some(0x1af4));
    assert_eq!(f["subsystem_device"].as_u64(), Some(0x1100));
    assert_eq!(
        (f["class"].as_u64(), f["revision"].as_u64()),
        (Some(0xff00), Some(0x10))
    );
    assert_eq!(f["driver"], Value::Null);
    assert_eq!(
        f["regions"][0],
        serde_json::json!({"bar": 0, "kind": "mem32", "prefetchable": false, "size": 4096,
                           "address": 0xfe00_0000u64})
    );
    assert_eq!(f["rom_size"], Value::Null);
    assert_eq!(f["config_size"].as_u64(), Some(256));
    let irqs: Vec<(String, u64)> = f["interrupts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(irqs, [("intx".to_owned(), 1), ("msix".to_owned(), 2)]);
    assert_eq!(f["capabilities"][0]["name"], "MSI-X");
    let text = devfd_ok(&["ls", "--pci"], Some(&root));
    assert_eq!(
        text,
        "0000:01:00.0 Unclassified device [00ff]: 1234:11e8 (rev 10)  driver -  bars \
         [0:mem32:4KiB]  irqs [intx*1 msix*2]\n"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn fake_tree_serve_allows_what_the_flags_allow_and_answers_ebusy_once_a_driver_binds() {
    assert!(is_root());
    let (root, dir) = fake_tree("serve");
    let s = Served::start(
        "fake-serve",
        &["--pci", "01:00.0", "--allow-write", "--allow-bar-access"],
        Some(&root),
        &["pci0"],
    );
    let dev = DeviceFile::open(s.path("pci0")).unwrap();
    let config = dev.pci_config().unwrap();
    let bar0 = dev.pci_bar(0).unwrap();
    dev.write_u8(config, 0x3c, 7).unwrap();
    assert_eq!(std::fs::read(dir.join("config")).unwrap()[0x3c], 7);
    dev.write_u32(bar0, 0x20, 0xdead_beef).unwrap();
    assert_eq!(dev.read_u32(bar0, 0x20).unwrap(), 0xdead_beef);
    let mut b = [0u8; 4];
    File::open(dir.join("resource0"))
        .unwrap()
        .read_exact_at(&mut b, 0x20)
        .unwrap();
    assert_eq!(u32::from_le_bytes(b), 0xdead_beef);
    // A driver binds: BAR access and config writes answer EBUSY, config reads still work.
    std::os::unix::fs::symlink("../../bus/pci/drivers/fake", dir.join("driver")).unwrap();
    let busy = |e: devfd_client::ClientError| e.errno();
    assert_eq!(
        dev.write_u8(config, 0x3c, 9).map_err(busy),
        Err(Some(libc::EBUSY))
    );
    assert_eq!(
        dev.read_u32(bar0, 0x20).map_err(busy),
        Err(Some(libc::EBUSY))
    );
    assert_eq!(dev.read_u8(config, 0x3c).unwrap(), 7);
    assert!(
        s.output().contains("kernel driver fake is bound now"),
        "{}",
        s.output()
    );
    drop(s);
    // Serving a bound function with a flag is refused outright.
    let out = devfd(
        &[
            "serve",
            "--mount",
            "/nonexistent",
            "--pci",
            "01:00.0",
            "--allow-write",
        ],
        Some(&root),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("EBUSY") && err.contains("kernel driver fake"),
        "{err}"
    );
    // Without flags: served, config read-only, BARs closed; the banner says why.
    std::fs::remove_file(dir.join("driver")).unwrap();
    let s = Served::start("fake-ro", &["--pci", "01:00.0"], Some(&root), &["pci0"]);
    let dev = DeviceFile::open(s.path("pci0")).unwrap();
    let config = dev.pci_config().unwrap();
    let e = dev.write_u8(config, 0x3c, 1).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EPERM));
    assert!(dev.read_u32(dev.pci_bar(0).unwrap(), 0).is_err());
    assert_eq!(
        dev.region_label(7),
        Some("config: read-only (needs --allow-write)")
    );
    let banner = s.output();
    assert!(
        banner.contains("serve with --allow-write to allow"),
        "{banner}"
    );
    assert!(
        banner.contains("serve with --allow-bar-access to allow"),
        "{banner}"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&root);
}

/// Without CAP_SYS_ADMIN sysfs gives 64 bytes of config space: `ls` still lists identity and
/// BARs and says what is missing; `info` refuses and says why.
#[test]
fn without_root_ls_says_what_is_missing_and_info_refuses() {
    assert!(is_root(), "the test drops to nobody from root");
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_devfd"))
            .args(args)
            .output()
            .expect("setpriv (util-linux) runs")
    };
    let out = as_nobody(&["ls", "--pci"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), machine_functions().len(), "{text}");
    let with_caps: Vec<String> = machine_functions()
        .into_iter()
        .filter(|b| {
            let c = std::fs::read(Path::new(SYSFS).join(b).join("config")).unwrap();
            c[6] & 0x10 != 0
        })
        .collect();
    assert_eq!(
        text.matches("needs root").count(),
        with_caps.len(),
        "{text}"
    );
    let bdf = with_caps.first().expect("a function with capabilities");
    let out = as_nobody(&["info", "--pci", bdf]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_SYS_ADMIN") && err.contains("run as root"),
        "{err}"
    );
}
