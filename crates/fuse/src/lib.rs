//! Serve devfd devices as device files on a FUSE mount (SPEC.md §6).
//!
//! Each device is one file: offset 0 holds its description, region offsets trap into the
//! device, interrupt control windows count events, and `poll` reports `POLLPRI` when an
//! interrupt is pending. Each mmap region `N` of device `D` is also served as `D.rN`, passed
//! through by the kernel to the device's shared memory, so `MAP_SHARED` mappings are coherent.
//!
//! Every call into a device is bounded ([`ServeOptions::call_bound`], 1 s by default): a call
//! that has not returned by then is answered `ETIMEDOUT` by a watchdog, and the device is
//! reported `EIO` until the stuck call returns, so one hung device cannot hold the mount.

mod bound;
mod fs;
mod overflow;
mod reaper;
mod teardown;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use devfd_device::Device;
use fuser::{Config, MountOption, SessionACL};

pub use fs::TraceEvent;

/// Receives every device access when tracing.
pub type TraceSink = Box<dyn Fn(&TraceEvent) + Send + Sync>;

/// How to serve.
pub struct ServeOptions {
    /// Where to mount.
    pub mount: PathBuf,
    /// Let every user reach the mount (files become mode 0666); default owner-only (0600).
    pub allow_other: bool,
    /// Bound on each call into a device model.
    pub call_bound: Duration,
    /// Threads reading FUSE requests.
    pub threads: usize,
    /// Called after every device access (for `devfd serve --trace`).
    pub trace: Option<TraceSink>,
}

