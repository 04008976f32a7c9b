//! The server under faults and hostile use (issue 11), against a real mount: devices that hang,
//! stall, panic or storm (`devfd_emu::Faulty`), several client *processes* at once, mappings the
//! server cannot honour, and the edges of the file offset space.
//!
//! Clients that must be separate processes re-run this test binary with `FAULTS_CHILD` set;
//! the `child` test then performs one client action and exits with its result.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use devfd_device::Device;
use devfd_emu::{FaultControl, FaultOptions, Faulty, Memory, MemoryOptions};
use devfd_fuse::{ServeOptions, serve};

const REGS: u64 = 0x1000;

struct Mounted {
    dir: PathBuf,
    server: Option<devfd_fuse::Server>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn mount(name: &str, devices: Vec<(&str, Arc<dyn Device>)>, bound: Duration) -> Mounted {
    let dir = std::env::temp_dir().join(format!("devfd-faults-{}-{name}", std::process::id()));
    let mut opts = ServeOptions::new(&dir);
    opts.call_bound = bound;
    let devices = devices
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
    let server = serve(devices, opts).expect("mount (needs root and /dev/fuse)");
    Mounted {
        dir,
        server: Some(server),
    }
}

fn faulty(options: FaultOptions) -> (Arc<dyn Device>, FaultControl) {
    let d = Faulty::new(options).unwrap();
    let control = d.control();
    (Arc::new(d), control)
}

fn open(dir: &Path, name: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(name))
        .unwrap()
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("the access should fail")
        .raw_os_error()
        .unwrap()
}

fn read_u64(f: &File, at: u64) -> u64 {
    let mut b = [0u8; 8];
    assert_eq!(f.read_at(&mut b, at).unwrap(), 8);
    u64::from_le_bytes(b)
}

/// Starts this test binary as a client process doing `action` (see [`child`]).
fn spawn_child(action: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("FAULTS_CHILD", action)
        .env("FAULTS_ARGS", args.join("\u{1f}"))
        .spawn()
        .unwrap()
}

fn wait_ok(children: Vec<Child>) {
    for mut c in children {
        let status = c.wait().unwrap();
        assert!(status.success(), "a client process failed: {status}");
    }
}

