//! `devfd serve` end to end: the real binary serves the demo devices on a FUSE mount of its
//! own, and each test uses the files as a client would — through `devfd_client` and through
//! the CLI subcommands — then stops the server (SIGTERM; SIGKILL and `umount -l` if needed).
//!
//! Needs root, `/dev/fuse`, `unshare` (util-linux), FUSE passthrough in the kernel (mmap
//! of `mem0.r0`), `lspci` and `setpriv` (`scripts/install-deps`). Missing pieces fail the tests
//! loudly rather than skipping them.
//!
//! Every test mounts its own directory `/tmp/devfd-live-<pid>-<name>` (mode 0755, so the
//! permission tests can reach it as `nobody`) and waits for readiness by polling with a
//! deadline. Fixed sleeps appear only where time itself is under test (the RTC's seconds).

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use devfd_client::{ClientError, DeviceFile};

/// How long a server may take to mount, a CLI command to run, a device to answer.
const STARTUP: Duration = Duration::from_secs(15);
const COMMAND: Duration = Duration::from_secs(20);
const DEVICE: Duration = Duration::from_secs(5);
/// How long a test waits for something that must *not* happen.
const QUIET: Duration = Duration::from_millis(100);

// edu's BAR0 registers (QEMU docs/specs/edu.rst).
const EDU_ID: u64 = 0x00;
const EDU_LIVENESS: u64 = 0x04;
const EDU_FACTORIAL: u64 = 0x08;
const EDU_STATUS: u64 = 0x20;
const EDU_IRQ_STATUS: u64 = 0x24;
const EDU_IRQ_RAISE: u64 = 0x60;
const EDU_IRQ_ACK: u64 = 0x64;
const EDU_STATUS_COMPUTING: u32 = 0x01;
const EDU_STATUS_IRQ_ON_FACTORIAL: u32 = 0x80;
const INTX: u32 = 0;
const MSI: u32 = 1;

// PL031 registers (ARM DDI 0224).
const RTCDR: u64 = 0x00;
const RTCMR: u64 = 0x04;
const RTCLR: u64 = 0x08;
const RTCIMSC: u64 = 0x10;
const RTCRIS: u64 = 0x14;
const RTCMIS: u64 = 0x18;
const RTCICR: u64 = 0x1c;

/// The uid and gid of `nobody`.
const NOBODY: &str = "65534";

// ---------------------------------------------------------------------------------------------
// The harness: a served mount, commands with deadlines, polling.

/// A `devfd serve` child process and its mount directory. Dropping it stops the server
/// (SIGTERM, then SIGKILL), lazily unmounts whatever is left and removes the directory; if the
/// test is failing, the server's output is printed first.
struct Served {
    child: Option<Child>,
    dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Served {
    /// Serves at a fresh directory named after the test; waits until every file of `expect`
    /// is there.
    fn start(name: &str, args: &[&str], expect: &[&str]) -> Served {
        Served::start_at(&fresh_dir(name), args, expect)
    }

    /// Serves at `dir` (which must exist).
    fn start_at(dir: &Path, args: &[&str], expect: &[&str]) -> Served {
        // Numbered, so a server restarted on the same directory keeps its own output.
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let stdout = dir.with_extension(format!("{n}.out"));
        let stderr = dir.with_extension(format!("{n}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_devfd"))
            .arg("serve")
            .arg("--mount")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("devfd serve starts");
        let mut served = Served {
            child: Some(child),
            dir: dir.to_owned(),
            stdout,
            stderr,
        };
        served.wait_ready(expect);
        served
    }

    fn wait_ready(&mut self, expect: &[&str]) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "devfd serve exited with {status} before serving:\n{}",
                    self.output()
                );
            }
            // The server prints its banner once mounted. (The files alone could be those of a
            // dead earlier mount, whose attributes the kernel still has cached.)
            let banner = std::fs::read_to_string(&self.stdout).unwrap_or_default();
            if banner.contains("devfd: serving")
                && is_mounted(&self.dir)
                && expect.iter().all(|f| self.path(f).exists())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not served within {STARTUP:?}:\n{}",
                self.dir.display(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn open(&self, file: &str) -> DeviceFile {
        DeviceFile::open(self.path(file))
            .unwrap_or_else(|e| panic!("opening {file}: {e}\n{}", self.output()))
    }

    /// The server's standard output and standard error so far.
    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- stdout\n{}--- stderr\n{}---",
            read(&self.stdout),
            read(&self.stderr)
        )
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    /// Sends `signal` and reaps the server, SIGKILLing it if it has not exited in time.
    fn stop_with(&mut self, signal: libc::c_int) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let deadline = Instant::now() + DEVICE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!(
                    "devfd serve ignored signal {signal} for {DEVICE:?} ({status}):\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM: the server unmounts and exits 0.
    fn stop(&mut self) {
        let status = self.stop_with(libc::SIGTERM);
        assert!(status.success(), "{status}:\n{}", self.output());
        assert!(!is_mounted(&self.dir), "SIGTERM left the mount");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("devfd serve at {}:\n{}", self.dir.display(), self.output());
        }
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + DEVICE;
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        unmount_leftover(&self.dir);
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// A new empty directory `/tmp/devfd-live-<pid>-<name>`, mode 0755 (traversable by
/// `nobody`), clearing what a crashed earlier run with the same pid may have left.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/devfd-live-{}-{name}", std::process::id()));
    unmount_leftover(&dir);
    let _ = std::fs::remove_dir(&dir);
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Whether a mount sits at `dir` (in this process's mount namespace).
fn is_mounted(dir: &Path) -> bool {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(dir))
}

fn unmount_leftover(dir: &Path) {
    if is_mounted(dir) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(dir)
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a command to completion, killing it (and failing) after [`COMMAND`].
fn run(mut command: Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(COMMAND) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on our child; the waiting thread reaps it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{command:?} did not finish within {COMMAND:?}");
        }
    }
}

/// `devfd ARGS…`.
fn devfd(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_devfd"));
    command.args(args);
    run(command)
}

