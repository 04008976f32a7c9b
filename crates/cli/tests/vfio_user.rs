//! `devfd serve --vfio-user` and `--vfio-user-connect`, as a user runs them: separate
//! processes, real sockets, the banner, the signals, and the errors a newcomer meets.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const STARTUP: Duration = Duration::from_secs(20);

fn devfd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_devfd"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("devfd-vu-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `devfd serve …` child, stopped with SIGTERM on drop.
struct Server {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Server {
    /// Starts `devfd serve ARGS` and waits for its banner and every path of `ready`.
    fn start(dir: &Path, args: &[&str], ready: &[PathBuf]) -> Server {
        let (out, err) = (dir.join("serve.out"), dir.join("serve.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_devfd"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server { child, out, err };
        let deadline = Instant::now() + STARTUP;
        while !(s.stdout().contains("devfd: serving") && ready.iter().all(|p| p.exists())) {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("devfd serve exited {status}:\n{}{}", s.stdout(), s.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "not ready:\n{}{}",
                s.stdout(),
                s.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

#[test]
fn several_devices_get_a_directory_of_sockets_removed_on_sigterm() {
    let dir = fresh_dir("dir");
    let sockets = dir.join("sockets");
    let s = sockets.to_str().unwrap();
    let (edu0, edu1) = (sockets.join("edu0.sock"), sockets.join("edu1.sock"));
    let server = Server::start(
        &dir,
        &["--vfio-user", s, "--device", "edu", "--device", "edu"],
        &[edu0.clone(), edu1.clone()],
    );
    let banner = server.stdout();
    assert!(
        banner.contains("serving 2 device(s) over vfio-user"),
        "{banner}"
    );
    assert!(banner.contains("edu1.sock  edu1 (1234:11e8"), "{banner}");
    assert!(
        std::fs::symlink_metadata(&edu0)
            .unwrap()
            .file_type()
            .is_socket()
    );

    // What a client sees, at a glance.
    let info = devfd(&["info", "--vfio-user", edu1.to_str().unwrap()]);
    let out = text(&info.stdout);
    assert!(info.status.success(), "{}", text(&info.stderr));
    assert!(
        out.contains("9 regions, 5 irqs (as the server reports them)"),
        "{out}"
    );
    assert!(out.contains("device 1234:11e8"), "{out}");
    assert!(
        out.contains("irq    0  count 1    [eventfd maskable automasked]"),
        "{out}"
    );

    // A second server on a live socket is refused, naming it.
    let again = devfd(&[
        "serve",
        "--vfio-user",
        edu0.to_str().unwrap(),
        "--device",
        "edu",
    ]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("is a live socket"),
        "{}",
        text(&again.stderr)
    );

    let status = server.stop();
    assert!(status.success(), "{status}");
    assert!(
        !edu0.exists() && !edu1.exists(),
        "SIGTERM removes the sockets"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stale_socket_is_replaced_and_anything_else_refused() {
    let dir = fresh_dir("stale");
    let path = dir.join("edu.sock");
    // A socket file nobody listens on (a server that was killed leaves one).
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let p = path.to_str().unwrap();
    let server = Server::start(&dir, &["--vfio-user", p], std::slice::from_ref(&path));
    assert!(
        server.stdout().contains("edu0 (1234:11e8"),
        "{}",
        server.stdout()
    );
    assert!(server.stop().success());

    let file = dir.join("not-a-socket");
    std::fs::write(&file, b"data").unwrap();
    let out = devfd(&["serve", "--vfio-user", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("exists and is not a socket"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"data", "left alone");

    // Only PCI devices can be served; the error says which and why.
    let out = devfd(&["serve", "--vfio-user", p, "--device", "pl031"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot be served over vfio-user") && err.contains("PCI"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_vfio_user_server_becomes_a_device_file() {
    let dir = fresh_dir("connect");
    let socket = dir.join("edu.sock");
    let mount = dir.join("mnt");
    std::fs::create_dir_all(&mount).unwrap();
    let server = Server::start(
        &dir,
        &["--vfio-user", socket.to_str().unwrap()],
        std::slice::from_ref(&socket),
    );
    let file = mount.join("vfio-user0");
    let client_dir = fresh_dir("connect-client");
    let client = Server::start(
        &client_dir,
        &[
            "--mount",
            mount.to_str().unwrap(),
            "--vfio-user-connect",
            socket.to_str().unwrap(),
        ],
        std::slice::from_ref(&file),
    );
    let f = file.to_str().unwrap();
    let id = devfd(&["read", f, "bar0", "0"]);
    assert_eq!(
        text(&id.stdout).trim(),
        "0x010000ed",
        "{}",
        text(&id.stderr)
    );
    assert!(devfd(&["write", f, "bar0", "4", "0x5"]).status.success());
    assert_eq!(
        text(&devfd(&["read", f, "bar0", "4"]).stdout).trim(),
        "0xfffffffa"
    );
    // The same refusals as any device file: an unaligned register read is EINVAL.
    let bad = devfd(&["read", f, "bar0", "1", "--width", "4"]);
    assert!(!bad.status.success());
    assert!(client.stop().success());
    assert!(server.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&client_dir);
}