/// The client side of the tests, in its own process; a no-op without `FAULTS_CHILD`.
#[test]
fn child() {
    let Ok(action) = std::env::var("FAULTS_CHILD") else {
        return;
    };
    let args: Vec<String> = std::env::var("FAULTS_ARGS")
        .unwrap_or_default()
        .split('\u{1f}')
        .map(str::to_owned)
        .collect();
    match action.as_str() {
        // Opens and maps a `D.rN` file `rounds` times, writing `id` into slot `id`.
        "map" => {
            let (path, id, rounds): (&str, u64, u64) =
                (&args[0], args[1].parse().unwrap(), args[2].parse().unwrap());
            for round in 0..rounds {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .unwrap();
                // SAFETY: a fresh shared mapping of 4096 bytes of an open file, unmapped below.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        4096,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        f.as_raw_fd(),
                        0,
                    )
                };
                assert_ne!(
                    p,
                    libc::MAP_FAILED,
                    "mmap: {}",
                    std::io::Error::last_os_error()
                );
                let slot = p.cast::<u64>().wrapping_add(id as usize);
                // SAFETY: slot `id` < 512 lies inside the mapping.
                unsafe { slot.write_volatile(round + 1) };
                std::thread::sleep(Duration::from_millis(2));
                // SAFETY: the mapping made above.
                unsafe { libc::munmap(p, 4096) };
            }
        }
        // Reads a register of a device file and expects success.
        "read" => {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&args[0])
                .unwrap();
            let mut b = [0u8; 8];
            f.read_at(&mut b, args[1].parse().unwrap()).unwrap();
        }
        // Maps a device file MAP_PRIVATE and touches it: the server refuses to fill it.
        "private" => {
            let f = File::open(&args[0]).unwrap();
            // SAFETY: a fresh private mapping of one page, only read below.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    f.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            // SAFETY: inside the mapping; the kernel raises SIGBUS if the server refuses it.
            let v = unsafe { p.cast::<u8>().read_volatile() };
            println!("read {v} through a private mapping");
        }
        // Runs as another user with an inherited device-file fd (the broker pattern).
        "passed" => {
            let fd: i32 = args[0].parse().unwrap();
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN | libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            assert_eq!(unsafe { libc::poll(&mut pfd, 1, 2000) }, 1);
            assert_eq!(pfd.revents & libc::POLLERR, 0, "revents {:#x}", pfd.revents);
            assert_ne!(pfd.revents & libc::POLLPRI, 0, "revents {:#x}", pfd.revents);
            // SAFETY: `fd` was inherited open; ManuallyDrop keeps it open for the parent.
            let f = std::mem::ManuallyDrop::new(unsafe {
                <File as std::os::fd::FromRawFd>::from_raw_fd(fd)
            });
            assert!(f.metadata().unwrap().len() > 0x2000);
            assert_eq!(read_u64(&f, 0x2000), 1);
            // The name itself stays the owner's.
            let denied = std::fs::metadata(&args[1]).unwrap_err();
            assert_eq!(denied.raw_os_error(), Some(libc::EACCES), "{denied}");
        }
        // A mixed load from one of several processes: registers of the fault device, bulk
        // accesses and a shared mapping of the memory device, each checked as it goes.
        "mixed" => {
            let (dir, id, rounds): (&str, u64, u64) =
                (&args[0], args[1].parse().unwrap(), args[2].parse().unwrap());
            let dev = devfd_client::DeviceFile::open(Path::new(dir).join("f0")).unwrap();
            let mem = devfd_client::DeviceFile::open(Path::new(dir).join("mem0")).unwrap();
            let map = mem.map(0).unwrap();
            let base = id * 4096;
            let mut buf = vec![0u8; 512];
            for i in 0..rounds {
                let value = (id << 48) | i;
                dev.write_u64(0, 8 * id, value).unwrap();
                assert_eq!(dev.read_u64(0, 8 * id).unwrap(), value, "register of {id}");
                let fill = (i as u8) ^ (id as u8);
                mem.write_bulk(0, base, &vec![fill; 512]).unwrap();
                mem.read_bulk(0, base, &mut buf).unwrap();
                assert!(buf.iter().all(|&b| b == fill), "bulk of {id} round {i}");
                assert_eq!(map.read_u8(base as usize + 511).unwrap(), fill);
                map.write_u64(base as usize + 1024, value).unwrap();
                assert_eq!(mem.read_u64(0, base + 1024).unwrap(), value);
            }
        }
        other => panic!("unknown child action {other}"),
    }
    std::process::exit(0);
}

/// Defect 1: every open of a `D.rN` used to register its own passthrough backing, and the
/// kernel refused the second while the first was open (EIO).
#[test]
fn mmap_files_admit_many_processes_at_once() {
    let mem = Memory::new(MemoryOptions {
        size: 1 << 16,
        ..Default::default()
    })
    .unwrap();
    let m = mount(
        "mmap-many",
        vec![("mem0", Arc::new(mem))],
        Duration::from_secs(1),
    );
    let path = m.dir.join("mem0.r0");
    let path = path.to_str().unwrap();
    let children: Vec<Child> = (0..8)
        .map(|id| spawn_child("map", &[path, &id.to_string(), "40"]))
        .collect();
    wait_ok(children);
    // Every process's last store is in the device's memory.
    let f = open(&m.dir, "mem0");
    for id in 0..8u64 {
        assert_eq!(read_u64(&f, 0x1000 + 8 * id), 40, "slot {id}");
    }
}

