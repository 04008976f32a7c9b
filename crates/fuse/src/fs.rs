//! The FUSE file system: a flat directory of device files and their `D.rN` mmap files.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use devfd_device::{AccessError, ControlField, Device, DeviceError, RegionMap, Subscriber, Target};
use devfd_format::wire::REGION_MMAP;
use fuser::{
    BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, Notifier, OpenAccMode, OpenFlags, PollEvents, PollFlags,
    PollHandle, PollNotifier, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyPoll, ReplyWrite, Request, WriteFlags,
};

use crate::bound::{Pending, Ticket, Watchdog, Wedge};
use crate::overflow::Overflow;
use crate::{ServeError, ServeOptions};

/// Attributes never change while mounted.
const TTL: Duration = Duration::from_secs(3600);
/// Inode numbers: device `i` is `FIRST + i * STRIDE`; its k-th mmap file adds `1 + k`.
const FIRST: u64 = 2;
const STRIDE: u64 = 64;

/// One device access, as `devfd serve --trace` prints it.
#[derive(Debug, Clone)]
pub struct TraceEvent<'a> {
    /// Device file name.
    pub device: &'a str,
    /// Write (else read).
    pub write: bool,
    /// What the access reached, if it resolved.
    pub target: Option<Target>,
    /// File offset.
    pub offset: u64,
    /// Bytes accessed.
    pub len: usize,
    /// The value read or written, for accesses of at most 8 bytes.
    pub value: Option<u64>,
    /// The errno answered, 0 on success.
    pub errno: i32,
}

struct Entry {
    name: String,
    device: Arc<dyn Device>,
    map: RegionMap,
    desc: Vec<u8>,
    /// (region index, offset in the device file, size) of each mmap region.
    mmap_regions: Vec<(u32, u64, u64)>,
    wedged: Arc<Wedge>,
    /// The passthrough backing of each `D.rN`, registered at its first open.
    backings: Vec<Mutex<Option<BackingId>>>,
    /// Serializes calls into the device without parking FUSE threads behind a busy one.
    gate: Mutex<Gate>,
}

/// Whether a thread is inside the device, and the calls waiting for it.
#[derive(Default)]
struct Gate {
    running: bool,
    queue: VecDeque<Work<'static>>,
}

/// A region access waiting to reach the device; its reply is held by the watchdog ticket.
enum Work<'a> {
    Read {
        device: usize,
        index: u32,
        rel: u64,
        offset: u64,
        size: usize,
        target: Target,
        ticket: Ticket,
    },
    Write {
        device: usize,
        index: u32,
        rel: u64,
        offset: u64,
        data: Cow<'a, [u8]>,
        target: Target,
        ticket: Ticket,
    },
}

impl Work<'_> {
    fn device(&self) -> usize {
        match self {
            Work::Read { device, .. } | Work::Write { device, .. } => *device,
        }
    }

    /// Answers a call that will not run (see [`Ticket::abandon`]).
    fn abandon(self, errno: Errno) {
        match self {
            Work::Read { ticket, .. } | Work::Write { ticket, .. } => ticket.abandon(errno),
        }
    }

    fn into_static(self) -> Work<'static> {
        match self {
            Work::Read {
                device,
                index,
                rel,
                offset,
                size,
                target,
                ticket,
            } => Work::Read {
                device,
                index,
                rel,
                offset,
                size,
                target,
                ticket,
            },
            Work::Write {
                device,
                index,
                rel,
                offset,
                data,
                target,
                ticket,
            } => Work::Write {
                device,
                index,
                rel,
                offset,
                data: Cow::Owned(data.into_owned()),
                target,
                ticket,
            },
        }
    }
}

struct OpenFile {
    device: usize,
    subscriber: Arc<Subscriber>,
    poll: Mutex<Option<PollHandle>>,
}

