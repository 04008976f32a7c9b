//! `devfd-bench`: devfd device files over FUSE, each figure a ratio to a raw FUSE floor served
//! by this same process in the same run (see `floor.rs`).
//!
//! ```text
//! devfd-bench [--out FILE] [--only LIST] [--samples N] [--scale N]
//!   --only      comma list of: context, discovery, access, bulk, irq, scale (default: all)
//!   --samples   4-byte accesses per variant (default 20000)
//!   --scale     memory devices for the scale test (default 1000)
//! ```
//!
//! Needs root (it mounts FUSE file systems) and `/dev/fuse`. Every mount is made under a new
//! directory in the temporary directory and unmounted before exit.

mod irqdev;

use std::error::Error;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use devfd_client::{ClientError, DeviceFile};
use devfd_device::Device;
use devfd_fuse::{ServeOptions, Server};

use devfd_bench::affinity::{self, Placement, place, place_with};
use devfd_bench::floor::{FLOOR_SIZE, Floor};
use devfd_bench::report::{Goal, Report, Row, Section};
use devfd_bench::stats::Samples;
use irqdev::IrqDev;

type R<T> = Result<T, Box<dyn Error>>;
/// A comparison phase: its name for `--only`, and what it measures.
type Phase<'a> = (&'a str, &'a dyn Fn(&Mounts) -> R<Section>);

const MIB: usize = 1 << 20;
/// edu BAR0 starts at file offset 0x1000; its register 0 is the identification (0x010000ed).
const EDU_BAR0: u64 = 0x1000;
const EDU_ID: u32 = 0x0100_00ed;
/// The memory device's region 0 starts at file offset 0x1000.
const MEM_REGION: u64 = 0x1000;
/// Threads of the devfd server (`devfd serve` default) and of the matching floor.
const THREADS: usize = 4;

struct Args {
    out: Option<PathBuf>,
    only: Vec<String>,
    samples: usize,
    scale: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: devfd-bench [--out FILE] [--only context,discovery,access,bulk,irq,scale] \
         [--samples N] [--scale N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        out: None,
        only: Vec::new(),
        samples: 20_000,
        scale: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--out" => args.out = Some(value().into()),
            "--only" => args.only = value().split(',').map(str::to_owned).collect(),
            "--samples" => args.samples = value().parse().unwrap_or_else(|_| usage()),
            "--scale" => args.scale = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    args
}

impl Args {
    fn wants(&self, phase: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == phase)
    }
}

/// Everything mounted for the comparison phases.
struct Mounts {
    devfd: Option<Server>,
    floor: Option<Floor>,
    devfd1: Option<Server>,
    floor1: Option<Floor>,
    devfd_dir: PathBuf,
    floor_dir: PathBuf,
    devfd1_dir: PathBuf,
    floor1_dir: PathBuf,
    irq: Arc<IrqDev>,
}

impl Mounts {
    fn new(root: &Path) -> R<Mounts> {
        let dirs: Vec<PathBuf> = ["devfd", "floor", "devfd-1thread", "floor-1thread"]
            .iter()
            .map(|d| root.join(d))
            .collect();
        for d in &dirs {
            std::fs::create_dir(d)?;
        }
        let irq = IrqDev::new()?;
        let devices = |with_irq: bool| -> R<Vec<(String, Arc<dyn Device>)>> {
            let mut v: Vec<(String, Arc<dyn Device>)> = vec![
                ("edu0".into(), devfd_emu::from_spec_str("edu")?),
                ("mem0".into(), devfd_emu::from_spec_str("memory,size=4M")?),
            ];
            if with_irq {
                v.push(("irq0".into(), irq.clone()));
            }
            Ok(v)
        };
        let serve = |dir: &Path, threads: usize, devs| -> R<Server> {
            let mut o = ServeOptions::new(dir);
            o.threads = threads;
            Ok(devfd_fuse::serve(devs, o)?)
        };
        let devfd = serve(&dirs[0], THREADS, devices(true)?)?;
        let floor = Floor::mount(&dirs[1], THREADS)?;
        let devfd1 = serve(&dirs[2], 1, devices(false)?)?;
        let floor1 = Floor::mount(&dirs[3], 1)?;
        for d in &dirs {
            remember_connection(d);
        }
        Ok(Mounts {
            devfd: Some(devfd),
            floor: Some(floor),
            devfd1: Some(devfd1),
            floor1: Some(floor1),
            devfd_dir: dirs[0].clone(),
            floor_dir: dirs[1].clone(),
            devfd1_dir: dirs[2].clone(),
            floor1_dir: dirs[3].clone(),
            irq,
        })
    }

    fn floor(&self) -> &Floor {
        self.floor.as_ref().expect("mounted until unmount")
    }

    /// Unmounts everything; returns every error.
    fn unmount(mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for (name, s) in [
            ("devfd", self.devfd.take()),
            ("devfd-1thread", self.devfd1.take()),
        ] {
            if let Some(Err(e)) = s.map(Server::unmount) {
                errors.push(format!("unmounting {name}: {e}"));
            }
        }
        for (name, f) in [
            ("floor", self.floor.take()),
            ("floor-1thread", self.floor1.take()),
        ] {
            if let Some(Err(e)) = f.map(Floor::unmount) {
                errors.push(format!("unmounting {name}: {e}"));
            }
        }
        for d in [
            &self.devfd_dir,
            &self.floor_dir,
            &self.devfd1_dir,
            &self.floor1_dir,
        ] {
            wait_unmounted(d);
            let _ = std::fs::remove_dir(d);
        }
        errors
    }
}