/// Defect 2: as many hung calls as FUSE threads used to stall every request of the mount.
#[test]
fn hung_devices_leave_the_mount_and_healthy_devices_served() {
    let mut devices = Vec::new();
    let mut controls = Vec::new();
    let names = ["hung0", "hung1", "hung2", "hung3", "hung4", "hung5"];
    for name in names {
        let (d, c) = faulty(FaultOptions {
            hang: Some(Duration::MAX),
            ..Default::default()
        });
        devices.push((name, d));
        controls.push(c);
    }
    let (healthy, healthy_control) = faulty(FaultOptions::default());
    devices.push(("ok0", healthy));
    // A bound far longer than the test: the hung calls stay inside their devices throughout.
    let m = mount("hung", devices, Duration::from_secs(600));
    let hangers: Vec<_> = names
        .iter()
        .map(|name| {
            let f = open(&m.dir, name);
            std::thread::spawn(move || {
                let mut b = [0u8; 8];
                f.read_at(&mut b, REGS).map(drop)
            })
        })
        .collect();
    while controls.iter().any(|c| c.started() == 0) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Six devices hang, more than the four FUSE threads; the mount answers everything else.
    let listed = std::fs::read_dir(&m.dir).unwrap().count();
    assert_eq!(listed, 7);
    let ok = open(&m.dir, "ok0");
    ok.write_at(&7u64.to_le_bytes(), REGS).unwrap();
    assert_eq!(read_u64(&ok, REGS), 7);
    let mut head = [0u8; 12];
    open(&m.dir, "hung0").read_at(&mut head, 0).unwrap();
    assert_eq!(&head[..3], b"DFD");
    assert!(std::fs::metadata(m.dir.join("hung5")).is_ok());
    // ...and it did so while every hung call was still inside its device.
    assert!(controls.iter().all(|c| c.completed() == 0));
    assert_eq!(healthy_control.completed(), 2);
    for c in &controls {
        c.release();
    }
    for h in hangers {
        h.join().unwrap().unwrap();
    }
}

/// Defect 3: the bound counted time spent queued behind another call of the same device.
#[test]
fn queued_calls_are_not_timed_while_they_wait() {
    let (d, control) = faulty(FaultOptions {
        delay: Duration::from_millis(600),
        ..Default::default()
    });
    let m = mount("queue", vec![("slow0", d)], Duration::from_secs(1));
    let path = m.dir.join("slow0");
    let path = path.to_str().unwrap();
    // Three processes at once: the last waits 1.2 s in the queue, each call takes 0.6 s.
    let children = (0..3)
        .map(|_| spawn_child("read", &[path, &REGS.to_string()]))
        .collect();
    wait_ok(children);
    assert_eq!(control.completed(), 3);
    // The device never stalled, so it is not treated as stuck.
    control.set_delay(Duration::ZERO);
    assert_eq!(read_u64(&open(&m.dir, "slow0"), REGS), 0);
}

/// Defect 3: a call answered before it started must never take effect afterwards.
#[test]
fn a_call_answered_while_queued_never_runs() {
    let (d, control) = faulty(FaultOptions::default());
    let m = mount("answered", vec![("f0", d)], Duration::from_millis(300));
    control.hang();
    let first = {
        let f = open(&m.dir, "f0");
        std::thread::spawn(move || f.write_at(&1u64.to_le_bytes(), REGS + 0x10))
    };
    while control.started() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = {
        let f = open(&m.dir, "f0");
        std::thread::spawn(move || f.write_at(&2u64.to_le_bytes(), REGS + 0x18))
    };
    // The running call times out; the queued one is answered EIO and dropped.
    assert_eq!(errno(first.join().unwrap()), libc::ETIMEDOUT);
    assert_eq!(errno(second.join().unwrap()), libc::EIO);
    control.release();
    while control.completed() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    let f = open(&m.dir, "f0");
    // The timed-out call was inside the device and completed (ETIMEDOUT: outcome unknown);
    // the queued call never reached it.
    assert_eq!(read_u64(&f, REGS + 0x10), 1);
    assert_eq!(read_u64(&f, REGS + 0x18), 0);
    assert_eq!(control.started(), 3);
}

/// A device model that panics answers EIO and stays served.
#[test]
fn a_panicking_device_answers_eio_and_recovers() {
    let (d, control) = faulty(FaultOptions {
        panic: true,
        ..Default::default()
    });
    let m = mount("panic", vec![("p0", d)], Duration::from_secs(1));
    let f = open(&m.dir, "p0");
    let mut b = [0u8; 8];
    assert_eq!(errno(f.read_at(&mut b, REGS)), libc::EIO);
    control.set_panic(false);
    f.write_at(&5u64.to_le_bytes(), REGS).unwrap();
    assert_eq!(read_u64(&f, REGS), 5);
}

/// An interrupt storm is counted exactly and wakes a poller.
#[test]
fn an_interrupt_storm_loses_no_event() {
    let (d, _) = faulty(FaultOptions::default());
    let m = mount("storm", vec![("s0", d)], Duration::from_secs(5));
    let f = open(&m.dir, "s0");
    for _ in 0..10 {
        f.write_at(&100_000u64.to_le_bytes(), REGS + 0xf8).unwrap();
    }
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 1000) }, 1);
    assert_eq!(read_u64(&f, 0x2000), 1_000_000);
}

