//! Tearing a mount down even while clients hold files open.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Lazily unmounts `mount` and aborts its FUSE connection (through
/// `/sys/fs/fuse/connections/<minor>/abort`), so the session threads see the device close.
pub(crate) fn detach_and_abort(mount: &Path) {
    // From mountinfo, not stat(2): a stat of the mount is a FUSE request, which hangs when
    // every server thread is stuck in a device.
    let connection = connection_of(mount);
    let Ok(path) = std::ffi::CString::new(mount.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        // Not root: fusermount3 (setuid) may unmount for us.
        let _ = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(mount)
            .status();
    }
    let connections = Path::new("/sys/fs/fuse/connections");
    let mounted =
        std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| m.contains(" fusectl "));
    if !mounted {
        // fusectl is usually mounted at boot; mounting it needs root.
        let _ = std::process::Command::new("mount")
            .args(["-t", "fusectl", "none"])
            .arg(connections)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    if let Some(minor) = connection {
        let abort = format!("/sys/fs/fuse/connections/{minor}/abort");
        if let Err(e) = std::fs::write(&abort, b"1") {
            log::debug!("{abort}: {e}");
        }
    }
}

/// The FUSE connection number (the mount's device minor) from /proc/self/mountinfo.
fn connection_of(mount: &Path) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // mountinfo escapes space, tab, newline and backslash in paths as octal.
    let wanted = mount
        .to_str()?
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let dev = fields.nth(2)?;
        let point = fields.nth(1)?;
        if point != wanted || !line.contains(" - fuse") {
            return None;
        }
        dev.split_once(':')?.1.parse().ok()
    })
}
