//! The floor: the least a FUSE file system can do per request, mounted in the same process and
//! with the same mount options and threads as the devfd server, so every devfd figure is a
//! ratio to what FUSE itself costs here and now.
//!
//! Files:
//! * `zero`: `FOPEN_DIRECT_IO`; a read returns zeros from a resident 1 MiB buffer (no
//!   allocation, no copy in the daemon), a write is accepted and dropped.
//! * `pt`: passthrough (the kernel serves it) to a 1 MiB memfd: the floor for mappings.
//! * `poll`: `FOPEN_DIRECT_IO`; `poll` reports `POLLPRI` while a counter is non-zero, an 8-byte
//!   read returns the counter and resets it; [`PollFloor::raise`] counts one event and wakes
//!   the poller through `Notifier::poll`, as the devfd server does for an interrupt.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    BackingId, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, Notifier, OpenFlags, PollEvents,
    PollFlags, PollHandle, PollNotifier, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyPoll, ReplyWrite, Request, SessionACL, WriteFlags,
};

/// Size of the `zero` buffer and of the `pt` memfd.
pub const FLOOR_SIZE: usize = 1 << 20;

const TTL: Duration = Duration::from_secs(3600);
const ZERO: INodeNo = INodeNo(2);
const PT: INodeNo = INodeNo(3);
const POLL: INodeNo = INodeNo(4);
const FILES: [(INodeNo, &str); 3] = [(ZERO, "zero"), (PT, "pt"), (POLL, "poll")];

/// The readiness state of the `poll` file, shared with the producer.
#[derive(Default)]
pub struct PollFloor {
    events: AtomicU64,
    handle: Mutex<Option<PollHandle>>,
    notifier: OnceLock<Notifier>,
}

impl PollFloor {
    /// Counts one event and wakes a waiting poller.
    pub fn raise(&self) {
        self.events.fetch_add(1, Ordering::AcqRel);
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(h), Some(n)) = (handle, self.notifier.get()) {
            let _ = n.poll(h);
        }
    }
}

struct FloorFs {
    zeros: Vec<u8>,
    memfd: OwnedFd,
    backing: OnceLock<BackingId>,
    passthrough: AtomicBool,
    poll: Arc<PollFloor>,
    uid: u32,
    gid: u32,
}