pub(crate) struct Shared {
    devices: Vec<Entry>,
    /// The directory listing (fixed while mounted) and its names, for O(1) lookups.
    listing: Vec<(INodeNo, FileType, String)>,
    names: HashMap<OsString, INodeNo>,
    open: Mutex<HashMap<u64, Arc<OpenFile>>>,
    next_fh: AtomicU64,
    notifier: OnceLock<Notifier>,
    watchdog: Arc<Watchdog>,
    /// FUSE threads, and how many of them are inside device calls now.
    threads: usize,
    inside: AtomicUsize,
    overflow: Overflow,
    trace: Option<crate::TraceSink>,
    perm: u16,
    dir_perm: u16,
    uid: u32,
    gid: u32,
    passthrough: AtomicBool,
}

enum Node {
    Root,
    Device(usize),
    Mmap(usize, usize),
}

impl Shared {
    pub(crate) fn new(
        devices: Vec<(String, Arc<dyn Device>)>,
        options: &mut ServeOptions,
    ) -> Result<Arc<Shared>, ServeError> {
        let mut entries: Vec<Entry> = Vec::with_capacity(devices.len());
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (name, device) in devices {
            // `D.rN` names are the mmap files of device D.
            let region_file = name
                .rsplit_once(".r")
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let bad_name =
                name.is_empty() || name.contains('/') || name.starts_with('.') || region_file;
            if bad_name || !seen.insert(name.clone()) {
                return Err(ServeError::BadName(name));
            }
            let desc = device.description().to_vec();
            let parsed =
                devfd_format::parse(&desc).map_err(|error| ServeError::BadDescription {
                    name: name.clone(),
                    error,
                })?;
            let mmap_regions = parsed
                .regions()
                .filter(|r| r.flags & REGION_MMAP != 0)
                .map(|r| (r.index, r.offset, r.size))
                .collect::<Vec<_>>();
            if mmap_regions.len() >= STRIDE as usize {
                return Err(ServeError::TooManyMmapRegions {
                    name,
                    max: STRIDE as usize - 1,
                });
            }
            let map = RegionMap::new(&parsed);
            let backings = mmap_regions.iter().map(|_| Mutex::new(None)).collect();
            entries.push(Entry {
                backings,
                name,
                device,
                map,
                desc,
                mmap_regions,
                wedged: Arc::new(Wedge::default()),
                gate: Mutex::new(Gate::default()),
            });
        }
        // SAFETY: getuid/getgid cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let listing = listing(&entries);
        let mut names = HashMap::with_capacity(listing.len());
        for (ino, _, name) in listing.iter().skip(2) {
            // The first of two equal names wins, as in the listing.
            names.entry(OsString::from(name)).or_insert(*ino);
        }
        let shared = Arc::new(Shared {
            devices: entries,
            listing,
            names,
            open: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            notifier: OnceLock::new(),
            watchdog: Watchdog::start(options.call_bound),
            threads: options.threads.max(1),
            inside: AtomicUsize::new(0),
            overflow: Overflow::default(),
            trace: options.trace.take(),
            perm: if options.allow_other { 0o666 } else { 0o600 },
            dir_perm: if options.allow_other { 0o755 } else { 0o700 },
            uid,
            gid,
            passthrough: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&shared);
        shared.watchdog.on_timeout(Box::new(move |device| {
            if let Some(s) = weak.upgrade() {
                s.drain(device);
            }
        }));
        for (i, e) in shared.devices.iter().enumerate() {
            let weak = Arc::downgrade(&shared);
            e.device.interrupts().set_waker(move || {
                if let Some(s) = weak.upgrade() {
                    s.wake(i);
                }
            });
        }
        Ok(shared)
    }

    /// The name of the first device file, if any.
    pub(crate) fn first_name(&self) -> Option<&str> {
        self.devices.first().map(|e| e.name.as_str())
    }

    pub(crate) fn set_notifier(&self, notifier: Notifier) {
        let _ = self.notifier.set(notifier);
    }

    /// Wakes the pollers of every open file of device `i`.
    fn wake(&self, i: usize) {
        let Some(notifier) = self.notifier.get() else {
            return;
        };
        let handles: Vec<PollHandle> = self
            .open_files()
            .values()
            .filter(|f| f.device == i)
            .filter_map(|f| f.poll.lock().unwrap_or_else(PoisonError::into_inner).take())
            .collect();
        for h in handles {
            if let Err(e) = notifier.poll(h) {
                log::debug!("poll notification: {e}");
            }
        }
    }

    fn open_files(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<OpenFile>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn node(&self, ino: INodeNo) -> Option<Node> {
        if ino == INodeNo::ROOT {
            return Some(Node::Root);
        }
        let rel = ino.0.checked_sub(FIRST)?;
        let (i, k) = ((rel / STRIDE) as usize, (rel % STRIDE) as usize);
        let entry = self.devices.get(i)?;
        match k {
            0 => Some(Node::Device(i)),
            k if k <= entry.mmap_regions.len() => Some(Node::Mmap(i, k - 1)),
            _ => None,
        }
    }

    fn attr(&self, node: &Node) -> FileAttr {
        let (ino, size, kind, perm) = match *node {
            Node::Root => (INodeNo::ROOT, 0, FileType::Directory, self.dir_perm),
            Node::Device(i) => (
                INodeNo(FIRST + i as u64 * STRIDE),
                self.devices[i].map.end(),
                FileType::RegularFile,
                self.perm,
            ),
            Node::Mmap(i, k) => (
                INodeNo(FIRST + i as u64 * STRIDE + 1 + k as u64),
                self.devices[i].mmap_regions[k].2,
                FileType::RegularFile,
                self.perm,
            ),
        };
        FileAttr {
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
        }
    }

    /// The inode of a name in the root directory.
    fn lookup_name(&self, name: &OsStr) -> Option<INodeNo> {
        self.names.get(name).copied()
    }

    fn trace(&self, event: &TraceEvent<'_>) {
        if let Some(t) = &self.trace {
            t(event);
        }
    }

    /// Performs a read at device-file `offset`, answering `reply` (or letting the watchdog).
    fn read(self: &Arc<Self>, file: &OpenFile, offset: u64, size: usize, reply: ReplyData) {
        let entry = &self.devices[file.device];
        if size == 0 {
            return reply.data(&[]);
        }
        let target = entry.map.resolve(offset, size, false);
        let result: Result<Vec<u8>, AccessError> = match target {
            Err(e) => Err(e),
            Ok(Target::Description { offset, len }) => {
                Ok(entry.desc[offset..offset + len].to_vec())
            }
            Ok(Target::Reset) => Ok(vec![0; 8]),
            Ok(Target::Control {
                index,
                vector,
                field,
            }) => Ok(self.control_read(entry, file, index, vector, field)),
            Ok(Target::Region { index, offset: rel }) => {
                if entry.wedged.is_wedged() {
                    Err(AccessError::Device(devfd_device::DeviceError::Failed))
                } else if let Some(result) = read_shared_memory(entry, index, rel, size) {
                    result
                } else {
                    let ticket =
                        self.watchdog
                            .begin(file.device, Pending::Data(reply), &entry.wedged);
                    return self.submit(Work::Read {
                        device: file.device,
                        index,
                        rel,
                        offset,
                        size,
                        target: Target::Region { index, offset: rel },
                        ticket,
                    });
                }
            }
        };
        self.answer_read(entry, target.ok(), offset, size, result, reply);
    }

    /// Runs `work` now if no call of its device is running, else queues it behind the one
    /// that is (whose thread runs it next). Only one thread is ever inside a device, so a
    /// device that hangs holds one thread; and FUSE threads keep one of their number out of
    /// device calls (calls then run on [`Overflow`] threads), so however many devices hang,
    /// lookups, opens, descriptions and healthy devices stay served.
    fn submit(self: &Arc<Self>, work: Work<'_>) {
        let device = work.device();
        let entry = &self.devices[device];
        {
            let mut gate = entry.gate.lock().unwrap_or_else(PoisonError::into_inner);
            // Checked under the gate: a device that wedges drains its queue under it too,
            // so no call is left queued behind a stuck one.
            if entry.wedged.is_wedged() {
                drop(gate);
                return work.abandon(Errno::EIO);
            }
            if gate.running {
                gate.queue.push_back(work.into_static());
                return;
            }
            gate.running = true;
        }
        let inside = self.inside.fetch_add(1, Ordering::AcqRel) + 1;
        if inside >= self.threads {
            self.inside.fetch_sub(1, Ordering::AcqRel);
            let shared = self.clone();
            let work = work.into_static();
            match self.overflow.run(Box::new(move || shared.drive(work))) {
                Ok(()) => return,
                Err(job) => {
                    log::warn!("no thread for a device call; running it on a FUSE thread");
                    self.inside.fetch_add(1, Ordering::AcqRel);
                    job();
                }
            }
        } else {
            self.drive(work);
        }
        self.inside.fetch_sub(1, Ordering::AcqRel);
    }

    /// Runs `work` and then every call queued for its device meanwhile.
    fn drive(&self, work: Work<'_>) {
        let mut next = self.run(work);
        while let Some(work) = next {
            next = self.run(work);
        }
    }

    /// Answers every call queued for `device` with `EIO`: one of its calls has just timed
    /// out, and the rest would wait for it forever.
    fn drain(&self, device: usize) {
        let Some(entry) = self.devices.get(device) else {
            return;
        };
        let queued: Vec<Work<'static>> = entry
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queue
            .drain(..)
            .collect();
        for work in queued {
            work.abandon(Errno::EIO);
        }
    }

    /// Leaves the device's gate after a call: takes the next queued call for this thread, or
    /// marks the device free. [`Self::run`] does this before it sends the answer: the client
    /// it wakes may preempt this thread (on one CPU it does), and a gate still held then
    /// would queue the client's next call behind this thread, costing two more context
    /// switches per access.
    fn leave_gate(&self, device: usize) -> Option<Work<'static>> {
        let mut gate = self.devices[device]
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let next = gate.queue.pop_front();
        if next.is_none() {
            gate.running = false;
        }
        next
    }

    /// Drops a call that was answered before it could start; returns the next.
    fn skip(&self, device: usize, ticket: Ticket) -> Option<Work<'static>> {
        let reply = self.watchdog.finish(ticket);
        let next = self.leave_gate(device);
        if let Some(reply) = reply {
            reply.error(Errno::EIO);
        }
        next
    }

