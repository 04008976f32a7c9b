//! The watchdog served on a real FUSE mount (needs root and /dev/fuse) and driven as a client
//! would, through `devfd_client`: in-process with `devfd_fuse::serve`, and as the example
//! binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use custom_device::*;
use devfd_client::{ClientError, DeviceFile};
use devfd_device::Device;
use devfd_fuse::{ServeOptions, Server};

const DEADLINE: Duration = Duration::from_secs(5);

/// A fresh, empty mount directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/devfd-example-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The watchdog served in this process; unmounted on drop (even when the test panics).
struct Served {
    dir: PathBuf,
    server: Option<Server>,
}

impl Served {
    fn new(name: &str) -> Served {
        let dir = fresh_dir(name);
        let watchdog: Arc<dyn Device> = Arc::new(Watchdog::new().unwrap());
        let server = devfd_fuse::serve(
            vec![("watchdog0".into(), watchdog)],
            ServeOptions::new(&dir),
        )
        .expect("mounting (needs root and /dev/fuse)");
        Served {
            dir,
            server: Some(server),
        }
    }

    fn open(&self) -> DeviceFile {
        DeviceFile::open(self.dir.join("watchdog0")).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.unmount();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn description_and_registers() {
    let s = Served::new("regs");
    let dev = s.open();
    let d = dev.description();
    assert_eq!(d.bus(), devfd_format::Bus::Platform);
    assert_eq!(
        d.device().compatible().collect::<Vec<_>>(),
        ["devfd-example,watchdog"]
    );
    let regs = dev.resolve_region("regs").unwrap();
    assert_eq!(
        (regs.index, regs.offset, regs.size),
        (REGS_REGION, 0x1000, 0x100)
    );
    let irq = dev.resolve_interrupt("expired").unwrap();
    assert_eq!(irq.kind_name(), "wired");
    assert!(irq.maskable() && !irq.level());

    assert_eq!(dev.read_u32(regs, ID).unwrap(), ID_VALUE);
    assert_eq!(dev.read_u32(regs, CTRL).unwrap(), 0);
    assert_eq!(dev.read_u32(regs, TIMEOUT).unwrap(), DEFAULT_TIMEOUT_MS);
    assert_eq!(dev.read_u32(regs, REMAINING).unwrap(), 0, "disabled");
    dev.write_u32(regs, ID, 0).unwrap();
    assert_eq!(dev.read_u32(regs, ID).unwrap(), ID_VALUE, "read-only");
    // 4-byte registers: the device fails other widths, the server answers EIO.
    let err = dev.read_u16(regs, ID).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EIO), "{err}");
    // Past the region: the server refuses before the device sees it (ENXIO).
    let mut b = [0u8; 4];
    let err = std::os::unix::fs::FileExt::read_at(dev.file(), &mut b, 0x1100).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENXIO));
}

#[test]
fn expiry_raises_the_interrupt() {
    let s = Served::new("expiry");
    let dev = s.open();
    let regs = dev.region(REGS_REGION).unwrap();
    dev.write_u32(regs, TIMEOUT, 50).unwrap();
    dev.write_u32(regs, CTRL, CTRL_ENABLE | CTRL_IRQ).unwrap();
    let events = dev.wait_interrupt(EXPIRED_IRQ, Some(DEADLINE)).unwrap();
    assert!(events >= 1);
    assert_eq!(dev.read_u32(regs, STATUS).unwrap(), STATUS_EXPIRED);
    assert!(dev.read_u32(regs, EXPIRIES).unwrap() >= 1);
    // It keeps going: a periodic expiry until disabled.
    assert!(dev.wait_interrupt(EXPIRED_IRQ, Some(DEADLINE)).unwrap() >= 1);

    // Masked, expiries leave the vector pending; unmasking delivers one event.
    dev.mask(EXPIRED_IRQ, 0).unwrap();
    let _ = dev.interrupt_count(EXPIRED_IRQ, 0).unwrap();
    let seen = dev.read_u32(regs, EXPIRIES).unwrap();
    eventually("another expiry", || {
        (dev.read_u32(regs, EXPIRIES).unwrap() > seen).then_some(())
    });
    assert_eq!(dev.interrupt_count(EXPIRED_IRQ, 0).unwrap(), 0);
    dev.write_u32(regs, CTRL, 0).unwrap();
    dev.unmask(EXPIRED_IRQ, 0).unwrap();
    assert_eq!(dev.wait_interrupt(EXPIRED_IRQ, Some(DEADLINE)).unwrap(), 1);

    // Disabled: STATUS clears (write 1 to clear) and stays clear; no more events.
    dev.write_u32(regs, STATUS, STATUS_EXPIRED).unwrap();
    assert_eq!(dev.read_u32(regs, STATUS).unwrap(), 0);
    assert_eq!(dev.read_u32(regs, REMAINING).unwrap(), 0);
    match dev.wait_interrupt(EXPIRED_IRQ, Some(Duration::from_millis(150))) {
        Err(ClientError::TimedOut) => {}
        other => panic!("expected no event, got {other:?}"),
    }
}

#[test]
fn kicking_restarts_the_countdown() {
    let s = Served::new("kick");
    let dev = s.open();
    let regs = dev.region(REGS_REGION).unwrap();
    dev.write_u32(regs, TIMEOUT, 10_000).unwrap();
    dev.write_u32(regs, CTRL, CTRL_ENABLE).unwrap();
    let start = dev.read_u32(regs, REMAINING).unwrap();
    assert!((1..=10_000).contains(&start), "{start}");
    // Let half a second or so run off the clock.
    let before = eventually("the countdown to run", || {
        let left = dev.read_u32(regs, REMAINING).unwrap();
        (left <= 9_500).then_some(left)
    });
    // A wrong key does nothing; the right one starts a full countdown.
    dev.write_u32(regs, KICK, 0xdead_beef).unwrap();
    assert!(dev.read_u32(regs, REMAINING).unwrap() <= before);
    dev.write_u32(regs, KICK, KICK_KEY).unwrap();
    let after = dev.read_u32(regs, REMAINING).unwrap();
    assert!(after > before, "kicked: {after} ms left, {before} before");
    assert_eq!(dev.read_u32(regs, EXPIRIES).unwrap(), 0);
    assert_eq!(dev.read_u32(regs, STATUS).unwrap(), 0);
}

/// Kills the example binary on drop if the test did not stop it.
struct Running(Child, PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.1)
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir(&self.1);
    }
}

fn mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == dir.to_str())
}

#[test]
fn the_example_binary_serves_until_sigterm() {
    let dir = fresh_dir("binary");
    let mut running = Running(
        Command::new(env!("CARGO_BIN_EXE_custom-device"))
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        dir.clone(),
    );
    let file = dir.join("watchdog0");
    eventually("watchdog0 to appear", || {
        if let Some(status) = running.0.try_wait().unwrap() {
            panic!("custom-device exited early: {status}");
        }
        file.exists().then_some(())
    });
    let dev = DeviceFile::open(&file).unwrap();
    assert_eq!(dev.read_u32(REGS_REGION, ID).unwrap(), ID_VALUE);
    drop(dev);

    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(running.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = eventually("custom-device to exit", || running.0.try_wait().unwrap());
    assert!(status.success(), "{status}");
    assert!(!mounted(&dir), "SIGTERM left the mount");
    let mut stdout = String::new();
    std::io::Read::read_to_string(running.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("serving"), "{stdout}");
}