/// The mount points of this run, for the signal handler.
static MOUNT_POINTS: std::sync::OnceLock<Vec<std::ffi::CString>> = std::sync::OnceLock::new();

/// FUSE connection numbers of this run's mounts (0: unused slot), for the signal handler.
static CONNECTIONS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Records the FUSE connection of the mount at `dir`, so that an interrupted run can abort
/// it: a process that dies while one of its threads waits on its own FUSE server (say, the
/// FLUSH that closing a file at exit sends) would otherwise never finish exiting.
fn remember_connection(dir: &Path) {
    let Some(minor) = connection_of(dir) else {
        return;
    };
    for slot in &CONNECTIONS {
        if slot
            .compare_exchange(0, minor, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
    }
}

/// The FUSE connection number (device minor) of the mount at `dir`, from mountinfo.
fn connection_of(dir: &Path) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dir = dir.to_str()?;
    info.lines().rev().find_map(|line| {
        let f: Vec<&str> = line.split(' ').collect();
        (f.get(4) == Some(&dir) && line.contains(" - fuse"))
            .then(|| f.get(2)?.split_once(':')?.1.parse().ok())
            .flatten()
    })
}

/// Writes `/sys/fs/fuse/connections/N/abort` without allocating (signal-handler safe).
fn abort_connection(n: u64) {
    let mut path = [0u8; 64];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if len < path.len() - 1 {
                path[len] = b;
                len += 1;
            }
        }
    };
    put(b"/sys/fs/fuse/connections/");
    let mut digits = [0u8; 20];
    let (mut i, mut v) = (digits.len(), n);
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b"/abort");
    // SAFETY: `path` is NUL-terminated (zeroed past `len`); open, write and close are
    // async-signal-safe.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY);
        if fd >= 0 {
            libc::write(fd, b"1".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &CONNECTIONS {
        let c = slot.load(Ordering::Acquire);
        if c != 0 {
            abort_connection(c);
        }
    }
    if let Some(points) = MOUNT_POINTS.get() {
        for p in points {
            // SAFETY: umount2 is async-signal-safe; `p` is a valid C string that lives forever.
            unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
        }
        // The mount points, then the run's directory (the last entry); leftovers stay.
        for p in points {
            // SAFETY: rmdir is async-signal-safe; `p` is a valid C string.
            unsafe { libc::rmdir(p.as_ptr()) };
        }
    }
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

/// Aborts and detaches every mount of this run if the benchmark is interrupted (Ctrl-C, kill).
fn unmount_on_signal(root: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let points = [
        "devfd",
        "floor",
        "devfd-1thread",
        "floor-1thread",
        "scale",
        "",
    ]
    .iter()
    .filter_map(|d| {
        let path = if d.is_empty() {
            root.to_owned()
        } else {
            root.join(d)
        };
        std::ffi::CString::new(path.as_os_str().as_bytes()).ok()
    })
    .collect();
    let _ = MOUNT_POINTS.set(points);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only makes async-signal-safe calls.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// Waits (briefly) until `dir` is no longer a mount point: fusermount3 unmounts an
/// auto-unmount mount asynchronously.
fn wait_unmounted(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && is_mount_point(dir) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_mount_point(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let dir = dir.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*dir))
}

/// One operation timed by the caller of [`measure`]: returns its duration in nanoseconds.
type Op<'a> = &'a mut dyn FnMut() -> R<u64>;

/// [`devfd_bench::stats::measure`] over ops of different closure types.
fn measure(warm: usize, rounds: usize, per_round: usize, ops: &mut [Op<'_>]) -> R<Vec<Samples>> {
    devfd_bench::stats::measure(warm, rounds, per_round, ops)
}

fn ns(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn open_rw(path: &Path) -> R<File> {
    Ok(File::options().read(true).write(true).open(path)?)
}

/// `pread` of exactly `buf.len()` bytes, timed.
fn timed_pread(f: &File, buf: &mut [u8], at: u64) -> R<u64> {
    let t = Instant::now();
    let n = f.read_at(buf, at)?;
    let d = ns(t);
    if n != buf.len() {
        return Err(format!("short read: {n} of {} bytes at {at:#x}", buf.len()).into());
    }
    Ok(d)
}

/// A page-aligned buffer of `len` bytes, every page written.
struct Aligned {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let buf = vec![0xa5u8; len + 4096];
        let start = buf.as_ptr().align_offset(4096);
        Aligned { buf, start, len }
    }
    fn get(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Discovery

fn discovery(m: &Mounts) -> R<Section> {
    place(Placement::Pinned)?;
    let edu = m.devfd_dir.join("edu0");
    let zero = m.floor().path("zero");
    let mut sec = Section::new("1. Discovery (pinned, CPU 0)");
    let mut open_dev = || -> R<u64> {
        let t = Instant::now();
        let dev = DeviceFile::open(&edu)?;
        drop(dev);
        Ok(ns(t))
    };
    let mut open_floor = || -> R<u64> {
        let t = Instant::now();
        let f = open_rw(&zero)?;
        let mut b = [0u8; 4];
        let n = f.read_at(&mut b, 0)?;
        drop(f);
        let d = ns(t);
        if n != 4 {
            return Err("floor: short read".into());
        }
        Ok(d)
    };
    let mut s = measure(300, 5, 1000, &mut [&mut open_dev, &mut open_floor])?;
    let (p50d, p50f) = (s[0].p50_us(), s[1].p50_us());
    let (p99d, p99f) = (s[0].p99_us(), s[1].p99_us());
    sec.rows.push(Row::ratio(
        "`DeviceFile::open(edu0)` + close vs open + 4-byte pread + close, p50",
        p50d,
        p50f,
        "µs",
        Goal::RatioAtMost(1.3),
    ));
    sec.rows
        .push(Row::ratio("same, p99", p99d, p99f, "µs", Goal::None));
    let dev = DeviceFile::open(&edu)?;
    sec.notes.push(format!(
        "{} samples each, interleaved in 5 rounds after 300 warm-up opens. devfd: open(O_RDWR), \
         one 4096-byte pread at 0 (the server returns the {}-byte description, so one read is \
         enough), full validation, close. Floor: open(O_RDWR) of the no-op file, one 4-byte \
         pread, close. Both include the FUSE RELEASE that close queues (without waiting for \
         it); lookups are cached \
         (entry TTL 1 h on both).",
        s[0].len(),
        dev.desc_len()
    ));
    Ok(sec)
}

// ---------------------------------------------------------------------------------------------
// 2. 4-byte register access

struct AccessResult {
    devfd: Samples,
    client: Samples,
    floor: Samples,
}

fn access_once(devfd_dir: &Path, floor_dir: &Path, p: Placement, n: usize) -> R<AccessResult> {
    place(p)?;
    let dev = DeviceFile::open(devfd_dir.join("edu0"))?;
    let id = dev.read_u32(0, 0)?;
    if id != EDU_ID {
        return Err(format!("edu ID register reads {id:#x}").into());
    }
    let floor = open_rw(&floor_dir.join("zero"))?;
    let mut b1 = [0u8; 4];
    let mut b2 = [0u8; 4];
    let mut raw = || timed_pread(dev.file(), &mut b1, EDU_BAR0);
    let mut api = || -> R<u64> {
        let t = Instant::now();
        let v = dev.read_u32(0, 0)?;
        let d = ns(t);
        std::hint::black_box(v);
        Ok(d)
    };
    let mut flo = || timed_pread(&floor, &mut b2, 0);
    let rounds = 10;
    let per = n.div_ceil(rounds);
    let mut s = measure(2000, rounds, per, &mut [&mut raw, &mut api, &mut flo])?;
    let floor = s.pop().unwrap_or_default();
    let client = s.pop().unwrap_or_default();
    let devfd = s.pop().unwrap_or_default();
    Ok(AccessResult {
        devfd,
        client,
        floor,
    })
}

fn access(m: &Mounts, samples: usize) -> R<Section> {
    let mut sec = Section::new("2. 4-byte trapped register access (edu BAR0 ID register)");
    let mut a = access_once(&m.devfd_dir, &m.floor_dir, Placement::Pinned, samples)?;
    let (d50, f50) = (a.devfd.p50_us(), a.floor.p50_us());
    sec.rows.push(Row::ratio(
        "pinned, pread 4 B, p50",
        d50,
        f50,
        "µs",
        Goal::RatioAtMost(1.15),
    ));
    let (d99, f99) = (a.devfd.p99_us(), a.floor.p99_us());
    sec.rows.push(Row::ratio(
        "pinned, pread 4 B, p99",
        d99,
        f99,
        "µs",
        Goal::RatioAtMost(1.15),
    ));
    let (c50, c99) = (a.client.p50_us(), a.client.p99_us());
    sec.rows.push(Row::ratio(
        "pinned, `DeviceFile::read_u32`, p50",
        c50,
        f50,
        "µs",
        Goal::None,
    ));
    sec.rows.push(Row::ratio(
        "pinned, `DeviceFile::read_u32`, p99",
        c99,
        f99,
        "µs",
        Goal::None,
    ));
    let n = a.devfd.len();

    let mut one = access_once(&m.devfd1_dir, &m.floor1_dir, Placement::Pinned, samples)?;
    sec.rows.push(Row::ratio(
        "pinned, 1 server thread each, pread 4 B, p50",
        one.devfd.p50_us(),
        one.floor.p50_us(),
        "µs",
        Goal::None,
    ));
    sec.rows.push(Row::ratio(
        "pinned, 1 server thread each, pread 4 B, p99",
        one.devfd.p99_us(),
        one.floor.p99_us(),
        "µs",
        Goal::None,
    ));
    let other = samples.min(10_000);
    let mut variants = vec![
        (Placement::Unpinned, &m.devfd_dir, &m.floor_dir, ""),
        (
            Placement::Unpinned,
            &m.devfd1_dir,
            &m.floor1_dir,
            ", 1 server thread each",
        ),
    ];
    if affinity::cpus() >= 2 {
        variants.insert(0, (Placement::CrossCpu, &m.devfd_dir, &m.floor_dir, ""));
    }
    for (p, devfd_dir, floor_dir, threads) in variants {
        let name = format!("{}{threads}", p.name());
        match access_once(devfd_dir, floor_dir, p, other) {
            Ok(mut x) => {
                sec.rows.push(Row::ratio(
                    format!("{name}, share of accesses slower than 25 µs"),
                    x.devfd.share_above(25_000) * 100.0,
                    x.floor.share_above(25_000) * 100.0,
                    "%",
                    Goal::None,
                ));
                for (q, q_name) in [(0.5, "p50"), (0.99, "p99")] {
                    sec.rows.push(Row::ratio(
                        format!("{name}, pread 4 B, {q_name}"),
                        x.devfd.quantile(q) / 1e3,
                        x.floor.quantile(q) / 1e3,
                        "µs",
                        Goal::None,
                    ));
                }
            }
            Err(e) => sec.rows.push(Row::failed(name, e)),
        }
    }
    place(Placement::Pinned)?;
    sec.notes.push(format!(
        "{n} samples per variant pinned ({other} cross-CPU/unpinned), interleaved in 10 rounds \
         after 2000 warm-up reads each. devfd: `pread(fd, 4, 0x1000)` on edu0 (BAR0 + 0, \
         the ID register, 0x010000ed), through the server's region dispatch, call bound \
         (watchdog) and the edu model; `read_u32` adds the client library's checks. Floor: \
         `pread(fd, 4, 0)` on the no-op file (direct_io). Default rows: {THREADS} server \
         threads with cloned /dev/fuse fds on both sides (`devfd serve` default). \
         \"Slower than 25 µs\" counts the round trips in which client and server thread ran \
         on different CPUs (a wake-up of the other, halted vCPU costs 30–50 µs here)."
    ));
    Ok(sec)
}

// ---------------------------------------------------------------------------------------------
// 3. Bulk and mmap

/// A read-only shared mapping of `len` bytes of `f`.
struct Map {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Map {
    fn new(f: &File, len: usize) -> R<Map> {
        // SAFETY: a new shared read-only mapping of a file at least `len` bytes long.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(Map { ptr, len })
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// memcpy of `len` bytes from `src`, timed.
fn timed_memcpy(src: *const u8, dst: &mut [u8]) -> u64 {
    let t = Instant::now();
    // SAFETY: `src` is a readable mapping of at least `dst.len()` bytes that no Rust reference
    // covers; the benchmark is the only writer of the pages (they hold a fixed pattern).
    unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    std::hint::black_box(&dst);
    ns(t)
}

fn bulk(m: &Mounts, root: &Path) -> R<Section> {
    place(Placement::Pinned)?;
    let mut sec = Section::new("3. Bulk transfer, 1 MiB (pinned)");
    let dev = DeviceFile::open(m.devfd_dir.join("mem0"))?;
    dev.write_bulk(0, 0, &vec![0x5au8; 4 * MIB])?;
    let floor = open_rw(&m.floor().path("zero"))?;
    let mut bd = Aligned::new(MIB);
    let mut bf = Aligned::new(MIB);
    let mut ba = Aligned::new(MIB);
    let mut pread_dev = || timed_pread(dev.file(), bd.get(), MEM_REGION);
    let mut bulk_api = || -> R<u64> {
        let t = Instant::now();
        dev.read_bulk(0, 0, ba.get())?;
        Ok(ns(t))
    };
    let mut pread_floor = || timed_pread(&floor, bf.get(), 0);
    let mut s = measure(
        20,
        5,
        60,
        &mut [&mut pread_dev, &mut bulk_api, &mut pread_floor],
    )?;
    let f = s[2].gbps(MIB);
    sec.rows.push(Row::ratio(
        "pread 1 MiB through the device file (direct_io), median",
        s[0].gbps(MIB),
        f,
        "GB/s",
        Goal::RatioAtLeast(0.8),
    ));
    sec.rows.push(Row::ratio(
        "`DeviceFile::read_bulk` 1 MiB, median",
        s[1].gbps(MIB),
        f,
        "GB/s",
        Goal::None,
    ));
    let n = s[0].len();
    let (tf, td) = (s[2].p50_us(), s[0].p50_us());

    // mmap: mem0.r0 (passthrough to the device's memfd) vs a tmpfs file vs the floor's
    // passthrough file.
    let map = dev.map(0)?;
    if map.len() < MIB {
        return Err("mem0 mapping shorter than 1 MiB".into());
    }
    let shm_dir = Path::new("/dev/shm");
    let tmpfs_path = if shm_dir.is_dir() {
        shm_dir.join(format!("devfd-bench-{}", std::process::id()))
    } else {
        root.join("tmpfs-file")
    };
    let tmpfs = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmpfs_path)?;
    let _ = std::fs::remove_file(&tmpfs_path);
    tmpfs.write_all_at(&vec![0x5au8; MIB], 0)?;
    let tmap = Map::new(&tmpfs, MIB)?;
    let pt = File::open(m.floor().path("pt"));
    let pmap = match &pt {
        Ok(f) => Map::new(f, FLOOR_SIZE).ok(),
        Err(_) => None,
    };
    let mut d1 = Aligned::new(MIB);
    let mut d2 = Aligned::new(MIB);
    let mut d3 = Aligned::new(MIB);
    let mut d4 = Aligned::new(MIB);
    let src_dev = map.as_ptr();
    let src_tmpfs = tmap.ptr.cast::<u8>().cast_const();
    let src_pt = pmap.as_ref().map(|p| p.ptr.cast::<u8>().cast_const());
    let mut mc_dev = || Ok(timed_memcpy(src_dev, d1.get()));
    let mut mc_tmpfs = || Ok(timed_memcpy(src_tmpfs, d2.get()));
    let mut copy_to = || -> R<u64> {
        let t = Instant::now();
        map.copy_to(d3.get(), 0)?;
        Ok(ns(t))
    };
    let mut mc_pt = || Ok(src_pt.map_or(0, |p| timed_memcpy(p, d4.get())));
    let mut s = measure(
        20,
        5,
        60,
        &mut [&mut mc_dev, &mut mc_tmpfs, &mut copy_to, &mut mc_pt],
    )?;
    let t = s[1].gbps(MIB);
    sec.rows.push(Row::ratio(
        "memcpy 1 MiB from `DeviceFile::map` (mem0.r0, passthrough) vs tmpfs mapping, median",
        s[0].gbps(MIB),
        t,
        "GB/s",
        Goal::RatioAtLeast(0.8),
    ));
    if src_pt.is_some() {
        sec.rows.push(Row::ratio(
            "memcpy 1 MiB from mem0.r0 vs the floor's passthrough file mapping, median",
            s[0].gbps(MIB),
            s[3].gbps(MIB),
            "GB/s",
            Goal::None,
        ));
    }
    sec.rows.push(Row::ratio(
        "`Mapping::copy_to` 1 MiB (volatile 8-byte loads) vs memcpy from tmpfs, median",
        s[2].gbps(MIB),
        t,
        "GB/s",
        Goal::None,
    ));
    sec.notes.push(format!(
        "{n} transfers per variant, interleaved in 5 rounds after 20 warm-up ones; GB/s = \
         10⁹ B/s from the median time (devfd pread {td:.0} µs, floor {tf:.0} µs). Buffers are \
         page-aligned and resident. pread: mem0 is `memory,size=4M` (region 0 at file offset \
         0x1000), one 1 MiB request; the floor answers from a resident 1 MiB buffer. mmap: the \
         mapping of mem0.r0 is made by `DeviceFile::map` (the device file itself refuses mmap \
         with ENODEV, so the client maps the passthrough sibling); the tmpfs file is in \
         /dev/shm; all pages faulted in during warm-up."
    ));
    Ok(sec)
}

// ---------------------------------------------------------------------------------------------
// 4. Interrupts

fn poll_pri(fd: RawFd, timeout_ms: i32) -> R<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLPRI,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        return Ok(p.revents & libc::POLLPRI != 0);
    }
}

/// Wake-up latency: a producer thread waits `gap` (so the client is blocked in poll), stamps
/// the time and raises; the client wakes from poll(POLLPRI) and reads the counter.
/// Returns (raise → poll returns, raise → counter read).
fn wake_latency(
    raise: &(dyn Fn() + Sync),
    fd: RawFd,
    read: &mut dyn FnMut() -> R<u64>,
    n: usize,
    gap: Duration,
) -> R<(Samples, Samples)> {
    let base = Instant::now();
    let stamp = AtomicU64::new(0);
    let (ready_tx, ready_rx) = mpsc::channel::<bool>();
    let mut woke = Samples::with_capacity(n);
    let mut read_done = Samples::with_capacity(n);
    std::thread::scope(|s| -> R<()> {
        let stamp_ref = &stamp;
        s.spawn(move || {
            let stamp = stamp_ref;
            // SAFETY: prctl(PR_SET_TIMERSLACK) on the calling thread only.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
            while let Ok(true) = ready_rx.recv() {
                std::thread::sleep(gap);
                stamp.store(ns(base), Ordering::Release);
                raise();
            }
        });
        let result = (|| -> R<()> {
            for _ in 0..n {
                ready_tx.send(true)?;
                if !poll_pri(fd, 2000)? {
                    return Err("no POLLPRI within 2 s".into());
                }
                let t1 = ns(base);
                let events = read()?;
                let t2 = ns(base);
                if events == 0 {
                    return Err("woken with a zero counter".into());
                }
                let t0 = stamp.load(Ordering::Acquire);
                woke.push(t1.saturating_sub(t0));
                read_done.push(t2.saturating_sub(t0));
            }
            Ok(())
        })();
        let _ = ready_tx.send(false);
        result
    })?;
    Ok((woke, read_done))
}

struct Storm {
    raised: u64,
    counted: u64,
    wakeups: u64,
    secs: f64,
}

/// Raises at `rate` per second for `duration` while a client drains the counter with
/// `DeviceFile::wait_interrupt`.
fn storm(irq: &IrqDev, dev: &DeviceFile, rate: u64, duration: Duration) -> R<Storm> {
    let finished = AtomicBool::new(false);
    let raised = AtomicU64::new(0);
    let mut counted = 0u64;
    let mut wakeups = 0u64;
    let mut secs = 0.0;
    std::thread::scope(|s| -> R<()> {
        let producer = s.spawn(|| {
            // SAFETY: prctl(PR_SET_TIMERSLACK) on the calling thread only.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
            let start = Instant::now();
            let mut n = 0u64;
            loop {
                let el = start.elapsed();
                if el >= duration {
                    break;
                }
                let due = (el.as_nanos() * u128::from(rate) / 1_000_000_000) as u64;
                while n < due {
                    irq.raise();
                    n += 1;
                }
                std::thread::sleep(Duration::from_micros(20));
            }
            raised.store(n, Ordering::Release);
            finished.store(true, Ordering::Release);
            start.elapsed().as_secs_f64()
        });
        loop {
            match dev.wait_interrupt(IrqDev::IRQ, Some(Duration::from_millis(50))) {
                Ok(k) => {
                    counted += k;
                    wakeups += 1;
                }
                Err(ClientError::TimedOut) if finished.load(Ordering::Acquire) => break,
                Err(ClientError::TimedOut) => {}
                Err(e) => {
                    finished.store(true, Ordering::Release);
                    return Err(e.into());
                }
            }
        }
        counted += dev.interrupt_count(IrqDev::IRQ, 0)?;
        secs = producer.join().map_err(|_| "producer panicked")?;
        Ok(())
    })?;
    Ok(Storm {
        raised: raised.load(Ordering::Acquire),
        counted,
        wakeups,
        secs,
    })
}

fn interrupts(m: &Mounts) -> R<Section> {
    place(Placement::Pinned)?;
    let mut sec = Section::new("4. Interrupts (pinned, CPU 0)");
    let dev = DeviceFile::open(m.devfd_dir.join("irq0"))?;
    let pollf = open_rw(&m.floor().path("poll"))?;
    let irq = m.irq.clone();
    let fpoll = m.floor().poll.clone();
    let gap = Duration::from_micros(150);
    let (rounds, per, warm) = (4, 500, 100);
    let mut dw = Samples::with_capacity(rounds * per);
    let mut dr = Samples::with_capacity(rounds * per);
    let mut fw = Samples::with_capacity(rounds * per);
    let mut fr = Samples::with_capacity(rounds * per);
    let mut read_dev = || -> R<u64> { Ok(dev.interrupt_count(IrqDev::IRQ, 0)?) };
    let mut read_floor = || -> R<u64> {
        let mut b = [0u8; 8];
        pollf.read_exact_at(&mut b, 0)?;
        Ok(u64::from_le_bytes(b))
    };
    let raise_dev = || irq.raise();
    let raise_floor = || fpoll.raise();
    wake_latency(&raise_dev, dev.as_raw_fd(), &mut read_dev, warm, gap)?;
    wake_latency(&raise_floor, pollf.as_raw_fd(), &mut read_floor, warm, gap)?;
    for _ in 0..rounds {
        let (w, r) = wake_latency(&raise_dev, dev.as_raw_fd(), &mut read_dev, per, gap)?;
        dw.extend(w);
        dr.extend(r);
        let (w, r) = wake_latency(&raise_floor, pollf.as_raw_fd(), &mut read_floor, per, gap)?;
        fw.extend(w);
        fr.extend(r);
    }
    sec.rows.push(Row::ratio(
        "wake-up: raise → poll(POLLPRI) returns → counter read, p50",
        dr.p50_us(),
        fr.p50_us(),
        "µs",
        Goal::RatioAtMost(1.2),
    ));
    sec.rows.push(Row::ratio(
        "same, p99",
        dr.p99_us(),
        fr.p99_us(),
        "µs",
        Goal::None,
    ));
    sec.rows.push(Row::ratio(
        "raise → poll returns (before the read), p50",
        dw.p50_us(),
        fw.p50_us(),
        "µs",
        Goal::None,
    ));
    let n = dr.len();

    for p in [Placement::Pinned, Placement::Unpinned] {
        place(p)?;
        let st = storm(&m.irq, &dev, 100_000, Duration::from_secs(1))?;
        let what = if p == Placement::Pinned {
            "pinned"
        } else {
            "unpinned"
        };
        sec.rows.push(Row::value(
            format!(
                "100k/s for {:.2} s, {what}: lost = raised − counted ({} raised, {:.0}/s; \
                 {} wake-ups, {:.1} events each)",
                st.secs,
                st.raised,
                st.raised as f64 / st.secs,
                st.wakeups,
                st.counted as f64 / st.wakeups.max(1) as f64
            ),
            st.raised as f64 - st.counted as f64,
            "",
            Goal::Equals(0.0),
        ));
    }
    place(Placement::Pinned)?;
    sec.notes.push(format!(
        "Wake-up: {n} samples per side, interleaved in {rounds} rounds after {warm} warm-up. A \
         producer thread (same CPU) waits {} µs so the client is blocked in poll, stamps the \
         time and raises: devfd `Interrupts::raise` on a one-interrupt device in this crate \
         (the server's waker sends `Notifier::poll`), floor: a counter bump and \
         `Notifier::poll` from the no-op file system. Woken, the kernel re-polls the file (one \
         FUSE POLL round trip), then the client reads the 8-byte counter (devfd: \
         `DeviceFile::interrupt_count`; floor: an 8-byte pread that returns and resets the \
         counter). Storm: the producer raises in bursts every ~20 µs at a 100k/s pace; the \
         client loops on `DeviceFile::wait_interrupt` (drain, poll, drain), then drains once \
         more after the producer stops. Counters sum, so every raise must be counted.",
        gap.as_micros()
    ));
    Ok(sec)
}

// ---------------------------------------------------------------------------------------------
// 5. Scale

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The scale server: a child process (`devfd-bench --scale-server N DIR`) that serves `N`
/// memory devices, so its VmRSS is that of a server and nothing else. Protocol on its
/// stdin/stdout: it prints `ready BEFORE_KIB AFTER_KIB SETUP_MS`, answers each `rss` line with
/// its VmRSS in KiB, and unmounts and prints `bye TEARDOWN_MS` at end of input.
fn scale_server(count: usize, dir: &Path) -> R<()> {
    use std::io::{BufRead, Write};
    let before = vm_rss_kib();
    let t = Instant::now();
    let mut devices: Vec<(String, Arc<dyn Device>)> = Vec::with_capacity(count);
    for i in 0..count {
        devices.push((
            format!("mem{i:04}"),
            devfd_emu::from_spec_str("memory,size=4K")?,
        ));
    }
    let server = devfd_fuse::serve(devices, ServeOptions::new(dir))?;
    let setup = t.elapsed();
    // Let the FUSE threads start (and allocate their buffers) before measuring.
    std::thread::sleep(Duration::from_millis(100));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ready {before} {} {:.1}",
        vm_rss_kib(),
        setup.as_secs_f64() * 1e3
    )?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "rss" {
            writeln!(out, "{}", vm_rss_kib())?;
            out.flush()?;
        }
    }
    let t = Instant::now();
    server.unmount()?;
    writeln!(out, "bye {:.1}", t.elapsed().as_secs_f64() * 1e3)?;
    Ok(())
}

struct Child {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Child {
    fn line(&mut self) -> R<String> {
        use std::io::BufRead;
        let mut l = String::new();
        if self.stdout.read_line(&mut l)? == 0 {
            return Err("the scale server exited".into());
        }
        Ok(l.trim().to_owned())
    }

    fn rss_kib(&mut self) -> R<u64> {
        use std::io::Write;
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "rss")?;
        stdin.flush()?;
        Ok(self.line()?.parse()?)
    }

    /// Ends the server: it unmounts; returns its teardown time in ms.
    fn finish(mut self) -> R<f64> {
        drop(self.stdin.take());
        let bye = self.line()?;
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("scale server: {status}").into());
        }
        Ok(bye.strip_prefix("bye ").unwrap_or("0").parse()?)
    }
}

fn scale(root: &Path, count: usize) -> R<Section> {
    place(Placement::Pinned)?;
    let mut sec = Section::new(format!(
        "5. Scale: {count} memory devices of 4 KiB (pinned)"
    ));
    let dir = root.join("scale");
    std::fs::create_dir(&dir)?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("--scale-server")
        .arg(count.to_string())
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut proc = cmd.spawn()?;
    let stdin = proc.stdin.take();
    let stdout = proc.stdout.take().ok_or("no stdout")?;
    let mut child = Child {
        child: proc,
        stdin,
        stdout: std::io::BufReader::new(stdout),
    };
    let pid = child.child.id();
    let result = (|| -> R<()> {
        let ready = child.line()?;
        let f: Vec<f64> = ready
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [before, after_serve, setup_ms] = f[..] else {
            return Err(format!("scale server said {ready:?}").into());
        };
        remember_connection(&dir);
        place_with(Placement::Pinned, &[pid])?;
        let t = Instant::now();
        let list = devfd_client::list(&dir)?;
        let cold = t.elapsed();
        let ok = list.iter().filter(|(_, d)| d.is_ok()).count();
        if list.len() != count || ok != count {
            return Err(format!("list found {} files, {ok} opened", list.len()).into());
        }
        let while_open = child.rss_kib()?;
        drop(list);
        let mut warm = Samples::with_capacity(5);
        for _ in 0..5 {
            let t = Instant::now();
            let list = devfd_client::list(&dir)?;
            warm.since(t);
            std::hint::black_box(&list);
        }
        let after = child.rss_kib()?;
        let mib = |kib: f64| kib / 1024.0;
        sec.rows.push(Row::value(
            format!(
                "server VmRSS with {count} devices (start {:.1} MiB, mounted {:.1} MiB, \
                 while `list` held all {count} open {:.1} MiB), after the lists",
                mib(before),
                mib(after_serve),
                mib(while_open as f64)
            ),
            mib(after.max(while_open) as f64),
            "MiB",
            Goal::AtMost(64.0, "MiB"),
        ));
        sec.rows.push(Row::value(
            format!("`devfd_client::list` over {count} files, first (cold dentries)"),
            cold.as_secs_f64() * 1e3,
            "ms",
            Goal::AtMost(50.0, "ms"),
        ));
        sec.rows.push(Row::value(
            "`devfd_client::list`, warm, median of 5",
            warm.p50_ms(),
            "ms",
            Goal::AtMost(50.0, "ms"),
        ));
        place_with(Placement::Unpinned, &[pid])?;
        let mut un = Samples::with_capacity(5);
        for _ in 0..5 {
            let t = Instant::now();
            std::hint::black_box(devfd_client::list(&dir)?);
            un.since(t);
        }
        place_with(Placement::Pinned, &[pid])?;
        sec.rows.push(Row::value(
            "`devfd_client::list`, warm, unpinned, median of 5",
            un.p50_ms(),
            "ms",
            Goal::None,
        ));
        match std::env::current_exe()?.parent().map(|p| p.join("devfd")) {
            Some(cli) if cli.is_file() => {
                let mut runs = Samples::with_capacity(3);
                for _ in 0..3 {
                    let t = Instant::now();
                    let st = std::process::Command::new(&cli)
                        .arg("ls")
                        .arg(&dir)
                        .stdout(std::process::Stdio::null())
                        .status()?;
                    runs.since(t);
                    if !st.success() {
                        return Err(format!("{} ls: {st}", cli.display()).into());
                    }
                }
                sec.rows.push(Row::value(
                    "`target/release/devfd ls DIR` (a new process each), warm, median of 3",
                    runs.p50_ms(),
                    "ms",
                    Goal::AtMost(50.0, "ms"),
                ));
            }
            _ => sec.notes.push(
                "`target/release/devfd` is not built, so the `devfd ls` command was not timed \
                 (`cargo build --release -p devfd`, then rerun)."
                    .into(),
            ),
        }
        sec.notes.push(format!(
            "The devices live in a separate server process (this binary re-executed as \
             `--scale-server`), so its VmRSS (from /proc/PID/status) is a server's alone: \
             {count} × `devfd_emu::from_spec_str(\"memory,size=4K\")` (a sealed memfd and its \
             mapping each) served by one `devfd_fuse::serve` ({THREADS} threads); making and \
             mounting them took {setup_ms:.0} ms. `list` opens every file read-only and reads \
             its description, as `devfd ls` does; the first call looks every name up (the \
             kernel caches entries for 1 h after that)."
        ));
        Ok(())
    })();
    if let Err(e) = result {
        sec.rows.push(Row::failed("scale", e));
    }
    match child.finish() {
        Ok(ms) => sec
            .notes
            .push(format!("Unmounting the {count} devices took {ms:.0} ms.")),
        Err(e) => sec.rows.push(Row::failed("scale server teardown", e)),
    }
    wait_unmounted(&dir);
    let _ = std::fs::remove_dir(&dir);
    Ok(sec)
}

// ---------------------------------------------------------------------------------------------
// 0. Machine context

fn context(root: &Path) -> R<Section> {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    place(Placement::Pinned)?;
    let mut sec = Section::new("0. This machine now (pinned, kernel only; no FUSE)");
    let path = root.join("tmpfs-probe");
    let on_shm = Path::new("/dev/shm").join(format!("devfd-bench-probe-{}", std::process::id()));
    let p = if Path::new("/dev/shm").is_dir() {
        on_shm
    } else {
        path
    };
    let f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)?;
    let _ = std::fs::remove_file(&p);
    f.write_all_at(&[1u8; 4096], 0)?;
    let mut b = [0u8; 4];
    let mut tmpfs = || timed_pread(&f, &mut b, 0);
    let (mut a, mut bsock) = UnixStream::pair()?;
    let echo = std::thread::spawn(move || {
        let mut m = [0u8; 16];
        while bsock.read_exact(&mut m).is_ok() {
            if bsock.write_all(&m).is_err() {
                break;
            }
        }
    });
    let mut msg = [7u8; 16];
    let mut sock = || -> R<u64> {
        let t = Instant::now();
        a.write_all(&msg)?;
        a.read_exact(&mut msg)?;
        Ok(ns(t))
    };
    let mut s = measure(1000, 4, 2500, &mut [&mut tmpfs, &mut sock])?;
    drop(a);
    let _ = echo.join();
    for (name, x) in [
        ("tmpfs pread 4 B", 0),
        ("Unix socket 16-byte round trip (two threads)", 1),
    ] {
        sec.rows.push(Row::value(
            format!("{name}, p50 / p99 {:.2} µs", s[x].p99_us()),
            s[x].p50_us(),
            "µs",
            Goal::None,
        ));
    }
    sec.notes.push(
        "For comparison with TESTBEDS.md §2 (tmpfs pread 0.15 µs, Unix socket 3.0 µs median when \
         measured there): the same probes in this run show how fast this VM switches tasks \
         today; FUSE figures scale with it, which is why every devfd figure below is a ratio to \
         a floor from this run."
            .into(),
    );
    Ok(sec)
}