    /// Performs one region access, leaves the gate and answers the access (unless the
    /// watchdog already has); returns the next queued call, which this thread runs.
    fn run(&self, work: Work<'_>) -> Option<Work<'static>> {
        match work {
            Work::Read {
                device,
                index,
                rel,
                offset,
                size,
                target,
                ticket,
            } => {
                let entry = &self.devices[device];
                if !ticket.start() {
                    return self.skip(device, ticket);
                }
                let mut buf = vec![0u8; size];
                let result = guarded(|| entry.device.read(index, rel, &mut buf))
                    .map(|()| buf)
                    .map_err(AccessError::from);
                let reply = self.watchdog.finish(ticket);
                let next = self.leave_gate(device);
                if let Some(Pending::Data(reply)) = reply {
                    self.answer_read(entry, Some(target), offset, size, result, reply);
                }
                next
            }
            Work::Write {
                device,
                index,
                rel,
                offset,
                data,
                target,
                ticket,
            } => {
                let entry = &self.devices[device];
                if !ticket.start() {
                    return self.skip(device, ticket);
                }
                let result =
                    guarded(|| entry.device.write(index, rel, &data)).map_err(AccessError::from);
                let reply = self.watchdog.finish(ticket);
                let next = self.leave_gate(device);
                if let Some(Pending::Write(reply)) = reply {
                    self.answer_write(entry, Some(target), offset, &data, result, reply);
                }
                next
            }
        }
    }

    fn answer_read(
        &self,
        entry: &Entry,
        target: Option<Target>,
        offset: u64,
        size: usize,
        result: Result<Vec<u8>, AccessError>,
        reply: ReplyData,
    ) {
        // A failed read reports the size asked for, as a failed write does: that is what the
        // errno (EINVAL for a bad width, ENXIO past a region) is about.
        let (len, value, errno) = match &result {
            Ok(b) => (b.len(), small_value(b), 0),
            Err(e) => (size, None, e.errno()),
        };
        self.trace(&TraceEvent {
            device: &entry.name,
            write: false,
            target,
            offset,
            len,
            value,
            errno,
        });
        match result {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => reply.error(Errno::from_i32(e.errno())),
        }
    }

    fn control_read(
        &self,
        entry: &Entry,
        file: &OpenFile,
        index: u32,
        vector: u32,
        field: ControlField,
    ) -> Vec<u8> {
        match field {
            ControlField::Counter => file
                .subscriber
                .take(index, vector)
                .unwrap_or(0)
                .to_le_bytes()
                .to_vec(),
            ControlField::Mask => {
                let masked = entry
                    .device
                    .interrupts()
                    .is_masked(index, vector)
                    .unwrap_or(false);
                u32::from(masked).to_le_bytes().to_vec()
            }
            ControlField::Reserved => entry
                .device
                .interrupts()
                .status(index, vector)
                .unwrap_or(0)
                .to_le_bytes()
                .to_vec(),
        }
    }

    fn write(self: &Arc<Self>, file: &OpenFile, offset: u64, data: &[u8], reply: ReplyWrite) {
        let entry = &self.devices[file.device];
        if data.is_empty() {
            return reply.written(0);
        }
        let target = entry.map.resolve(offset, data.len(), true);
        let result = match target {
            Err(e) => Err(e),
            Ok(Target::Description { .. }) => {
                Err(AccessError::NotPermitted("the description is read-only"))
            }
            Ok(Target::Reset) => match small_value(data) {
                Some(1) if entry.wedged.is_wedged() => {
                    Err(AccessError::Device(devfd_device::DeviceError::Failed))
                }
                Some(1) => guarded(|| {
                    entry.device.reset();
                    Ok(())
                })
                .map_err(AccessError::from),
                value => Err(AccessError::BadValue(value.unwrap_or(0))),
            },
            Ok(Target::Control {
                index,
                vector,
                field,
            }) => {
                let value = u64::from(u32::from_le_bytes(data.try_into().unwrap_or([0xff; 4])));
                match (field, value) {
                    (ControlField::Mask, 0 | 1) => {
                        entry.device.set_irq_mask(index, vector, value == 1);
                        Ok(())
                    }
                    _ => Err(AccessError::BadValue(value)),
                }
            }
            Ok(Target::Region { index, offset: rel }) => {
                if entry.wedged.is_wedged() {
                    Err(AccessError::Device(devfd_device::DeviceError::Failed))
                } else {
                    let ticket =
                        self.watchdog
                            .begin(file.device, Pending::Write(reply), &entry.wedged);
                    return self.submit(Work::Write {
                        device: file.device,
                        index,
                        rel,
                        offset,
                        data: Cow::Borrowed(data),
                        target: Target::Region { index, offset: rel },
                        ticket,
                    });
                }
            }
        };
        self.answer_write(entry, target.ok(), offset, data, result, reply);
    }

    fn answer_write(
        &self,
        entry: &Entry,
        target: Option<Target>,
        offset: u64,
        data: &[u8],
        result: Result<(), AccessError>,
        reply: ReplyWrite,
    ) {
        let errno = result.as_ref().err().map_or(0, AccessError::errno);
        self.trace(&TraceEvent {
            device: &entry.name,
            write: true,
            target,
            offset,
            len: data.len(),
            value: small_value(data),
            errno,
        });
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(Errno::from_i32(e.errno())),
        }
    }
}

