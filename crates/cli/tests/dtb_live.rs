//! `devfd serve --dtb virt.dtb` end to end: the real binary serves QEMU aarch64 virt's PL031
//! and PL011 on a FUSE mount of its own, and a test driver written against the DTB — it finds
//! its registers and interrupts by device-tree node — reads the RTC and prints a line through
//! the UART, which must show on the server's standard error.
//!
//! Needs root, `/dev/fuse` and QEMU + dtc (`scripts/install-deps`); missing pieces fail the
//! tests loudly rather than skipping them.

#[path = "../../dtb/tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use devfd_client::DeviceFile;

const STARTUP: Duration = Duration::from_secs(15);

// PL031 (ARM DDI 0224) and PL011 (ARM DDI 0183) registers.
const RTCDR: u64 = 0x00;
const UARTDR: u64 = 0x000;
const UARTFR: u64 = 0x018;
const UARTCR: u64 = 0x030;
const UARTIMSC: u64 = 0x038;
const UARTMIS: u64 = 0x040;
const UARTICR: u64 = 0x044;
const FR_TXFE: u32 = 1 << 7;
const FR_BUSY: u32 = 1 << 3;
const INT_TX: u32 = 1 << 5;

/// A `devfd serve` child with its mount; dropping it stops the server and cleans up.
struct Served {
    child: Option<Child>,
    dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

fn is_mounted(dir: &Path) -> bool {
    let dir = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(dir))
}

impl Served {
    fn start(name: &str, args: &[&str], expect: &[&str]) -> Served {
        assert!(
            Path::new("/dev/fuse").exists(),
            "/dev/fuse is missing: the live tests need FUSE (modprobe fuse)"
        );
        let dir = PathBuf::from(format!("/tmp/devfd-dtb-live-{}-{name}", std::process::id()));
        if is_mounted(&dir) {
            let _ = Command::new("umount").arg("-l").arg(&dir).status();
        }
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap();
        let stdout = dir.with_extension("out");
        let stderr = dir.with_extension("err");
        let child = Command::new(env!("CARGO_BIN_EXE_devfd"))
            .arg("serve")
            .arg("--mount")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("devfd serve starts");
        let mut s = Served {
            child: Some(child),
            dir,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = s.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("devfd serve exited with {status}:\n{}", s.output());
            }
            let banner = std::fs::read_to_string(&s.stdout).unwrap_or_default();
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

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}---",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn open(&self, file: &str) -> DeviceFile {
        DeviceFile::open(self.dir.join(file))
            .unwrap_or_else(|e| panic!("opening {file}: {e}\n{}", self.output()))
    }

    /// SIGTERM: the server unmounts and exits 0.
    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("devfd serve ignored SIGTERM:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "{status}:\n{}", self.output());
        assert!(!is_mounted(&self.dir));
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("devfd serve at {}:\n{}", self.dir.display(), self.output());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Polls until `check` holds, for up to 5 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serve_dtb_virt_rtc_and_uart_for_a_driver() {
    let dtb = common::qemu_dtb_path("aarch64-virt");
    let mut s = Served::start(
        "virt",
        &["--dtb", dtb.to_str().unwrap()],
        &["rtc0", "uart0"],
    );
    // Only the modelled nodes are served; every other device node gets a note.
    let names: Vec<String> = std::fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.contains(".r"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["rtc0", "uart0"]);
    let err = s.stderr();
    assert!(
        err.contains("devfd: note: skipping /virtio_mmio@a000000 (virtio,mmio): no emulated model"),
        "{err}"
    );

    // The driver: registers and interrupts by device-tree node, as in the DTB.
    let rtc = s.open("rtc0");
    let rtc_regs = rtc.dt_region("/pl031@9010000", 0).expect("PL031 reg[0]");
    let d = rtc.description();
    assert_eq!(
        d.region(rtc_regs.index).unwrap().dt_address(),
        Some(0x901_0000)
    );
    let x = d
        .dt_interrupt("/pl031@9010000", 0)
        .unwrap()
        .dt_interrupt()
        .unwrap();
    assert_eq!(
        (x.controller, x.cells.collect::<Vec<_>>()),
        ("/intc@8000000", vec![0, 2, 4])
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let count = rtc.read_u32(rtc_regs, RTCDR).unwrap();
    assert!(count.abs_diff(now) <= 2, "RTCDR {count}, host time {now}");
    // The PL031 model keeps its 4-byte rule, from the ACCESS it added to the node's region.
    assert!(rtc.read_u8(rtc_regs, RTCDR).is_err());

    let uart = s.open("uart0");
    let regs = uart.dt_region("/pl011@9000000", 0).expect("PL011 reg[0]");
    let tx = uart
        .dt_interrupt("/pl011@9000000", 0)
        .expect("PL011 interrupts[0]");
    // Enable UART and transmitter, unmask the transmit interrupt, print a line.
    uart.write_u16(regs, UARTCR, 0x301).unwrap();
    uart.write_u16(regs, UARTIMSC, INT_TX as u16).unwrap();
    let line = format!("hello from a driver, the RTC says {count}");
    for b in line.bytes().chain(*b"\r\n") {
        // Wait for room as a driver does (the model drains at once, so never long).
        eventually("TXFE", || {
            uart.read_u16(regs, UARTFR).unwrap() as u32 & FR_TXFE != 0
        });
        uart.write_u8(regs, UARTDR, b).unwrap();
    }
    assert_eq!(uart.read_u32(regs, UARTFR).unwrap() & FR_BUSY, 0);
    // The transmit interrupt: the line is raised, acknowledge at the device, then unmask.
    let events = uart
        .wait_interrupt(tx, Some(Duration::from_secs(5)))
        .expect("the TX interrupt");
    assert!(events >= 1);
    assert_eq!(uart.read_u32(regs, UARTMIS).unwrap(), INT_TX);
    uart.write_u32(regs, UARTICR, INT_TX).unwrap();
    uart.unmask(tx, 0).unwrap();
    assert_eq!(uart.read_u32(regs, UARTMIS).unwrap(), 0);
    // The line came out on the server's log, named after the file.
    let expected = format!("devfd: uart0: {line}");
    eventually("the UART line on the server's stderr", || {
        s.stderr().lines().any(|l| l == expected)
    });
    drop((rtc, uart));
    s.stop();
}

#[test]
fn serve_dtb_chosen_nodes_beside_other_devices() {
    let dtb = common::qemu_dtb_path("aarch64-virt");
    let s = Served::start(
        "node",
        &[
            "--dtb",
            dtb.to_str().unwrap(),
            "--node",
            "/pl011@9000000",
            "--device",
            "memory,size=64K",
        ],
        &["uart0", "mem0"],
    );
    assert!(!s.dir.join("rtc0").exists(), "only the node asked for");
    assert!(!s.stderr().contains("skipping"), "{}", s.stderr());
    let uart = s.open("uart0");
    assert_eq!(uart.description().device().label(), Some("uart"));
    let banner = std::fs::read_to_string(&s.stdout).unwrap();
    assert!(banner.contains("arm,pl011"), "{banner}");
}