impl ServeOptions {
    /// Defaults: owner-only, 1 s bound, 4 threads, no trace.
    pub fn new(mount: impl Into<PathBuf>) -> Self {
        ServeOptions {
            mount: mount.into(),
            allow_other: false,
            call_bound: Duration::from_secs(1),
            threads: 4,
            trace: None,
        }
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A device's description does not parse (a bug in that device model).
    #[error("device {name}: invalid description: {error}")]
    BadDescription {
        /// Device name.
        name: String,
        /// The parse error.
        error: devfd_format::Error,
    },
    /// Two devices share a name, or a name is not a plain file name.
    #[error("bad device name {0:?}")]
    BadName(String),
    /// A device has more mmap regions than this server gives `D.rN` files to.
    #[error("device {name}: more than {max} mmap regions")]
    TooManyMmapRegions {
        /// Device name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// Not root, and no `fusermount3` to mount with.
    #[error(
        "mounting {0} without root needs fusermount3 (Debian package fuse3), which is not on PATH; \
         install it, or serve as root (then devfd mounts with mount(2) itself)"
    )]
    NoFusermount(PathBuf),
    /// The mount point is a mount already: a live server's, or something else's.
    #[error("{path} is a mount point already ({what}); stop that server or choose another --mount")]
    AlreadyMounted {
        /// Mount point.
        path: PathBuf,
        /// What is there.
        what: String,
    },
    /// The mount point could not be made.
    #[error("creating the mount point {path}")]
    MountPoint {
        /// Mount point.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The mount was made but its requests are not answered (the server's threads could not
    /// start: see the reason).
    #[error("mounted {path} but it does not serve: {why}")]
    NotServing {
        /// Mount point.
        path: PathBuf,
        /// What the check saw.
        why: String,
    },
    /// Mounting failed.
    #[error("mounting {path}")]
    Mount {
        /// Mount point.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A running server; dropping it (or [`Server::unmount`]) unmounts.
pub struct Server {
    session: Option<fuser::BackgroundSession>,
    // Declared after the session: dropped (letting the reaper look) only after unmounting.
    _reaper: Option<reaper::Reaper>,
    mount: PathBuf,
    // The mount this server made, to tear down only that one (not one stacked on the path).
    root_fd: Option<std::os::fd::OwnedFd>,
    connection: Option<u64>,
    join_bound: Duration,
}

impl Server {
    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mount
    }

    /// The FUSE connection number (`/sys/fs/fuse/connections/N`), if known: writing 1 to its
    /// `abort` file fails every pending request of this mount (SPEC.md §6.8).
    pub fn connection(&self) -> Option<u64> {
        self.connection
    }

    /// Unmounts and waits for the FUSE threads to finish.
    ///
    /// The mount is detached and its FUSE connection aborted first: clients that still hold
    /// device files open get `ENOTCONN` instead of keeping the server alive.
    pub fn unmount(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        teardown::detach_and_abort(&self.mount, self.root_fd.as_ref(), self.connection);
        // A thread stuck inside a device model never returns; the mount is gone already, so
        // wait a little for the others and then leave the stuck ones behind.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(session.umount_and_join());
        });
        match finished.recv_timeout(self.join_bound) {
            // fuser unmounts by path once more; EINVAL says our detach came first.
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            Ok(result) => result,
            Err(_) => {
                log::warn!("a device call is stuck; leaving its thread behind");
                Ok(())
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::warn!("unmounting {}: {e}", self.mount.display());
        }
    }
}

/// Mounts a FUSE file system at `options.mount` serving `devices` (name, device) and returns
/// at once; requests are served on background threads.
pub fn serve(
    devices: Vec<(String, Arc<dyn Device>)>,
    mut options: ServeOptions,
) -> Result<Server, ServeError> {
    let mount = options.mount.clone();
    let join_bound = options.call_bound;
    let shared = fs::Shared::new(devices, &mut options)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && reaper::find_on_path(std::ffi::OsStr::new("fusermount3")).is_none() {
        return Err(ServeError::NoFusermount(mount));
    }
    // Mount on what the path names (a symbolic link's target), and check and report that.
    let mount = std::fs::canonicalize(&mount).unwrap_or(mount);
    prepare_mount_point(&mount)?;
    let mount = std::fs::canonicalize(&mount).unwrap_or(mount);
    let mut config = Config::default();
    // No AutoUnmount: that needs fusermount3 (absent from minimal systems) and allow_other.
    // The reaper started below unmounts after a SIGKILL instead.
    config.mount_options = vec![
        MountOption::FSName("devfd".into()),
        MountOption::Subtype("devfd".into()),
        // The kernel enforces each file's mode (0600 unless --allow-other).
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoExec,
    ];
    // Who may use the mount is decided by each file's mode, which the kernel enforces
    // (default_permissions): 0600 files in a 0700 directory unless --allow-other. The
    // allow_other mount option only lets requests from other users reach those checks, so
    // an fd passed to another user (the broker pattern) polls and fstats like the owner's.
    // Without root it needs user_allow_other in /etc/fuse.conf; without that, the mount is
    // the owner's alone and a passed fd can read and write but not poll or fstat.
    config.acl = if root || options.allow_other || fuse_conf_allows_other() {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = options.threads > 1;
    let filesystem = fs::DeviceFs::new(shared.clone());
    let session = fuser::Session::new(filesystem, &mount, &config)
        .and_then(fuser::Session::spawn)
        .map_err(|source| ServeError::Mount {
            path: mount.clone(),
            source,
        })?;
    // Right after mounting, the topmost mount at the path is ours.
    let connection = teardown::mount_at(&mount).and_then(|m| m.minor);
    let root_fd = if root {
        teardown::open_mount_root(&mount)
    } else {
        None
    };
    let reaper = reaper::spawn(&mount, root_fd.as_ref());
    shared.set_notifier(session.notifier());
    let server = Server {
        session: Some(session),
        _reaper: reaper,
        mount,
        root_fd,
        connection,
        join_bound: join_bound + Duration::from_secs(1),
    };
    // fuser starts its threads after mounting; if it cannot (a low fd or thread limit), the
    // mount stands but nobody answers. Only a mount that answers counts as serving.
    if let Err(why) = teardown::serving(&server.mount, server.connection, shared.first_name()) {
        let path = server.mount.clone();
        drop(server);
        return Err(ServeError::NotServing { path, why });
    }
    Ok(server)
}

/// Whether `/etc/fuse.conf` lets users other than root mount with `allow_other`.
fn fuse_conf_allows_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|text| {
        text.lines()
            .any(|line| line.split('#').next().unwrap_or("").trim() == "user_allow_other")
    })
}

/// Makes `mount` ready to mount on: clears stale mounts of dead servers (stacked ones too),
/// refuses a live or unresponsive one and any other mount point, and creates the directory.
fn prepare_mount_point(mount: &Path) -> Result<(), ServeError> {
    // Bounded, in case a detach does not take.
    for _ in 0..8 {
        let Some(entry) = teardown::mount_at(mount) else {
            break;
        };
        if !entry.fstype.starts_with("fuse") {
            return Err(ServeError::AlreadyMounted {
                path: mount.to_owned(),
                what: entry.fstype,
            });
        }
        let what = match teardown::probe(mount) {
            teardown::Liveness::Dead => {
                if teardown::detach(mount, None) {
                    continue;
                }
                "the stale mount of a dead server, which this user cannot unmount"
            }
            teardown::Liveness::Alive => "a running server answers there",
            teardown::Liveness::Unresponsive => "its server does not answer: stopped or stuck",
        };
        return Err(ServeError::AlreadyMounted {
            path: mount.to_owned(),
            what: format!("{}: {what}", entry.fstype),
        });
    }
    std::fs::create_dir_all(mount).map_err(|source| ServeError::MountPoint {
        path: mount.to_owned(),
        source,
    })
}
