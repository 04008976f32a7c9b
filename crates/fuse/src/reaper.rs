//! A mount reaper: a forked process that outlives the server and, once the server is gone (by
//! any means, SIGKILL included), unmounts the mount the server left behind.
//!
//! It replaces fusermount3's auto-unmount, which is absent from minimal systems (a VM's
//! initramfs, a container) and only works together with `allow_other`. The reaper is a plain
//! `fork` with no `exec`: libraries that call [`crate::serve`] get it without shipping a helper
//! binary. Its only tie to the server is a pipe: when the last write end closes (the server
//! exited, or dropped its [`Reaper`]), `read` returns end-of-file.
//!
//! As root the reaper unmounts through `/proc/self/fd/N` of an `O_PATH` descriptor of the mount
//! root taken right after mounting, so it detaches exactly the mount this server made, never one
//! that a later server stacked on the same path. Without root it runs `fusermount3 -u -z PATH`
//! (setuid), found on `PATH` before forking.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The server's end of the tie to its reaper; dropping it lets the reaper run.
#[derive(Debug)]
pub(crate) struct Reaper {
    _tie: OwnedFd,
}

/// How the reaper will unmount.
enum Method<'a> {
    /// umount2(MNT_DETACH) of the mount held by this descriptor.
    Detach(&'a OwnedFd),
    /// `fusermount3 -u -z MOUNT`.
    Fusermount { program: CString, mount: CString },
}

/// Starts a reaper for the FUSE mount at `mount`, mounted already. As root, `root_fd` (an
/// `O_PATH` descriptor of the mount root, see [`crate::teardown::open_mount_root`]) says which
/// mount to detach. `None` (with a warning logged) if none can be started: then a killed
/// server leaves its mount behind.
pub(crate) fn spawn(mount: &Path, root_fd: Option<&OwnedFd>) -> Option<Reaper> {
    let method = match root_fd {
        Some(fd) => Method::Detach(fd),
        None => {
            let Some(program) = find_on_path(OsStr::new("fusermount3")) else {
                log::warn!("no mount reaper: fusermount3 is not on PATH (Debian package fuse3)");
                return None;
            };
            Method::Fusermount {
                program: CString::new(program.as_os_str().as_bytes()).ok()?,
                mount: CString::new(mount.as_os_str().as_bytes()).ok()?,
            }
        }
    };
    // Everything the child uses is prepared here: after fork it may only make
    // async-signal-safe calls (the server is multi-threaded), so no allocation.
    let detach_path = CString::new(b"/proc/self/fd/1".to_vec()).ok()?;
    let fusermount_args: [&[u8]; 3] = [b"fusermount3\0", b"-u\0", b"-z\0"];
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        log::warn!("no mount reaper: pipe: {}", std::io::Error::last_os_error());
        return None;
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let held = match &method {
        Method::Detach(fd) => fd.as_raw_fd(),
        Method::Fusermount { .. } => -1,
    };
    let argv: [*const libc::c_char; 5] = match &method {
        Method::Fusermount { mount, .. } => [
            fusermount_args[0].as_ptr().cast(),
            fusermount_args[1].as_ptr().cast(),
            fusermount_args[2].as_ptr().cast(),
            mount.as_ptr(),
            std::ptr::null(),
        ],
        Method::Detach(_) => [std::ptr::null(); 5],
    };
    // SAFETY: fork has no preconditions; the child below makes only async-signal-safe calls
    // (dup2, close_range, setsid, sigaction, read, umount2, execv, _exit) on data prepared
    // before the fork, and never returns into Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        log::warn!("no mount reaper: fork: {}", std::io::Error::last_os_error());
        return None;
    }
    if pid == 0 {
        // SAFETY: see the fork above; every pointer refers to memory prepared before the fork.
        unsafe {
            child(
                read_end.as_raw_fd(),
                write_end.as_raw_fd(),
                held,
                &method,
                detach_path.as_ptr(),
                &argv,
            )
        }
    }
    drop(read_end);
    Some(Reaper { _tie: write_end })
}

/// The reaper process. Never returns.
///
/// # Safety
/// Only to be called in the child right after `fork`, with descriptors and strings prepared
/// by the parent.
unsafe fn child(
    read_end: libc::c_int,
    write_end: libc::c_int,
    held: libc::c_int,
    method: &Method,
    detach_path: *const libc::c_char,
    argv: &[*const libc::c_char; 5],
) -> ! {
    // SAFETY (whole block): async-signal-safe system calls on descriptors this process owns.
    unsafe {
        libc::close(write_end);
        // A session of its own: the terminal's Ctrl-C and hang-up for the server do not reach
        // the reaper, which must outlive it.
        libc::setsid();
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // Keep only the tie (as 0) and the mount (as 1): an inherited /dev/fuse descriptor
        // would keep the dead server's connection alive, and anything else would leak.
        if libc::dup2(read_end, 0) < 0 {
            libc::_exit(1);
        }
        if held >= 0 && libc::dup2(held, 1) < 0 {
            libc::_exit(1);
        }
        let devnull = b"/dev/null\0";
        let first_closed = if held >= 0 { 2 } else { 1 };
        libc::syscall(libc::SYS_close_range, first_closed, libc::c_uint::MAX, 0);
        if held < 0 {
            // fusermount3 wants 1 and 2 open.
            libc::open(devnull.as_ptr().cast(), libc::O_WRONLY);
        }
        libc::open(devnull.as_ptr().cast(), libc::O_WRONLY);
        let mut byte = 0u8;
        loop {
            let n = libc::read(0, (&raw mut byte).cast(), 1);
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
        }
        match method {
            Method::Detach(_) => {
                // EINVAL when the server already unmounted cleanly: nothing to do.
                libc::umount2(detach_path, libc::MNT_DETACH);
                libc::_exit(0)
            }
            Method::Fusermount { program, .. } => {
                libc::execv(program.as_ptr(), argv.as_ptr());
                libc::_exit(1)
            }
        }
    }
}

/// The first executable `name` in `$PATH`.
pub(crate) fn find_on_path(name: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