/// Defect 5: a region may end just below 2^63 and is served there.
#[test]
fn a_region_at_the_end_of_the_offset_space_is_served() {
    let end = (1u64 << 63) - 8;
    let (d, _) = faulty(FaultOptions {
        high_end: Some(end),
        ..Default::default()
    });
    let m = mount("high", vec![("h0", d)], Duration::from_secs(1));
    assert_eq!(std::fs::metadata(m.dir.join("h0")).unwrap().len(), end);
    let f = open(&m.dir, "h0");
    f.write_at(&0xfeedu64.to_le_bytes(), end - 8).unwrap();
    assert_eq!(read_u64(&f, end - 8), 0xfeed);
    let mut b = [0u8; 16];
    // Past the region: ENXIO from the server, or EINVAL from the kernel where the end would
    // pass 2^63 - 1 (SPEC.md §6.6).
    assert_eq!(errno(f.read_at(&mut b[..12], end - 8)), libc::ENXIO);
    assert_eq!(errno(f.read_at(&mut b[..4], end)), libc::ENXIO);
    // [end, end + 8) would end at 2^63: the kernel refuses it before the server sees it.
    assert_eq!(errno(f.read_at(&mut b[..8], end)), libc::EINVAL);
    // A client sees it like any other device.
    let dev = devfd_client::DeviceFile::open(m.dir.join("h0")).unwrap();
    assert_eq!(dev.read_u64(1, 0x38).unwrap(), 0xfeed);
}

/// Defect 6: `D.rN` follows the device file's range rules: no short reads or writes.
#[test]
fn mmap_files_refuse_accesses_past_the_region() {
    let mem = Memory::new(MemoryOptions {
        size: 8192,
        ..Default::default()
    })
    .unwrap();
    let m = mount(
        "rn-range",
        vec![("mem0", Arc::new(mem))],
        Duration::from_secs(1),
    );
    let f = open(&m.dir, "mem0.r0");
    assert_eq!(f.metadata().unwrap().len(), 8192);
    let data = [0xabu8; 16];
    assert_eq!(errno(f.write_at(&data, 8192 - 8)), libc::ENXIO);
    let mut b = [0u8; 16];
    assert_eq!(errno(f.read_at(&mut b, 8192 - 8)), libc::ENXIO);
    assert_eq!(errno(f.read_at(&mut b, 8192)), libc::ENXIO);
    // Nothing was written by the refused write.
    assert_eq!(read_u64(&open(&m.dir, "mem0"), 0x1000 + 8192 - 8), 0);
    // Accesses inside work, and land in the device's memory.
    assert_eq!(f.write_at(&data, 8192 - 16).unwrap(), 16);
    assert_eq!(f.read_at(&mut b, 8192 - 16).unwrap(), 16);
    assert_eq!(b, data);
    assert_eq!(
        read_u64(&open(&m.dir, "mem0"), 0x1000 + 8192 - 8),
        0xabab_abab_abab_abab
    );
}

/// Defect 11: a MAP_PRIVATE mapping of a device file faults on touch and cannot shrink the
/// file for other clients.
#[test]
fn a_private_mapping_faults_and_leaves_the_file_intact() {
    let (d, _) = faulty(FaultOptions::default());
    let m = mount("private", vec![("f0", d)], Duration::from_secs(1));
    let path = m.dir.join("f0");
    let size = std::fs::metadata(&path).unwrap().len();
    let status = spawn_child("private", &[path.to_str().unwrap()])
        .wait()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let dev = devfd_client::DeviceFile::open(&path).unwrap();
    dev.write_u64(0, 0, 9).unwrap();
    assert_eq!(dev.read_u64(0, 0).unwrap(), 9);
}

