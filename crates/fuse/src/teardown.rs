//! Finding, checking and tearing down mounts, even while clients hold files open or the server
//! on a mount is stopped. Nothing here stats a FUSE mount on the caller's thread: a stat is a
//! FUSE request, which hangs while the server behind the mount does not answer.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// What is mounted at a path, per `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// The file system type (`fuse.devfd`, `tmpfs`, …).
    pub fstype: String,
    /// The device minor: for FUSE, the connection number in `/sys/fs/fuse/connections`.
    pub minor: Option<u64>,
}

/// The topmost mount at `mount`, if `mount` is a mount point.
pub(crate) fn mount_at(mount: &Path) -> Option<MountEntry> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // mountinfo escapes space, tab, newline and backslash in paths as octal.
    let wanted = mount
        .to_str()?
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    info.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut fields = left.split(' ');
        let dev = fields.nth(2)?;
        let point = fields.nth(1)?;
        if point != wanted {
            return None;
        }
        Some(MountEntry {
            fstype: right.split(' ').next()?.to_owned(),
            minor: dev.split_once(':').and_then(|(_, m)| m.parse().ok()),
        })
    })
}

/// What answers at a FUSE mount point.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Its server is gone (`ENOTCONN`): a stale mount to clear.
    Dead,
    /// Its server answered.
    Alive,
    /// Its server did not answer within the probe's time (stopped, or stuck).
    Unresponsive,
}

/// Asks the server behind `mount` for its root directory, on a thread of its own so that a
/// stopped server cannot hang the caller.
pub(crate) fn probe(mount: &Path) -> Liveness {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = mount.to_owned();
    let spawned = std::thread::Builder::new()
        .name("devfd-probe".into())
        .spawn(move || {
            // stat alone may be answered from cached attributes; opening the directory asks.
            let _ = tx.send(std::fs::read_dir(&path).map(drop));
        });
    if spawned.is_err() {
        return Liveness::Unresponsive;
    }
    match rx.recv_timeout(Duration::from_millis(500)) {
        Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOTCONN) => Liveness::Dead,
        Ok(_) => Liveness::Alive,
        Err(_) => Liveness::Unresponsive,
    }
}

/// Checks that the mount at `mount` is the one made (FUSE connection `connection`, where
/// known) and that its server answers: a directory listing within two seconds that holds
/// `expect` (a device name), when given.
pub(crate) fn serving(
    mount: &Path,
    connection: Option<u64>,
    expect: Option<&str>,
) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = mount.to_owned();
    std::thread::Builder::new()
        .name("devfd-probe".into())
        .spawn(move || {
            let names: std::io::Result<Vec<std::ffi::OsString>> = std::fs::read_dir(&path)
                .and_then(|dir| dir.map(|e| e.map(|e| e.file_name())).collect());
            let _ = tx.send(names);
        })
        .map_err(|e| format!("no thread to check the mount with: {e}"))?;
    let names = match rx.recv_timeout(Duration::from_secs(2)) {
        Ok(Ok(names)) => names,
        Ok(Err(e)) => return Err(format!("listing it fails: {e}")),
        Err(_) => {
            return Err(
                "it does not answer within 2 s (are the server's threads short of file \
                 descriptors? see ulimit -n and --threads)"
                    .into(),
            );
        }
    };
    let ours = match mount_at(mount) {
        Some(m) => m.fstype.starts_with("fuse") && (connection.is_none() || m.minor == connection),
        None => false,
    };
    if !ours {
        return Err(
            "the mount went away: the server's threads could not start (see ulimit -n \
                    and --threads)"
                .into(),
        );
    }
    match expect {
        Some(name) if !names.iter().any(|n| n == name) => {
            Err(format!("its listing lacks the device {name}"))
        }
        _ => Ok(()),
    }
}

/// An `O_PATH` descriptor of the root of the mount at `mount`, to name exactly that mount
/// later (through `/proc/self/fd/N`) even if another is stacked on the same path.
pub(crate) fn open_mount_root(mount: &Path) -> Option<OwnedFd> {
    let path = CString::new(mount.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; an O_PATH open
    // of a mount root sends no FUSE request.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a non-negative `fd` was just opened and is owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Lazily unmounts (`MNT_DETACH`) the mount named by `root` (from [`open_mount_root`]), or by
/// path when `root` is `None`. Falls back to `fusermount3 -u -z` without root.
pub(crate) fn detach(mount: &Path, root: Option<&OwnedFd>) -> bool {
    let target = match root {
        Some(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()),
        None => match mount.to_str() {
            Some(p) => p.to_owned(),
            None => return false,
        },
    };
    let Ok(path) = CString::new(target) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        return true;
    }
    // Not root: fusermount3 (setuid) may unmount for us.
    std::process::Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(mount)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Detaches this server's mount and aborts its FUSE connection (through
/// `/sys/fs/fuse/connections/<minor>/abort`), so the session threads see the device close and
/// clients that still hold files get `ENOTCONN`.
pub(crate) fn detach_and_abort(mount: &Path, root: Option<&OwnedFd>, connection: Option<u64>) {
    detach(mount, root);
    let connections = Path::new("/sys/fs/fuse/connections");
    let mounted =
        std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| m.contains(" fusectl "));
    if !mounted {
        // fusectl is usually mounted at boot (not in a minimal guest); mounting it needs root.
        let none = c"none";
        let fstype = c"fusectl";
        if let Ok(target) = CString::new(connections.as_os_str().as_bytes()) {
            // SAFETY: all three are valid NUL-terminated strings; no data argument.
            unsafe {
                libc::mount(
                    none.as_ptr(),
                    target.as_ptr(),
                    fstype.as_ptr(),
                    0,
                    std::ptr::null(),
                );
            }
        }
    }
    if let Some(minor) = connection {
        let abort = format!("/sys/fs/fuse/connections/{minor}/abort");
        if let Err(e) = std::fs::write(&abort, b"1") {
            log::debug!("{abort}: {e}");
        }
    }
}