/// Runs a device call, turning a panic in the device model into `EIO`.
fn guarded(call: impl FnOnce() -> Result<(), DeviceError>) -> Result<(), DeviceError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|_| {
        log::error!("a device model panicked; answering EIO");
        Err(DeviceError::Failed)
    })
}

/// Reads of at least this many bytes from a region backed by shared memory are served from
/// that memory directly (see [`read_shared_memory`]).
const SHARED_READ_MIN: usize = 4096;

/// A bulk read of an mmap region that the device backs with shared memory, as one `pread` of
/// the memory file: a mapping of that file is coherent with the device (SPEC.md §6.5), so
/// its bytes are the region's, and the kernel copies them far faster than a device model's
/// byte-wise copy. `None` for small reads and for regions without shared memory: the device
/// model serves those.
fn read_shared_memory(
    entry: &Entry,
    index: u32,
    offset: u64,
    size: usize,
) -> Option<Result<Vec<u8>, AccessError>> {
    if size < SHARED_READ_MIN || !entry.mmap_regions.iter().any(|r| r.0 == index) {
        return None;
    }
    let fd = entry.device.shared_memory(index)?;
    let failed = || Err(AccessError::Device(DeviceError::Failed));
    let mut buf: Vec<u8> = Vec::with_capacity(size);
    let mut done = 0;
    while done < size {
        let Some(at) = offset
            .checked_add(done as u64)
            .and_then(|a| libc::off_t::try_from(a).ok())
        else {
            return Some(failed());
        };
        // SAFETY: the destination is the vector's spare capacity from `done` on, which holds
        // `size - done` writable bytes; `fd` is an open descriptor borrowed for the call.
        let n = unsafe {
            libc::pread(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                buf.as_mut_ptr().add(done).cast(),
                size - done,
                at,
            )
        };
        match n {
            n if n > 0 => done += n as usize,
            n if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            // End of the memory before the end of the region, or an error: the device's
            // memory is not what it says.
            _ => return Some(failed()),
        }
    }
    // SAFETY: `pread` initialised all `size` bytes (the loop ends only when `done == size`).
    unsafe { buf.set_len(size) };
    Some(Ok(buf))
}