impl FloorFs {
    fn attr(&self, ino: INodeNo) -> Option<FileAttr> {
        let (kind, size, perm) = match ino {
            INodeNo::ROOT => (FileType::Directory, 0, 0o755),
            ZERO => (FileType::RegularFile, 1 << 30, 0o600),
            PT => (FileType::RegularFile, FLOOR_SIZE as u64, 0o600),
            POLL => (FileType::RegularFile, 8, 0o600),
            _ => return None,
        };
        Some(FileAttr {
            ino,
            size,
            blocks: 0,
            atime: SystemTime::UNIX_EPOCH,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            crtime: SystemTime::UNIX_EPOCH,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }
}

impl Filesystem for FloorFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(2).is_ok()
        {
            self.passthrough.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = FILES.iter().find(|(_, n)| OsStr::new(n) == name);
        match found.filter(|_| parent == INodeNo::ROOT) {
            Some((ino, _)) => match self.attr(*ino) {
                Some(a) => reply.entry(&TTL, &a, Generation(0)),
                None => reply.error(Errno::ENOENT),
            },
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino != INodeNo::ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let all = [
            (INodeNo::ROOT, FileType::Directory, "."),
            (INodeNo::ROOT, FileType::Directory, ".."),
        ]
        .into_iter()
        .chain(FILES.iter().map(|&(i, n)| (i, FileType::RegularFile, n)));
        for (i, (ino, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(ino, (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match ino {
            ZERO | POLL => reply.opened(FileHandle(ino.0), FopenFlags::FOPEN_DIRECT_IO),
            PT if self.passthrough.load(Ordering::Acquire) => {
                if self.backing.get().is_none() {
                    match reply.open_backing(self.memfd.as_fd()) {
                        Ok(id) => {
                            let _ = self.backing.set(id);
                        }
                        Err(_) => return reply.error(Errno::EIO),
                    }
                }
                match self.backing.get() {
                    Some(id) => reply.opened_passthrough(FileHandle(3), FopenFlags::empty(), id),
                    None => reply.error(Errno::EIO),
                }
            }
            PT => reply.error(Errno::from_i32(libc::ENODEV)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match ino {
            POLL => reply.data(&self.poll.events.swap(0, Ordering::AcqRel).to_le_bytes()),
            _ => reply.data(&self.zeros[..(size as usize).min(FLOOR_SIZE)]),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.written(data.len() as u32);
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        // Store the handle before checking, as the devfd server does.
        *self
            .poll
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(ph.handle());
        let mut events = PollEvents::POLLIN | PollEvents::POLLOUT;
        if self.poll.events.load(Ordering::Acquire) != 0 {
            events |= PollEvents::POLLPRI;
        }
        reply.poll(events);
    }
}

/// A mounted floor file system; unmounts on drop.
pub struct Floor {
    session: Option<fuser::BackgroundSession>,
    mount: PathBuf,
    /// The `poll` file's state.
    pub poll: Arc<PollFloor>,
}

impl Floor {
    /// Mounts the floor at `mount` with the mount options, ACL and threads of
    /// `devfd_fuse::serve` (so the kernel side of both is configured alike).
    pub fn mount(mount: &Path, threads: usize) -> std::io::Result<Floor> {
        // Written, so the pages are resident rather than the shared zero page that `vec![0; n]`
        // (calloc) would map: reading 1 MiB of one cached page would flatter the floor.
        #[allow(clippy::slow_vector_initialization)]
        let zeros = {
            let mut z = Vec::with_capacity(FLOOR_SIZE);
            z.resize(FLOOR_SIZE, 0u8);
            z
        };
        let poll = Arc::new(PollFloor::default());
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let fs = FloorFs {
            zeros,
            memfd: memfd(FLOOR_SIZE)?,
            backing: OnceLock::new(),
            passthrough: AtomicBool::new(false),
            poll: poll.clone(),
            uid,
            gid,
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("devfd-floor".into()),
            MountOption::Subtype("devfd-floor".into()),
            MountOption::DefaultPermissions,
            MountOption::AutoUnmount,
            MountOption::NoDev,
            MountOption::NoSuid,
            MountOption::NoExec,
        ];
        config.acl = SessionACL::RootAndOwner;
        config.n_threads = Some(threads.max(1));
        config.clone_fd = threads > 1;
        let session = fuser::Session::new(fs, mount, &config)?.spawn()?;
        let _ = poll.notifier.set(session.notifier());
        Ok(Floor {
            session: Some(session),
            mount: mount.to_owned(),
            poll,
        })
    }

    /// The path of one of the floor's files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }

    /// Unmounts and joins the session threads.
    pub fn unmount(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    /// As `devfd_fuse::Server` does: detach the mount and abort its connection (fuser's own
    /// unmount of an auto-unmount mount only closes the socket to fusermount3, which may not
    /// be watching), then join the threads, which now read ENODEV.
    fn shutdown(&mut self) -> std::io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        detach_and_abort(&self.mount);
        session.umount_and_join()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Lazily unmounts `mount` and aborts its FUSE connection through fusectl.
pub fn detach_and_abort(mount: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let minor = std::fs::metadata(mount).ok().map(|m| {
        let dev = m.dev();
        (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
    });
    if let Ok(path) = std::ffi::CString::new(mount.as_os_str().as_bytes()) {
        // SAFETY: a valid NUL-terminated path that outlives the call.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
    if let Some(minor) = minor {
        let _ = std::fs::write(format!("/sys/fs/fuse/connections/{minor}/abort"), b"1");
    }
}

/// A memfd of `size` bytes, every page written (resident).
pub fn memfd(size: usize) -> std::io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and valid flags; the result is checked.
    let fd = unsafe { libc::memfd_create(c"devfd-bench".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nothing else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::os::unix::fs::FileExt::write_all_at(&file, &vec![0x5a; size], 0)?;
    Ok(file.into())
}