/// Defect 12: an fd opened by the owner and passed to another user polls and fstats like
/// the owner's, while the names stay the owner's.
#[test]
fn an_fd_passed_to_another_user_works_like_the_owners() {
    use std::os::unix::process::CommandExt;
    let (d, _) = faulty(FaultOptions::default());
    let m = mount("passed", vec![("f0", d)], Duration::from_secs(1));
    let f = open(&m.dir, "f0");
    f.write_at(&1u64.to_le_bytes(), REGS + 0xf8).unwrap();
    let fd = f.as_raw_fd();
    let path = m.dir.join("f0");
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("FAULTS_CHILD", "passed")
        .env(
            "FAULTS_ARGS",
            format!("{fd}\u{1f}{}", path.to_str().unwrap()),
        )
        .uid(65534)
        .gid(65534);
    // SAFETY: fcntl is async-signal-safe; it clears close-on-exec on the fd to hand over.
    unsafe {
        child.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let status = child.status().unwrap();
    assert!(status.success(), "{status}");
}

/// Defect 7: an access over 1 MiB reaches the server in pieces; the client library checks the
/// whole access first, so one that runs past the region fails with no effect.
#[test]
fn a_large_access_past_a_region_fails_whole_through_the_client() {
    let size = 4u64 << 20;
    let mem = Memory::new(MemoryOptions {
        size,
        ..Default::default()
    })
    .unwrap();
    let m = mount(
        "large",
        vec![("mem0", Arc::new(mem))],
        Duration::from_secs(1),
    );
    let dev = devfd_client::DeviceFile::open(m.dir.join("mem0")).unwrap();
    let data = vec![0x5au8; 2 << 20];
    let start = size - (1 << 20);
    let err = dev.write_bulk(0, start, &data).unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENXIO), "{err}");
    let mut back = vec![1u8; 1 << 20];
    dev.read_bulk(0, start, &mut back).unwrap();
    assert!(
        back.iter().all(|&b| b == 0),
        "the refused write changed memory"
    );
    let err = dev
        .read_bulk(0, start, &mut vec![0u8; 2 << 20])
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENXIO), "{err}");
    // A raw pwrite is split by the kernel: its leading piece may land (SPEC.md §6.1).
    match open(&m.dir, "mem0").write_at(&data, 0x1000 + start) {
        Ok(n) => assert!(n <= 1 << 20, "{n}"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENXIO)),
    }
}

/// Several client processes at once against registers, bulk memory and shared mappings: no
/// update is lost or torn.
#[test]
fn a_mixed_load_from_several_processes_loses_nothing() {
    let (d, control) = faulty(FaultOptions::default());
    let mem = Memory::new(MemoryOptions {
        size: 1 << 16,
        ..Default::default()
    })
    .unwrap();
    let m = mount(
        "mixed",
        vec![("f0", d), ("mem0", Arc::new(mem))],
        Duration::from_secs(5),
    );
    let dir = m.dir.to_str().unwrap();
    let rounds = 1500;
    let children = (0..6)
        .map(|id| spawn_child("mixed", &[dir, &id.to_string(), &rounds.to_string()]))
        .collect();
    wait_ok(children);
    assert_eq!(control.completed(), 6 * 2 * rounds);
}

/// A reset through the device file's reset word (SPEC.md §4.20) reaches the device; other
/// values and widths are refused.
#[test]
fn a_reset_through_the_reset_word() {
    let (d, _) = faulty(FaultOptions::default());
    let m = mount("reset", vec![("f0", d)], Duration::from_secs(1));
    let dev = devfd_client::DeviceFile::open(m.dir.join("f0")).unwrap();
    assert!(dev.can_reset());
    dev.write_u64(0, 0x10, 77).unwrap();
    dev.reset().unwrap();
    assert_eq!(dev.read_u64(0, 0x10).unwrap(), 0);
    let f = open(&m.dir, "f0");
    assert_eq!(read_u64(&f, 0x3000), 0);
    assert_eq!(errno(f.write_at(&2u64.to_le_bytes(), 0x3000)), libc::EINVAL);
    assert_eq!(errno(f.write_at(&1u32.to_le_bytes(), 0x3000)), libc::EINVAL);
    let mem = Memory::new(MemoryOptions::default()).unwrap();
    let m2 = mount(
        "no-reset",
        vec![("mem0", Arc::new(mem))],
        Duration::from_secs(1),
    );
    let mem_dev = devfd_client::DeviceFile::open(m2.dir.join("mem0")).unwrap();
    assert_eq!(mem_dev.reset().unwrap_err().errno(), Some(libc::ENOTSUP));
}