/// The directory listing: (inode, type, name), `.` and `..` first.
fn listing(devices: &[Entry]) -> Vec<(INodeNo, FileType, String)> {
    let mut list = vec![
        (INodeNo::ROOT, FileType::Directory, ".".to_string()),
        (INodeNo::ROOT, FileType::Directory, "..".to_string()),
    ];
    for (i, e) in devices.iter().enumerate() {
        let base = FIRST + i as u64 * STRIDE;
        list.push((INodeNo(base), FileType::RegularFile, e.name.clone()));
        for (k, (index, _, _)) in e.mmap_regions.iter().enumerate() {
            let name = format!("{}.r{index}", e.name);
            list.push((INodeNo(base + 1 + k as u64), FileType::RegularFile, name));
        }
    }
    list
}

fn small_value(bytes: &[u8]) -> Option<u64> {
    (bytes.len() <= 8).then(|| devfd_device::le_value(bytes))
}

/// The [`Filesystem`] fuser drives.
pub(crate) struct DeviceFs {
    shared: Arc<Shared>,
}

impl DeviceFs {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        DeviceFs { shared }
    }

    fn open_file(&self, fh: FileHandle) -> Option<Arc<OpenFile>> {
        self.shared.open_files().get(&fh.0).cloned()
    }
}