// ---------------------------------------------------------------------------------------------

fn header(report: &mut Report) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    report.header.push(format!(
        "Run by `scripts/bench` (`devfd-bench`, release build) on {} CPUs ({cpu}), Linux \
         {kernel}, fuser 0.18, commit {commit}{}, load average at start {load}. Every ratio is devfd ÷ a raw FUSE floor \
         (a no-op fuser file system in `crates/bench/src/floor.rs`) mounted by the same \
         process with the same mount options and server threads, measured in the same run, \
         interleaved. Latencies are pinned (every thread of the process on CPU 0, \
         TESTBEDS.md §2) unless a row says otherwise. Unpinned and cross-CPU rows depend on \
         what else runs: an idle vCPU halts, and waking it costs 30–50 µs; on a busy machine \
         it does not halt.",
        affinity::cpus(),
        if dirty { " + uncommitted changes" } else { "" }
    ));
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--scale-server") {
        let count = argv
            .get(2)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| usage());
        let dir = argv.get(3).map(PathBuf::from).unwrap_or_else(|| usage());
        if let Err(e) = scale_server(count, &dir) {
            eprintln!("devfd-bench --scale-server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = parse_args();
    let _ = affinity::cpus();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("devfd-bench: needs root (it mounts FUSE file systems)");
        std::process::exit(2);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let root = std::env::temp_dir().join(format!("devfd-bench-{}-{nanos}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&root) {
        eprintln!("devfd-bench: {}: {e}", root.display());
        std::process::exit(1);
    }
    unmount_on_signal(&root);
    let started = Instant::now();
    let mut report = Report::default();
    header(&mut report);
    let mut failed = false;

    if args.wants("context") {
        match context(&root) {
            Ok(s) => report.sections.push(s),
            Err(e) => {
                failed = true;
                let mut s = Section::new("context: not measured");
                s.rows.push(Row::failed("context", e));
                report.sections.push(s);
            }
        }
    }
    let comparison = ["discovery", "access", "bulk", "irq"]
        .iter()
        .any(|p| args.wants(p));
    if comparison {
        match Mounts::new(&root) {
            Ok(m) => {
                let phases: [Phase<'_>; 4] = [
                    ("discovery", &discovery),
                    ("access", &|m| access(m, args.samples)),
                    ("bulk", &|m| bulk(m, &root)),
                    ("irq", &interrupts),
                ];
                for (name, phase) in phases {
                    if !args.wants(name) {
                        continue;
                    }
                    eprintln!("devfd-bench: {name}…");
                    match phase(&m) {
                        Ok(s) => report.sections.push(s),
                        Err(e) => {
                            failed = true;
                            let mut s = Section::new(format!("{name}: not measured"));
                            s.rows.push(Row::failed(name, e));
                            report.sections.push(s);
                        }
                    }
                }
                let _ = place(Placement::Unpinned);
                for e in m.unmount() {
                    failed = true;
                    eprintln!("devfd-bench: {e}");
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("devfd-bench: mounting: {e}");
            }
        }
    }
    if args.wants("scale") {
        eprintln!("devfd-bench: scale…");
        match scale(&root, args.scale) {
            Ok(s) => report.sections.push(s),
            Err(e) => {
                failed = true;
                let mut s = Section::new("scale: not measured");
                s.rows.push(Row::failed("scale", e));
                report.sections.push(s);
            }
        }
    }
    let _ = place(Placement::Unpinned);
    // Empty mount points left by a phase that failed early, then the run's directory.
    if let Ok(dirs) = std::fs::read_dir(&root) {
        for d in dirs.flatten() {
            if !is_mount_point(&d.path()) {
                let _ = std::fs::remove_dir(d.path());
            }
        }
    }
    let _ = std::fs::remove_dir(&root);
    report.header.push(format!(
        "\nWhole run: {:.1} s.",
        started.elapsed().as_secs_f64()
    ));
    let md = report.markdown();
    print!("{md}");
    if let Some(out) = &args.out
        && let Err(e) = std::fs::write(out, &md)
    {
        eprintln!("devfd-bench: {}: {e}", out.display());
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
}