/// `devfd ARGS…`, which must succeed; its standard output.
fn devfd_ok(args: &[&str]) -> String {
    let out = devfd(args);
    assert!(
        out.status.success(),
        "devfd {args:?}: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A command run as `nobody` (uid and gid 65534, no supplementary groups).
fn as_nobody(program: &str, args: &[&str]) -> Output {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid",
            NOBODY,
            "--regid",
            NOBODY,
            "--clear-groups",
            program,
        ])
        .args(args);
    run(command)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `check` every few milliseconds until it gives a value; fails after `timeout`.
fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `f` on another thread and fails if it has not returned within `timeout` (the thread
/// is left behind): for calls that must not hang.
fn within<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout)
        .unwrap_or_else(|_| panic!("{what}: still blocked after {timeout:?}"))
}

/// Waits for an interrupt that must come.
fn expect_events(dev: &DeviceFile, irq: u32) -> u64 {
    dev.wait_interrupt(irq, Some(DEVICE))
        .unwrap_or_else(|e| panic!("interrupt {irq}: {e}"))
}

/// Asserts that no event arrives on `irq` for [`QUIET`].
fn expect_quiet(dev: &DeviceFile, irq: u32) {
    match dev.wait_interrupt(irq, Some(QUIET)) {
        Err(ClientError::TimedOut) => {}
        other => panic!("interrupt {irq}: expected no event, got {other:?}"),
    }
}

/// Computes `n!` on edu through the client, polling the busy bit with a deadline.
fn edu_compute(dev: &DeviceFile, n: u32) -> u32 {
    let bar0 = dev.pci_bar(0).unwrap();
    dev.write_u32(bar0, EDU_FACTORIAL, n).unwrap();
    eventually("edu factorial", DEVICE, || {
        let status = dev.read_u32(bar0, EDU_STATUS).unwrap();
        (status & EDU_STATUS_COMPUTING == 0).then_some(())
    });
    dev.read_u32(bar0, EDU_FACTORIAL).unwrap()
}

const DEMO: [&str; 4] = ["edu0", "rtc0", "mem0", "mem0.r0"];

// ---------------------------------------------------------------------------------------------
// edu

#[test]
fn edu_registers_and_factorial_interrupt_on_intx() {
    let s = Served::start("edu-intx", &[], &DEMO);
    let dev = s.open("edu0");
    let bar0 = dev.pci_bar(0).expect("edu has BAR0");
    assert_eq!(dev.read_u32(bar0, EDU_ID).unwrap(), 0x0100_00ed);
    for v in [0, 0xdead_beef, 0x1234_5678, u32::MAX] {
        dev.write_u32(bar0, EDU_LIVENESS, v).unwrap();
        assert_eq!(dev.read_u32(bar0, EDU_LIVENESS).unwrap(), !v);
    }

    // Factorial with an interrupt on completion.
    let intx = dev.interrupt(INTX).unwrap();
    assert!(intx.level() && intx.automasked(), "{intx:?}");
    dev.write_u32(bar0, EDU_STATUS, EDU_STATUS_IRQ_ON_FACTORIAL)
        .unwrap();
    assert_eq!(edu_compute(&dev, 5), 120);
    assert_eq!(expect_events(&dev, INTX), 1, "one event per assertion");
    assert_eq!(dev.read_u32(bar0, EDU_IRQ_STATUS).unwrap(), 0x01);
    assert!(dev.is_masked(INTX, 0).unwrap(), "INTx masks itself");
    // Acknowledge at the device, then unmask: the line is low, nothing is redelivered.
    dev.write_u32(bar0, EDU_IRQ_ACK, 0x01).unwrap();
    assert_eq!(dev.read_u32(bar0, EDU_IRQ_STATUS).unwrap(), 0);
    dev.unmask(INTX, 0).unwrap();
    assert!(!dev.is_masked(INTX, 0).unwrap());
    expect_quiet(&dev, INTX);

    // The next completion interrupts again; without interrupt-on-completion none does.
    assert_eq!(edu_compute(&dev, 10), 3_628_800);
    assert_eq!(expect_events(&dev, INTX), 1);
    dev.write_u32(bar0, EDU_IRQ_ACK, 0x01).unwrap();
    dev.unmask(INTX, 0).unwrap();
    dev.write_u32(bar0, EDU_STATUS, 0).unwrap();
    assert_eq!(edu_compute(&dev, 12), 479_001_600);
    expect_quiet(&dev, INTX);
    assert_eq!(dev.interrupt_count(MSI, 0).unwrap(), 0, "MSI is off");
}