impl Filesystem for DeviceFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Passthrough makes `D.rN` mappings coherent; without it those files still work for
        // reads and writes, and mmap of them fails as SPEC.md §6.5 allows (ENODEV).
        if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(2).is_ok()
        {
            self.shared.passthrough.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent != INodeNo::ROOT {
            return reply.error(Errno::ENOENT);
        }
        match self
            .shared
            .lookup_name(name)
            .and_then(|ino| self.shared.node(ino))
        {
            Some(node) => reply.entry(&TTL, &self.shared.attr(&node), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.shared.node(ino) {
            Some(node) => reply.attr(&TTL, &self.shared.attr(&node)),
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
        for (i, (ino, kind, name)) in self.shared.listing.iter().enumerate().skip(offset as usize) {
            if reply.add(*ino, (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let (device, mmap) = match self.shared.node(ino) {
            Some(Node::Device(i)) => (i, None),
            Some(Node::Mmap(i, k)) => (i, Some(k)),
            Some(Node::Root) => return reply.error(Errno::EISDIR),
            None => return reply.error(Errno::ENOENT),
        };
        let entry = &self.shared.devices[device];
        let fh = self.shared.next_fh.fetch_add(1, Ordering::Relaxed);
        let mut passthrough_allowed = true;
        if let Some(k) = mmap {
            // A passthrough file is the device's memory itself: the kernel would allow any
            // access the open mode allows, so the open mode must match the region's flags,
            // and regions that restrict mapping to sparse areas are not passed through.
            let parsed = devfd_format::parse(&entry.desc).ok();
            let region = parsed.and_then(|d| d.region(entry.mmap_regions[k].0));
            let (readable, writable, sparse) = region.map_or((false, false, true), |r| {
                (r.readable(), r.writable(), r.sparse_areas().is_some())
            });
            let denied = match flags.acc_mode() {
                OpenAccMode::O_RDONLY => !readable,
                OpenAccMode::O_WRONLY => !writable,
                OpenAccMode::O_RDWR => !readable || !writable,
            };
            if denied {
                return reply.error(Errno::EACCES);
            }
            passthrough_allowed = !sparse;
        }
        let file = Arc::new(OpenFile {
            device,
            subscriber: entry.device.interrupts().subscribe(),
            poll: Mutex::new(None),
        });
        // Register the handle before replying: the client may use it the moment it has it.
        self.shared.open_files().insert(fh, file);
        if let Some(k) = mmap
            && passthrough_allowed
            && self.shared.passthrough.load(Ordering::Acquire)
        {
            // One backing per `D.rN`, shared by all its opens for the mount's lifetime: the
            // kernel refuses a second backing for an inode while a file of it is open.
            let mut backing = entry.backings[k]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if backing.is_none()
                && let Some(fd) = entry.device.shared_memory(entry.mmap_regions[k].0)
            {
                match reply.open_backing(fd) {
                    Ok(id) => *backing = Some(id),
                    Err(e) => log::warn!(
                        "passthrough for {}.r{}: {e}",
                        entry.name,
                        entry.mmap_regions[k].0
                    ),
                }
            }
            if let Some(id) = backing.as_ref() {
                // Direct I/O keeps reads and writes with the server, which applies the
                // region's range rules (SPEC.md §6.6); only mappings pass through.
                return reply.opened_passthrough(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO, id);
            }
        }
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO)
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.shared.open_files().remove(&fh.0);
        reply.ok();
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        // Every file here is opened for direct I/O, whose reads carry the caller's lock
        // owner. A read without one fills the page cache: it comes from a MAP_PRIVATE
        // mapping, which cannot be coherent with a device. Refused, so the mapping faults
        // (SIGBUS) instead of reading a page of the description and registers as memory; a
        // short answer would also make the kernel shrink the file for every client.
        if lock_owner.is_none() {
            return reply.error(Errno::EIO);
        }
        let Some(file) = self.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        match self.shared.node(ino) {
            Some(Node::Mmap(i, k)) => {
                // `D.rN` is a window onto the region with the device file's rules: an
                // access not entirely inside the region is ENXIO (SPEC.md §6.6), never short.
                let (_, start, size_r) = self.shared.devices[i].mmap_regions[k];
                if offset.saturating_add(u64::from(size)) > size_r {
                    return reply.error(Errno::from_i32(libc::ENXIO));
                }
                self.shared
                    .read(&file, start + offset, size as usize, reply)
            }
            _ => self.shared.read(&file, offset, size as usize, reply),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(file) = self.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        match self.shared.node(ino) {
            Some(Node::Mmap(i, k)) => {
                let (_, start, size_r) = self.shared.devices[i].mmap_regions[k];
                if offset.saturating_add(data.len() as u64) > size_r {
                    return reply.error(Errno::from_i32(libc::ENXIO));
                }
                self.shared.write(&file, start + offset, data, reply)
            }
            _ => self.shared.write(&file, offset, data, reply),
        }
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let Some(file) = self.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        // Store the handle before checking, so an event between the check and the reply
        // still wakes the poller.
        *file.poll.lock().unwrap_or_else(PoisonError::into_inner) = Some(ph.handle());
        let mut events = PollEvents::POLLIN
            | PollEvents::POLLOUT
            | PollEvents::POLLRDNORM
            | PollEvents::POLLWRNORM;
        if file.subscriber.ready() {
            events |= PollEvents::POLLPRI;
        }
        reply.poll(events);
    }
}
