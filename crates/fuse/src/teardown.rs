//! Tearing a mount down even while clients hold files open.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Lazily unmounts `mount` and aborts its FUSE connection (through
/// `/sys/fs/fuse/connections/<minor>/abort`), so the session threads see the device close.
pub(crate) fn detach_and_abort(mount: &Path) {
    let connection = std::fs::metadata(mount).ok().map(|m| minor(m.dev()));
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

fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
}