#[test]
fn edu_raise_register_then_msi() {
    let s = Served::start("edu-msi", &["--device", "edu"], &["edu0"]);
    let dev = s.open("edu0");
    // A second open sees every event too (counters are per open file).
    let other = s.open("edu0");
    let bar0 = dev.pci_bar(0).unwrap();
    let config = dev.pci_config().unwrap();

    // The raise register asserts INTx until the bits are acknowledged.
    dev.write_u32(bar0, EDU_IRQ_RAISE, 0x100).unwrap();
    assert_eq!(expect_events(&dev, INTX), 1);
    assert_eq!(expect_events(&other, INTX), 1);
    assert_eq!(dev.read_u32(bar0, EDU_IRQ_STATUS).unwrap(), 0x100);
    // Level-triggered: unmasking while still asserted delivers again (and masks again).
    dev.unmask(INTX, 0).unwrap();
    assert_eq!(expect_events(&dev, INTX), 1);
    assert!(dev.is_masked(INTX, 0).unwrap());
    dev.write_u32(bar0, EDU_IRQ_ACK, 0x100).unwrap();
    dev.unmask(INTX, 0).unwrap();
    expect_quiet(&dev, INTX);
    assert_eq!(other.interrupt_count(INTX, 0).unwrap(), 1);

    // MSI: the capability at 0x40, message control at 0x42, enable is bit 0.
    assert_eq!(dev.read_u8(config, 0x34).unwrap(), 0x40, "capability list");
    assert_eq!(
        dev.read_u8(config, 0x40).unwrap(),
        0x05,
        "MSI capability ID"
    );
    let control = dev.read_u16(config, 0x42).unwrap();
    assert_eq!(control & 1, 0, "MSI starts disabled");
    dev.write_u16(config, 0x42, control | 1).unwrap();
    assert_eq!(dev.read_u16(config, 0x42).unwrap(), control | 1);

    dev.write_u32(bar0, EDU_IRQ_RAISE, 0x1).unwrap();
    assert_eq!(expect_events(&dev, MSI), 1, "the raise arrives as MSI");
    assert_eq!(dev.interrupt_count(INTX, 0).unwrap(), 0, "and not as INTx");
    assert!(!dev.is_masked(INTX, 0).unwrap());
    // Edge-triggered: each raise is one event, acknowledged or not.
    dev.write_u32(bar0, EDU_IRQ_RAISE, 0x2).unwrap();
    assert_eq!(expect_events(&dev, MSI), 1);
    dev.write_u32(bar0, EDU_IRQ_ACK, 0x3).unwrap();
    // A finished factorial goes the same way.
    dev.write_u32(bar0, EDU_STATUS, EDU_STATUS_IRQ_ON_FACTORIAL)
        .unwrap();
    assert_eq!(edu_compute(&dev, 4), 24);
    assert_eq!(expect_events(&dev, MSI), 1);
    expect_quiet(&dev, INTX);
    assert_eq!(other.interrupt_count(MSI, 0).unwrap(), 3);

    // A masked MSI vector holds its event until unmasked.
    dev.mask(MSI, 0).unwrap();
    dev.write_u32(bar0, EDU_IRQ_RAISE, 0x4).unwrap();
    expect_quiet(&dev, MSI);
    dev.unmask(MSI, 0).unwrap();
    assert_eq!(expect_events(&dev, MSI), 1);

    // Disabling MSI sends the still-pending status back to INTx.
    dev.write_u16(config, 0x42, control).unwrap();
    assert_eq!(expect_events(&dev, INTX), 1);
    dev.write_u32(bar0, EDU_IRQ_ACK, u32::MAX).unwrap();
    dev.unmask(INTX, 0).unwrap();
    expect_quiet(&dev, INTX);
}

#[test]
fn edu_bar_sizing_over_fuse() {
    let s = Served::start("edu-bar", &["--device", "edu"], &["edu0"]);
    let dev = s.open("edu0");
    let config = dev.pci_config().unwrap();
    let original = dev.read_u32(config, 0x10).unwrap();
    dev.write_u32(config, 0x10, 0xffff_ffff).unwrap();
    let sized = dev.read_u32(config, 0x10).unwrap();
    assert_eq!(sized, 0xfff0_0000);
    assert_eq!(
        (!(sized & !0xf)).wrapping_add(1) as u64,
        dev.pci_bar(0).unwrap().size,
        "the sized BAR matches the region size in the description"
    );
    dev.write_u32(config, 0x10, original).unwrap();
    assert_eq!(dev.read_u32(config, 0x10).unwrap(), original);

    // The same through the CLI.
    let edu = s.path("edu0");
    let edu = edu.to_str().unwrap();
    devfd_ok(&["write", edu, "config", "0x10", "0xffffffff"]);
    assert_eq!(devfd_ok(&["read", edu, "config", "0x10"]), "0xfff00000\n");
    devfd_ok(&["write", edu, "config", "0x10", "0xfe000000"]);
    assert_eq!(devfd_ok(&["read", edu, "config", "0x10"]), "0xfe000000\n");
}

/// The text of `lspci -x` for one function: a header line, then 16 bytes a line
/// (as crates/emu/tests/lspci.rs writes it).
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

#[test]
fn lspci_reads_config_space_from_the_device_file() {
    let s = Served::start("lspci", &["--device", "edu"], &["edu0"]);
    let dev = s.open("edu0");
    let config = dev.pci_config().unwrap();
    assert_eq!(config.size, 256);
    dev.write_u32(config, 0x10, 0xfe00_0000).unwrap();
    dev.write_u16(config, 0x04, 0x0002).unwrap(); // memory space
    let mut bytes = [0u8; 256];
    dev.read_bulk(config, 0, &mut bytes).unwrap();
    assert_eq!(&bytes[..4], &[0x34, 0x12, 0xe8, 0x11]);

    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("live-edu-{}.lspci", std::process::id()));
    std::fs::write(&path, lspci_dump(&bytes)).unwrap();
    let mut command = Command::new("lspci");
    command.arg("-F").arg(&path).arg("-vvnn");
    let out = run(command);
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "lspci: {}", text(&out.stderr));
    let out = text(&out.stdout);
    for expected in [
        "Device [1234:11e8] (rev 10)",
        "Subsystem: Red Hat, Inc. Device [1af4:1100]",
        "Control: I/O- Mem+",
        "Region 0: Memory at fe000000 (32-bit, non-prefetchable)",
        "Capabilities: [40] MSI: Enable- Count=1/1",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// rtc0: the PL031

#[test]
fn rtc_ids_ticking_and_match_interrupt() {
    let s = Served::start("rtc", &["--device", "pl031"], &["rtc0"]);
    let dev = s.open("rtc0");
    let regs = dev
        .dt_region("/pl031@9010000", 0)
        .expect("the PL031 region by its device-tree node");
    assert_eq!(dev.resolve_region("0").unwrap(), regs);
    let ids = |at: u64| -> Vec<u32> {
        (0..4)
            .map(|i| dev.read_u32(regs, at + 4 * i).unwrap())
            .collect()
    };
    assert_eq!(ids(0xfe0), [0x31, 0x10, 0x14, 0x00], "PeriphID");
    assert_eq!(ids(0xff0), [0x0d, 0xf0, 0x05, 0xb1], "PCellID");

    // Load 1000, match at 1002, unmask the interrupt: it fires two seconds after the load.
    dev.write_u32(regs, RTCLR, 1000).unwrap();
    let first = dev.read_u32(regs, RTCDR).unwrap();
    let first_at = Instant::now();
    assert!(
        (1000..=1001).contains(&first),
        "RTCDR {first} after the load"
    );
    dev.write_u32(regs, RTCMR, 1002).unwrap();
    dev.write_u32(regs, RTCIMSC, 1).unwrap();
    assert_eq!(dev.read_u32(regs, RTCRIS).unwrap() & 1, 0, "not yet");
    let events = dev
        .wait_interrupt(0, Some(Duration::from_secs(4)))
        .expect("the match interrupt within 4 s");
    assert!(events >= 1);
    assert_eq!(dev.read_u32(regs, RTCRIS).unwrap() & 1, 1, "RTCRIS");
    assert_eq!(dev.read_u32(regs, RTCMIS).unwrap() & 1, 1, "RTCMIS");
    assert!(dev.is_masked(0, 0).unwrap(), "automasked");

    // RTCDR ticks: two reads at least 1.1 s apart differ (the wait took about 2 s already).
    if let Some(left) = Duration::from_millis(1100).checked_sub(first_at.elapsed()) {
        std::thread::sleep(left);
    }
    let second = dev.read_u32(regs, RTCDR).unwrap();
    assert_ne!(second, first, "RTCDR did not tick");
    assert!(second >= 1002, "RTCDR {second} at the match");

    // Clear the interrupt at the device, then unmask: nothing more arrives.
    dev.write_u32(regs, RTCICR, 1).unwrap();
    assert_eq!(dev.read_u32(regs, RTCRIS).unwrap() & 1, 0);
    assert_eq!(dev.read_u32(regs, RTCMIS).unwrap() & 1, 0);
    dev.unmask(0, 0).unwrap();
    expect_quiet(&dev, 0);
}

// ---------------------------------------------------------------------------------------------
// mem0: coherent mmap through mem0.r0

/// Set by [`mem_mmap_coherent_both_ways`] when it runs this test binary again as a second
/// process: the path of the device file the child maps.
const CHILD_ENV: &str = "DEVFD_LIVE_MMAP_CHILD";
const PARENT_MARK: u64 = 0x7061_7265_6e74_2121;
const CHILD_MARK: u64 = 0x6368_696c_6421_2121;

fn map_or_explain(dev: &DeviceFile) -> devfd_client::Mapping {
    dev.map(0).unwrap_or_else(|e| {
        panic!(
            "mapping {} failed: {e}. The server maps memory regions through `D.rN` with FUSE \
             passthrough (CONFIG_FUSE_PASSTHROUGH, kernel 6.9+), which this test requires",
            dev.path().display()
        )
    })
}

/// Not a test of its own: the second process of [`mem_mmap_coherent_both_ways`]. Without
/// its environment variable it does nothing.
#[test]
fn mmap_child_process() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dev = DeviceFile::open(path).unwrap();
    let map = map_or_explain(&dev);
    assert_eq!(map.read_u64(0x3000).unwrap(), PARENT_MARK);
    map.write_u64(0x3008, CHILD_MARK).unwrap();
    dev.write_bulk(0, 0x3010, b"child pwrite").unwrap();
}

#[test]
fn mem_mmap_coherent_both_ways() {
    let s = Served::start("mem", &["--device", "memory"], &["mem0", "mem0.r0"]);
    let dev = s.open("mem0");
    let ram = dev.region(0).unwrap();
    assert!(ram.mmappable());
    assert_eq!(ram.size, 1 << 20);
    let map = map_or_explain(&dev);
    assert_eq!(map.len(), 1 << 20);

    // Stores through the mapping reach the device file: a bulk read, and a plain pread.
    map.write_u64(0x100, 0x1122_3344_5566_7788).unwrap();
    map.copy_from(b"written through the mapping", 0x2003)
        .unwrap();
    let mut b = [0u8; 8];
    dev.read_bulk(ram, 0x100, &mut b).unwrap();
    assert_eq!(u64::from_le_bytes(b), 0x1122_3344_5566_7788);
    let mut s27 = [0u8; 27];
    assert_eq!(
        dev.file().read_at(&mut s27, ram.offset + 0x2003).unwrap(),
        27
    );
    assert_eq!(&s27, b"written through the mapping");

    // Writes through the device file show in the mapping.
    let pattern: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
    dev.write_bulk(ram, 0x8_0005, &pattern).unwrap();
    let mut back = vec![0u8; pattern.len()];
    map.copy_to(&mut back, 0x8_0005).unwrap();
    assert_eq!(back, pattern);
    dev.file()
        .write_at(&0xfeed_f00d_u32.to_le_bytes(), ram.offset + 0xf_fffc)
        .unwrap();
    assert_eq!(map.read_u32(0xf_fffc).unwrap(), 0xfeed_f00d);

    // The whole region, both ways.
    let whole: Vec<u8> = (0..ram.size).map(|i| (i % 251) as u8).collect();
    dev.write_bulk(ram, 0, &whole).unwrap();
    let mut seen = vec![0u8; whole.len()];
    map.copy_to(&mut seen, 0).unwrap();
    assert!(seen == whole, "the mapping differs after a 1 MiB write");
    let inverted: Vec<u8> = whole.iter().map(|b| !b).collect();
    map.copy_from(&inverted, 0).unwrap();
    dev.read_bulk(ram, 0, &mut seen).unwrap();
    assert!(
        seen == inverted,
        "the device file differs after a 1 MiB store"
    );

    // Another thread with its own open file and mapping.
    let path = s.path("mem0");
    let from_thread = within("a mapping thread", DEVICE, move || {
        let dev = DeviceFile::open(path).unwrap();
        let map = map_or_explain(&dev);
        map.write_u32(0x1000, 0xabcd_0123).unwrap();
        map.read_u64(0x100).unwrap()
    });
    let expected = u64::from_le_bytes(inverted[0x100..0x108].try_into().unwrap());
    assert_eq!(
        from_thread, expected,
        "the thread's mapping sees this one's stores"
    );
    assert_eq!(map.read_u32(0x1000).unwrap(), 0xabcd_0123);

    // Another process: this test binary again, running only `mmap_child_process`.
    map.write_u64(0x3000, PARENT_MARK).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "mmap_child_process", "--test-threads=1"])
        .env(CHILD_ENV, s.path("mem0"));
    let out = run(child);
    assert!(
        out.status.success(),
        "the child process failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("1 passed"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(map.read_u64(0x3008).unwrap(), CHILD_MARK);
    let mut note = [0u8; 12];
    map.copy_to(&mut note, 0x3010).unwrap();
    assert_eq!(&note, b"child pwrite");
}

// ---------------------------------------------------------------------------------------------
// The CLI against a live mount

#[test]
fn cli_ls_info_read_dump_and_irq() {
    let s = Served::start("cli", &[], &DEMO);
    let dir = s.dir.to_str().unwrap();
    let edu = s.path("edu0");
    let edu = edu.to_str().unwrap();

    // ls --json: one object per device file (not mem0.r0), sorted by name.
    let v: serde_json::Value = serde_json::from_str(&devfd_ok(&["ls", dir, "--json"])).unwrap();
    let list = v.as_array().expect("a JSON array");
    let paths: Vec<&str> = list.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["edu0", "mem0", "rtc0"].map(|f| format!("{dir}/{f}")),
        "{v:#}"
    );
    for e in list {
        assert!(e["bus"].is_string(), "{e}");
    }
    assert_eq!(list[0]["bus"], "pci");
    assert_eq!(list[0]["vendor"], 0x1234);
    assert_eq!(list[0]["device"], 0x11e8);
    assert_eq!(list[1]["bus"], "platform");
    assert_eq!(list[1]["compatible"], serde_json::json!(["devfd,memory"]));
    assert_eq!(list[2]["compatible"][0], "arm,pl031");

    // ls: one line per device.
    let ls = devfd_ok(&["ls", dir]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 3, "{ls}");
    assert!(lines[0].starts_with(&format!("{dir}/edu0 ")), "{ls}");
    assert!(
        lines[0].contains("pci") && lines[0].contains("1234:11e8"),
        "{ls}"
    );
    assert!(lines[1].contains("devfd,memory"), "{ls}");
    assert!(lines[2].contains("arm,pl031"), "{ls}");

    // info: the inspect tree of the live file.
    let info = devfd_ok(&["info", edu]);
    for expected in [
        &format!("{edu}: devfd 1.1 pci device"),
        "device 1234:11e8 (subsystem 1af4:1100) class 00ff00 rev 10  \"edu\"",
        "├─ region 0   bar0 mem32",
        "├─ region 7   config",
        "├─ irq    0   intx    x1    level maskable automasked",
        "└─ irq    1   msi     x1",
        "address map",
    ] {
        assert!(info.contains(expected), "missing {expected:?} in:\n{info}");
    }

    // read --count: consecutive registers, one 0x… value a line.
    devfd_ok(&["write", edu, "bar0", "4", "0x0f0f0f0f"]);
    assert_eq!(
        devfd_ok(&["read", edu, "bar0", "0", "--count", "4"]),
        "0x010000ed\n0xf0f0f0f0\n0x00000000\n0xffffffff\n"
    );
    assert_eq!(
        devfd_ok(&["read", edu, "regs", "0x80", "--width", "8"]),
        "0x0000000000000000\n",
        "by label, 8 bytes"
    );
    let out = devfd(&["read", edu, "bar0", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not naturally aligned"));

    // dump: offset, 16 hex bytes, ASCII; the same bytes the client reads.
    let dump = devfd_ok(&["dump", edu, "config"]);
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 16, "{dump}");
    let dev = s.open("edu0");
    let mut config = [0u8; 256];
    dev.read_bulk(dev.pci_config().unwrap(), 0, &mut config)
        .unwrap();
    for (i, line) in lines.iter().enumerate() {
        let (offset, rest) = line.split_once("  ").unwrap();
        assert_eq!(offset, format!("{:08x}", i * 16), "{line}");
        let (hex, ascii) = rest.split_once("  |").unwrap();
        let bytes: Vec<u8> = hex
            .split(' ')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(bytes, config[i * 16..i * 16 + 16], "{line}");
        assert_eq!(ascii.len(), 17, "16 characters and the bar: {line}");
    }
    assert!(lines[0].starts_with("00000000  34 12 e8 11 "), "{dump}");
    let part = devfd_ok(&["dump", edu, "config", "--offset", "0x40", "--length", "8"]);
    assert_eq!(part.lines().count(), 1);
    assert!(part.starts_with("00000040  05 00 80 00"), "{part}");

    // irq wait: exit 1 with a message when nothing happens.
    let started = Instant::now();
    let out = devfd(&["irq", "wait", edu, "intx", "--timeout", "100"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(text(&out.stderr), "devfd: irq 0: no event within 100 ms\n");
    assert!(out.stdout.is_empty());

    // irq wait sees an event raised before it opened the file: INTx stays asserted and
    // masked itself, an outstanding event, so the late opener's counter starts at 1.
    devfd_ok(&["write", edu, "bar0", "0x60", "1"]);
    let mut waiter = Command::new(env!("CARGO_BIN_EXE_devfd"))
        .args(["irq", "wait", edu, "intx", "--timeout", "15000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = eventually("irq wait to see an event", COMMAND, || {
        waiter.try_wait().unwrap()
    });
    let out = waiter.wait_with_output().unwrap();
    assert!(status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "irq 0: 1 event(s)\n");

    // irq mask / unmask, seen through the client.
    devfd_ok(&["write", edu, "bar0", "0x64", "1"]);
    devfd_ok(&["irq", "unmask", edu, "intx"]);
    assert!(!dev.is_masked(MSI, 0).unwrap());
    devfd_ok(&["irq", "mask", edu, "msi"]);
    assert!(dev.is_masked(MSI, 0).unwrap());
    devfd_ok(&["irq", "unmask", edu, "1", "--vector", "0"]);
    assert!(!dev.is_masked(MSI, 0).unwrap());
    let out = devfd(&["irq", "mask", edu, "1", "--vector", "1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn trace_prints_one_line_per_access() {
    let s = Served::start("trace", &["--trace", "--device", "edu"], &["edu0"]);
    let dev = s.open("edu0");
    let bar0 = dev.pci_bar(0).unwrap();
    let before = s.stderr().lines().count();
    for _ in 0..3 {
        assert_eq!(dev.read_u32(bar0, EDU_ID).unwrap(), 0x0100_00ed);
    }
    dev.write_u32(bar0, EDU_LIVENESS, 0x55).unwrap();
    // edu's BAR0 accepts 4 and 8 bytes (its ACCESS record): the client refuses a 2-byte
    // read before any syscall, and the server refuses it before the device model runs.
    let err = dev.read_u16(bar0, EDU_ID).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
    let f = dev.file();
    assert_eq!(
        f.read_at(&mut [0; 2], bar0.offset)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
    // A width no region takes (EINVAL) and a hole (ENXIO), straight through the file.
    assert_eq!(
        f.read_at(&mut [0; 3], bar0.offset)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
    assert_eq!(
        f.read_at(&mut [0; 4], 0x800).unwrap_err().raw_os_error(),
        Some(libc::ENXIO)
    );
    assert_eq!(dev.interrupt_count(MSI, 0).unwrap(), 0);

    // Each reply is traced before it is sent, so the lines are all there now.
    let log = s.stderr();
    let lines: Vec<&str> = log.lines().skip(before).collect();
    let expected = [
        "devfd: edu0 read  region 0 +0x0 width 4 = 0x10000ed",
        "devfd: edu0 read  region 0 +0x0 width 4 = 0x10000ed",
        "devfd: edu0 read  region 0 +0x0 width 4 = 0x10000ed",
        "devfd: edu0 write region 0 +0x4 width 4 = 0x55",
        "devfd: edu0 read  offset 0x1000 width 2 -> errno 22 (Invalid argument)",
        "devfd: edu0 read  offset 0x1000 width 3 -> errno 22 (Invalid argument)",
        "devfd: edu0 read  offset 0x800 width 4 -> errno 6 (No such device or address)",
        "devfd: edu0 read  irq 1 vector 0 Counter width 8 = 0x0",
    ];
    assert_eq!(lines, expected, "trace:\n{log}");
    // Opening reads the description, which is traced too.
    assert!(
        log.lines()
            .take(before)
            .any(|l| l.starts_with("devfd: edu0 read  description +0x0 width ")),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Server lifecycle and permissions

#[test]
fn sigkill_unmounts_fails_clients_and_restarts() {
    let mut s = Served::start("sigkill", &["--device", "edu"], &["edu0"]);
    let dev = s.open("edu0");
    let bar0 = dev.pci_bar(0).unwrap();
    assert_eq!(dev.read_u32(bar0, EDU_ID).unwrap(), 0x0100_00ed);
    // A second client blocked waiting for an interrupt when the server dies.
    let waiting = s.open("edu0");
    let (tx, waiter_result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(waiting.wait_interrupt(INTX, Some(Duration::from_secs(30))));
    });
    // Give it a moment to block in poll(2); if it has not yet, it fails at its first read.
    std::thread::sleep(Duration::from_millis(50));

    let status = s.stop_with(libc::SIGKILL);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // The clients get errors, not hangs: the kernel aborts the connection with the server.
    let result = within("a read after SIGKILL", DEVICE, move || {
        dev.read_u32(bar0, EDU_ID)
    });
    let err = result.expect_err("a read from a dead server");
    assert_eq!(err.errno(), Some(libc::ENOTCONN), "{err}");
    let waited = waiter_result
        .recv_timeout(DEVICE)
        .expect("wait_interrupt still blocked after SIGKILL");
    let err = waited.expect_err("wait_interrupt on a dead server");
    assert_eq!(err.errno(), Some(libc::ENOTCONN), "{err}");

    // The server's reaper sees it die and unmounts: no dead mount is left behind.
    let deadline = Instant::now() + DEVICE;
    while is_mounted(&s.dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !is_mounted(&s.dir),
        "SIGKILL left the mount at {}",
        s.dir.display()
    );

    // A new server serves again on the same directory.
    let dir = s.dir.clone();
    let again = Served::start_at(&dir, &["--device", "edu"], &["edu0"]);
    let dev = again.open("edu0");
    assert_eq!(dev.read_u32(0, EDU_ID).unwrap(), 0x0100_00ed);
    drop(again);
    drop(s);
}

/// The children of `pid` named `comm`.
fn children_named(pid: u32, comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // /proc/PID/stat: "pid (comm) state ppid …"
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                return false;
            };
            let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") "))
            else {
                return false;
            };
            name == comm && rest.split(' ').nth(1) == Some(pid.to_string().as_str())
        })
        .collect()
}

#[test]
fn restart_clears_a_dead_mount() {
    // Without its reaper to unmount it, a killed server leaves a dead mount (ENOTCONN).
    let mut s = Served::start("dead-mount", &["--device", "edu"], &["edu0"]);
    let server = s.child.as_ref().unwrap().id();
    let reapers = children_named(server, "devfd");
    assert_eq!(reapers.len(), 1, "the mount reaper of {server}");
    for pid in reapers {
        // SAFETY: kill(2) on the reaper our server forked, by its pid.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    s.stop_with(libc::SIGKILL);
    assert!(is_mounted(&s.dir));
    let e = std::fs::read_dir(&s.dir).expect_err("the mount is dead");
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    let out = devfd(&["ls", s.dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not connected"),
        "{}",
        text(&out.stderr)
    );

    // `devfd serve` on the same directory lazily unmounts the dead mount and serves.
    let dir = s.dir.clone();
    let again = Served::start_at(&dir, &["--device", "edu"], &["edu0"]);
    assert_eq!(again.open("edu0").read_u32(0, EDU_ID).unwrap(), 0x0100_00ed);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let stacked = mounts
        .lines()
        .filter(|l| l.split(' ').nth(1) == dir.to_str())
        .count();
    assert_eq!(stacked, 1, "one mount at {}:\n{mounts}", dir.display());
    drop(again);
    drop(s);
}

/// A path of the `devfd` binary that `nobody` can execute: the built one, or a copy in /tmp
/// if the build directory is closed to other users. Removed on drop if it is a copy.
struct NobodyDevfd(PathBuf, bool);

impl NobodyDevfd {
    fn new() -> NobodyDevfd {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_devfd"));
        if as_nobody("test", &["-x", built.to_str().unwrap()])
            .status
            .success()
        {
            return NobodyDevfd(built, false);
        }
        let copy = PathBuf::from(format!("/tmp/devfd-live-{}-devfd", std::process::id()));
        std::fs::copy(&built, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        NobodyDevfd(copy, true)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for NobodyDevfd {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn owner_only_by_default_allow_other_opens_to_all() {
    let devfd_bin = NobodyDevfd::new();
    let mut s = Served::start("perm", &["--device", "edu"], &["edu0"]);
    let edu = s.path("edu0");
    let edu = edu.to_str().unwrap();
    let mode = std::fs::metadata(edu).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = as_nobody("head", &["-c", "4", edu]);
    assert!(!out.status.success(), "nobody read the device file");
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    let out = as_nobody(devfd_bin.path(), &["read", edu, "bar0", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    s.stop();

    let dir = s.dir.clone();
    let open = Served::start_at(&dir, &["--allow-other", "--device", "edu"], &["edu0"]);
    let mode = std::fs::metadata(edu).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o666);
    let out = as_nobody("head", &["-c", "4", edu]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"DFDP");
    let out = as_nobody(devfd_bin.path(), &["write", edu, "bar0", "4", "0x11"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = as_nobody(
        devfd_bin.path(),
        &["read", edu, "bar0", "0", "--count", "2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0x010000ed\n0xffffffee\n");
    drop(open);
}

#[test]
fn device_options_choose_what_is_served() {
    let s = Served::start(
        "devices",
        &["--device", "memory,size=4M", "--device", "edu"],
        &["mem0", "edu0"],
    );
    let mut names: Vec<String> = std::fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["edu0", "mem0", "mem0.r0"]);
    let mem = s.open("mem0");
    assert_eq!(mem.region(0).unwrap().size, 4 << 20);
    assert_eq!(std::fs::metadata(s.path("mem0.r0")).unwrap().len(), 4 << 20);
    let map = map_or_explain(&mem);
    map.write_u32((4 << 20) - 4, 0x0bad_cafe).unwrap();
    let mut b = [0u8; 4];
    mem.read_bulk(0, (4 << 20) - 4, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x0bad_cafe);
    assert_eq!(s.open("edu0").read_u32(0, EDU_ID).unwrap(), 0x0100_00ed);
    drop(s);

    // The same kind twice: numbered names, separate state.
    let s = Served::start(
        "devices2",
        &["--device", "edu", "--device", "edu"],
        &["edu0", "edu1"],
    );
    let (a, b) = (s.open("edu0"), s.open("edu1"));
    a.write_u32(0, EDU_LIVENESS, 1).unwrap();
    b.write_u32(0, EDU_LIVENESS, 2).unwrap();
    assert_eq!(a.read_u32(0, EDU_LIVENESS).unwrap(), !1);
    assert_eq!(b.read_u32(0, EDU_LIVENESS).unwrap(), !2);
    drop(s);

    // A bad device is a usage error: exit 2, a clear message, nothing mounted.
    let dir = fresh_dir("bad-device");
    let d = dir.to_str().unwrap();
    for (spec, message) in [
        (
            "frob",
            "--device frob: unknown device kind `frob` (known: edu, pl031, memory, fault)",
        ),
        (
            "memory,size=3",
            "--device memory,size=3: memory size 0x3 is not",
        ),
        ("edu,speed=1", "--device edu,speed=1:"),
    ] {
        let out = devfd(&["serve", "--mount", d, "--device", spec]);
        assert_eq!(out.status.code(), Some(2), "--device {spec}");
        let err = text(&out.stderr);
        assert!(err.starts_with("devfd: error: "), "{err}");
        assert!(err.contains(message), "--device {spec}: {err}");
        assert!(!is_mounted(&dir));
    }
    let _ = std::fs::remove_dir(&dir);
}

// ---------------------------------------------------------------------------------------------
// The first run on a minimal system, and mount points that are taken.

/// A shell script run in a private mount namespace (`unshare --mount`), so that what it
/// mounts, and what a dead server would leave, stays there.
fn in_mount_namespace(script: &str) -> Output {
    let mut command = Command::new("unshare");
    command.args([
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-euc",
        script,
    ]);
    run(command)
}

#[test]
fn root_mounts_without_fusermount3_and_a_sigkill_leaves_no_mount() {
    // A minimal system (a VM's initramfs, a container): no fusermount3 anywhere on PATH.
    let empty = fresh_dir("no-path");
    let dir = fresh_dir("no-fusermount");
    let bin = env!("CARGO_BIN_EXE_devfd");
    let script = format!(
        r#"
        PATH={empty}
        {bin} serve --mount {dir} --device edu > {dir}.out 2>&1 &
        server=$!
        i=0; while ! /bin/grep -q 'devfd: serving' {dir}.out; do
            i=$((i+1)); [ $i -lt 1500 ] || {{ /bin/cat {dir}.out; exit 3; }}; /bin/sleep 0.01
        done
        /bin/grep -c ' {dir} fuse' /proc/self/mounts
        {bin} read {dir}/edu0 bar0 0
        kill -9 $server; wait $server || true
        i=0; while /bin/grep -q ' {dir} ' /proc/self/mounts; do
            i=$((i+1)); [ $i -lt 500 ] || {{ echo 'mount left behind'; exit 4; }}; /bin/sleep 0.01
        done
        echo unmounted
        {bin} serve --mount {dir} --device edu > {dir}.out2 2>&1 &
        server=$!
        i=0; while ! /bin/grep -q 'devfd: serving' {dir}.out2; do
            i=$((i+1)); [ $i -lt 1500 ] || {{ /bin/cat {dir}.out2; exit 5; }}; /bin/sleep 0.01
        done
        {bin} read {dir}/edu0 bar0 4 --width 4
        kill -TERM $server; wait $server
        /bin/grep -c ' {dir} ' /proc/self/mounts || true
        "#,
        empty = empty.display(),
        dir = dir.display(),
    );
    let out = in_mount_namespace(&script);
    let _ = std::fs::remove_file(dir.with_extension("out"));
    let _ = std::fs::remove_file(dir.with_extension("out2"));
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "1\n0x010000ed\nunmounted\n0xffffffff\n0\n", // liveness reads !0
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn without_root_or_fusermount3_serve_says_what_to_install() {
    let devfd_bin = NobodyDevfd::new();
    let empty = fresh_dir("nobody-path");
    let out = as_nobody(
        "env",
        &[
            &format!("PATH={}", empty.display()),
            devfd_bin.path(),
            "serve",
            "--mount",
            &format!("{}/m", empty.display()),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("fusermount3") && err.contains("fuse3"),
        "{err}"
    );
}

#[test]
fn a_second_server_refuses_a_live_mount_point_and_the_first_keeps_serving() {
    let mut s = Served::start("taken", &["--device", "edu"], &["edu0"]);
    let out = devfd(&["serve", "--mount", s.dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("mount point already") && err.contains("running server"),
        "{err}"
    );
    assert_eq!(s.open("edu0").read_u32(0, EDU_ID).unwrap(), 0x0100_00ed);
    s.stop();
}

#[test]
fn errors_name_their_cause_once() {
    let out = devfd(&["info", "/nonexistent/devfd-file"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn readme_interrupt_walkthrough_works_as_typed_and_repeatedly() {
    // The README's lines, verbatim, with the test's mount instead of /run/devfd.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let line = |start: &str| -> String {
        readme
            .lines()
            .find_map(|l| l.strip_prefix("$ ").filter(|l| l.starts_with(start)))
            .unwrap_or_else(|| panic!("README has no `$ {start}…` line"))
            .split("   #")
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    let enable = line("devfd write /run/devfd/edu0 bar0 0x20");
    let trigger_and_wait = line("devfd write /run/devfd/edu0 bar0 0x08 5 &&");
    assert!(trigger_and_wait.contains("devfd irq wait /run/devfd/edu0 intx"));
    let s = Served::start("walkthrough", &["--device", "edu"], &["edu0"]);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_devfd")).parent().unwrap();
    let dir = s.dir.to_str().unwrap();
    let sh = |cmd: &str| {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(cmd.replace("/run/devfd", dir))
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()));
        run(command)
    };
    assert!(sh(&enable).status.success());
    for round in 0..3 {
        let out = sh(&trigger_and_wait);
        assert!(
            out.status.success(),
            "round {round}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "irq 0: 1 event(s)\n", "round {round}");
        // The driver's acknowledgement, as the README shows it.
        let ack = line("devfd write /run/devfd/edu0 bar0 0x64");
        let out = sh(&ack);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Acknowledged: a late opener now sees nothing outstanding.
    let out = sh("devfd irq wait /run/devfd/edu0 intx --timeout 200");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

// ---------------------------------------------------------------------------------------------
// Issue 11: hostile limits and inputs, through the real binary.

/// Runs `script` under `sh -c` with `$DEVFD` set to the binary under test.
fn sh(script: &str) -> Output {
    let mut c = Command::new("sh");
    c.args(["-c", script])
        .env("DEVFD", env!("CARGO_BIN_EXE_devfd"))
        .stdin(Stdio::null());
    run(c)
}

#[test]
fn a_server_whose_threads_cannot_start_exits_2_without_a_banner() {
    let dir = fresh_dir("fd-limit");
    let out = sh(&format!(
        "ulimit -n 24; exec \"$DEVFD\" serve --mount {} --threads 100 --device edu",
        dir.display()
    ));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("serving"),
        "{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("does not serve") && err.contains("ulimit -n"),
        "{err}"
    );
    assert!(!is_mounted(&dir), "the failed server left its mount");
}

#[test]
fn a_file_size_limit_below_a_memory_device_is_an_error_not_a_signal() {
    let dir = fresh_dir("fsize");
    let out = sh(&format!(
        "ulimit -f 1024; exec \"$DEVFD\" serve --mount {} --device memory,size=4M",
        dir.display()
    ));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("file-size limit (ulimit -f)"), "{err}");
}

#[test]
fn dump_and_read_stream_their_output_in_bounded_memory() {
    let mut s = Served::start(
        "stream",
        &["--device", "memory,size=64M", "--device", "fault"],
        &["mem0", "fault0"],
    );
    let mem = s.path("mem0").display().to_string();
    // 8 MiB of dump under a 48 MB address-space limit: buffering it all (8 MiB of data and
    // 40 MB of text) cannot fit; streaming runs in constant memory.
    let out = sh(&format!(
        "ulimit -v 48000; \"$DEVFD\" dump {mem} ram --length 0x800000 | wc -l"
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), (0x80_0000 / 16).to_string());
    // A reader that stops early ends the dump quietly and at once.
    let out = sh(&format!(
        "\"$DEVFD\" dump {mem} ram --length 0x4000000 | head -c 100"
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 100);
    // Values read before a failure are printed before the error.
    let fault = s.path("fault0").display().to_string();
    let out = devfd(&["read", &fault, "regs", "0", "--width", "8", "--count", "40"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout).lines().count(),
        32,
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("+0x100"),
        "{}",
        text(&out.stderr)
    );
    s.stop();
}

#[test]
fn hostile_description_inputs_are_rejected_early() {
    let dir = fresh_dir("hostile-toml");
    let toml = dir.join("many.toml");
    let mut text_in = String::from("bus = \"platform\"\n");
    for _ in 0..100_000 {
        text_in.push_str("[[region]]\nsize = 8\n");
    }
    std::fs::write(&toml, text_in).unwrap();
    let out = devfd(&["build", toml.to_str().unwrap(), "-o", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at most 1024"),
        "{}",
        text(&out.stderr)
    );
    let out = devfd(&["build", "/dev/zero", "-o", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("larger than 4 MiB"),
        "{}",
        text(&out.stderr)
    );
}
