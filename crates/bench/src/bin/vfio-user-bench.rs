//! `vfio-user-bench`: the latency of a 4-byte register access over vfio-user, each figure a
//! ratio to a floor measured in the same run, every thread of the process pinned to CPU 0.
//!
//! ```text
//! vfio-user-bench [--samples N] [--out FILE]
//!   --samples   accesses per path (default 20000)
//! ```
//!
//! Paths, all in this process:
//! * socket floor: a 16-byte request and a 16-byte reply over a Unix stream socket between
//!   two threads;
//! * devfd's vfio-user server (`devfd_vfio_user::Server` over the emulated edu), driven by
//!   hand-built messages: REGION_READ of 4 bytes at region 0 + 0 (32 bytes out, 36 back) and
//!   REGION_WRITE of 4 bytes at region 0 + 4 (36 out, 32 back);
//! * rust-vmm's `vfio_user::Server` with a small register backend, the same messages;
//! * the client source: devfd's `Client` on devfd's server, as a device (`Device::read`), and
//!   served on FUSE, a `pread` of 4 bytes at BAR0's file offset, against a raw FUSE floor
//!   (`devfd_bench::floor`) plus the socket floor.
//!
//! Needs root and /dev/fuse for the device-file rows (a FUSE mount in a new directory under
//! the temporary directory, unmounted before exit).

use std::cell::RefCell;
use std::error::Error;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use devfd_bench::affinity::{self, Placement, place};
use devfd_bench::floor::Floor;
use devfd_bench::stats::{Samples, measure};
use devfd_device::Device;
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_INFO_EVENTFD, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE, vfio_region_info,
};

type R<T> = Result<T, Box<dyn Error>>;

/// The edu ID register (BAR0 + 0), and the same value in the rust-vmm backend.
const ID: u32 = 0x0100_00ed;
/// Server threads of the FUSE mounts (`devfd serve` default), the same for the floor.
const THREADS: usize = 4;
/// vfio-user commands and header flags used here (QEMU `docs/interop/vfio-user.rst`).
const CMD_VERSION: u16 = 1;
const CMD_REGION_READ: u16 = 9;
const CMD_REGION_WRITE: u16 = 10;
const FLAGS_REPLY: u32 = 1;

struct Args {
    samples: usize,
    out: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!("usage: vfio-user-bench [--samples N] [--out FILE]");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        samples: 20_000,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--samples" => args.samples = value().parse().unwrap_or_else(|_| usage()),
            "--out" => args.out = Some(value().into()),
            _ => usage(),
        }
    }
    args
}

fn ns(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Raw vfio-user messages

/// A message: the 16-byte header (id, command, size, flags 0, error 0) and `payload`.
fn message(id: u16, command: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + payload.len());
    m.extend_from_slice(&id.to_ne_bytes());
    m.extend_from_slice(&command.to_ne_bytes());
    m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    m
}

/// REGION_READ/REGION_WRITE head: offset, region, count.
fn access(offset: u64, region: u32, count: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(16);
    p.extend_from_slice(&offset.to_ne_bytes());
    p.extend_from_slice(&region.to_ne_bytes());
    p.extend_from_slice(&count.to_ne_bytes());
    p
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

/// A connection driven by hand-built messages: the VERSION handshake, then one 4-byte
/// REGION_READ (region 0 + 0) and one 4-byte REGION_WRITE (region 0 + 4), each prebuilt.
struct RawClient {
    socket: UnixStream,
    read_req: Vec<u8>,
    write_req: Vec<u8>,
    reply: [u8; 64],
}

impl RawClient {
    fn new(mut socket: UnixStream) -> R<RawClient> {
        let mut version = vec![0, 0, 1, 0]; // major 0, minor 1
        version.extend_from_slice(
            b"{\"capabilities\":{\"max_msg_fds\":1,\"max_data_xfer_size\":1048576}}\0",
        );
        socket.write_all(&message(0, CMD_VERSION, &version))?;
        let mut head = [0u8; 16];
        socket.read_exact(&mut head)?;
        let size = u32_at(&head, 4) as usize;
        let mut rest = vec![0u8; size.saturating_sub(16)];
        socket.read_exact(&mut rest)?;
        if u32_at(&head, 8) != FLAGS_REPLY {
            return Err(format!("VERSION refused: header {head:?}").into());
        }
        let mut write = access(4, 0, 4);
        write.extend_from_slice(&0x1234_5678u32.to_ne_bytes());
        Ok(RawClient {
            socket,
            read_req: message(1, CMD_REGION_READ, &access(0, 0, 4)),
            write_req: message(2, CMD_REGION_WRITE, &write),
            reply: [0; 64],
        })
    }

    /// One REGION_READ round trip, timed; the reply must be a success with the ID.
    fn read(&mut self) -> R<u64> {
        let t = Instant::now();
        self.socket.write_all(&self.read_req)?;
        self.socket.read_exact(&mut self.reply[..36])?;
        let d = ns(t);
        if u32_at(&self.reply, 8) != FLAGS_REPLY || u32_at(&self.reply, 32) != ID {
            return Err(format!("bad REGION_READ reply {:?}", &self.reply[..36]).into());
        }
        Ok(d)
    }

    /// One REGION_WRITE round trip, timed; the reply must be a success.
    fn write(&mut self) -> R<u64> {
        let t = Instant::now();
        self.socket.write_all(&self.write_req)?;
        self.socket.read_exact(&mut self.reply[..32])?;
        let d = ns(t);
        if u32_at(&self.reply, 8) != FLAGS_REPLY || u32_at(&self.reply, 4) != 32 {
            return Err(format!("bad REGION_WRITE reply {:?}", &self.reply[..32]).into());
        }
        Ok(d)
    }
}

// ---------------------------------------------------------------------------------------------
// Servers

/// The socket floor's server: answers every 16-byte request with 16 bytes until EOF.
fn echo_server(mut socket: UnixStream) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        while socket.read_exact(&mut buf).is_ok() {
            if socket.write_all(&buf).is_err() {
                return;
            }
        }
    })
}

/// The framing floor's server: reads each message as a vfio-user server does, the 16-byte
/// header and then the 16 bytes of payload its size announces (two reads), and answers with
/// one 36-byte write, as a REGION_READ reply.
fn framed_echo_server(mut socket: UnixStream) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut header = [0u8; 16];
        let mut payload = [0u8; 16];
        let mut reply = [0u8; 36];
        loop {
            if socket.read_exact(&mut header).is_err() || socket.read_exact(&mut payload).is_err() {
                return;
            }
            reply[..16].copy_from_slice(&header);
            reply[16..32].copy_from_slice(&payload);
            if socket.write_all(&reply).is_err() {
                return;
            }
        }
    })
}

/// devfd's vfio-user server over the emulated edu, serving one connection.
fn devfd_server(socket: UnixStream) -> R<JoinHandle<()>> {
    let server = devfd_vfio_user::Server::new(devfd_emu::from_spec_str("edu")?)?;
    Ok(std::thread::spawn(move || {
        if let Err(e) = server.serve_connection(socket) {
            eprintln!("vfio-user-bench: devfd server: {e}");
        }
    }))
}

/// The rust-vmm backend: BAR0 4 KiB of registers (0: the ID, 4: liveness, reads back the
/// complement), a 256-byte configuration space, INTx (unused here).
struct Registers {
    config: [u8; 256],
    liveness: u32,
}

fn einval() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EINVAL)
}

impl vfio_user::ServerBackend for Registers {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> std::io::Result<()> {
        match region {
            VFIO_PCI_BAR0_REGION_INDEX if data.len() == 4 => {
                let v = match offset {
                    0 => ID,
                    4 => !self.liveness,
                    _ => 0,
                };
                data.copy_from_slice(&v.to_le_bytes());
            }
            VFIO_PCI_CONFIG_REGION_INDEX => {
                let at = usize::try_from(offset).map_err(|_| einval())?;
                let src = self.config.get(at..at + data.len()).ok_or_else(einval)?;
                data.copy_from_slice(src);
            }
            _ => return Err(einval()),
        }
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> std::io::Result<()> {
        match (region, <[u8; 4]>::try_from(data)) {
            (VFIO_PCI_BAR0_REGION_INDEX, Ok(v)) => {
                if offset == 4 {
                    self.liveness = u32::from_le_bytes(v);
                }
                Ok(())
            }
            (VFIO_PCI_CONFIG_REGION_INDEX, _) => Ok(()),
            _ => Err(einval()),
        }
    }

    fn dma_map(
        &mut self,
        _flags: vfio_user::DmaMapFlags,
        _offset: u64,
        _address: u64,
        _size: u64,
        _fd: Option<File>,
    ) -> std::io::Result<()> {
        Ok(())
    }

    fn dma_unmap(
        &mut self,
        _flags: vfio_user::DmaUnmapFlags,
        _address: u64,
        _size: u64,
    ) -> std::io::Result<()> {
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.liveness = 0;
        Ok(())
    }

    fn set_irqs(
        &mut self,
        _index: u32,
        _flags: u32,
        _start: u32,
        _count: u32,
        _fds: Vec<File>,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// rust-vmm's server with [`Registers`] on a socket at `path`, serving one connection.
fn rust_vmm_server(path: &Path) -> R<JoinHandle<()>> {
    let regions = (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let mut info = vfio_region_info {
                argsz: size_of::<vfio_region_info>() as u32,
                index,
                ..Default::default()
            };
            info.size = match index {
                VFIO_PCI_BAR0_REGION_INDEX => 0x1000,
                VFIO_PCI_CONFIG_REGION_INDEX => 256,
                _ => 0,
            };
            if info.size > 0 {
                info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
            }
            vfio_user::ServerRegion {
                region_info: info,
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect();
    let irqs = (0..VFIO_PCI_NUM_IRQS)
        .map(|index| vfio_user::IrqInfo {
            index,
            flags: if index == VFIO_PCI_INTX_IRQ_INDEX {
                VFIO_IRQ_INFO_EVENTFD
            } else {
                0
            },
            count: u32::from(index == VFIO_PCI_INTX_IRQ_INDEX),
        })
        .collect();
    let server = vfio_user::Server::new(path, false, irqs, regions)
        .map_err(|e| format!("rust-vmm server at {}: {e}", path.display()))?;
    let mut config = [0u8; 256];
    config[0..2].copy_from_slice(&0x1234u16.to_le_bytes());
    config[2..4].copy_from_slice(&0x11e9u16.to_le_bytes());
    config[0x0a] = 0x80; // subclass "other"
    config[0x0b] = 0x08; // base class: system peripheral
    config[0x3d] = 1; // INTA#
    let mut backend = Registers {
        config,
        liveness: 0,
    };
    Ok(std::thread::spawn(move || {
        if let Err(e) = server.run(&mut backend) {
            eprintln!("vfio-user-bench: rust-vmm server: {e}");
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// Measurement

/// One operation timed by itself: returns its duration in nanoseconds.
type Op<'a> = Box<dyn FnMut() -> R<u64> + 'a>;

/// `pread` of 4 bytes at `at`, timed; it must return `want` if given.
fn pread4(f: &File, at: u64, want: Option<u32>) -> R<u64> {
    let mut b = [0u8; 4];
    let t = Instant::now();
    let n = f.read_at(&mut b, at)?;
    let d = ns(t);
    if n != 4 || want.is_some_and(|w| u32::from_le_bytes(b) != w) {
        return Err(format!("pread at {at:#x}: {n} bytes {b:02x?}").into());
    }
    Ok(d)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn us(ns: f64) -> String {
    let us = ns / 1e3;
    if us >= 100.0 {
        format!("{us:.0} µs")
    } else if us >= 10.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.2} µs")
    }
}

/// One line of the table.
struct Line {
    path: String,
    p50: f64,
    p99: f64,
    /// The floor this line is compared with (p50, p99) and its name.
    floor: Option<(f64, f64, &'static str)>,
    /// Both ratios at most this.
    goal: Option<f64>,
}

impl Line {
    fn markdown(&self) -> String {
        let (r50, r99, against) = match self.floor {
            Some((f50, f99, name)) => (
                format!("{:.2}×", self.p50 / f50),
                format!("{:.2}×", self.p99 / f99),
                name,
            ),
            None => ("–".into(), "–".into(), "–"),
        };
        let (goal, result) = match (self.goal, self.floor) {
            (Some(g), Some((f50, f99, _))) => {
                let verdict = |r: f64| if r <= g { "met" } else { "**missed**" };
                (
                    format!("≤ {g:.2}×"),
                    format!(
                        "p50 {}, p99 {}",
                        verdict(self.p50 / f50),
                        verdict(self.p99 / f99)
                    ),
                )
            }
            _ => ("–".into(), "info".into()),
        };
        format!(
            "| {} | {} | {} | {against} | {r50} | {r99} | {goal} | {result} |",
            self.path,
            us(self.p50),
            us(self.p99)
        )
    }
}

fn run(args: &Args) -> R<String> {
    let cpus = affinity::cpus();
    let load_start = loadavg();
    let started = Instant::now();
    place(Placement::Pinned)?;
    let root = std::env::temp_dir().join(format!("devfd-vfio-user-bench-{}", std::process::id()));
    std::fs::create_dir(&root)?;
    let result = measure_all(args, &root);
    let _ = std::fs::remove_dir_all(&root);
    let (lines, notes) = result?;
    let load_end = loadavg();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut out = String::new();
    out.push_str(&format!(
        "`cargo run --release -p devfd-bench --bin vfio-user-bench` on {cpus} CPUs, Linux \
         {kernel}; load average {load_start} at the start, {load_end} at the end; every thread \
         of the process on CPU 0; {:.1} s in all.\n\n",
        started.elapsed().as_secs_f64()
    ));
    out.push_str(
        "| path | p50 | p99 | compared with | p50 ratio | p99 ratio | goal | result |\n\
         |---|---:|---:|---|---:|---:|---|---|\n",
    );
    for l in &lines {
        out.push_str(&l.markdown());
        out.push('\n');
    }
    out.push('\n');
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    Ok(out)
}

type Measured = (Vec<Line>, Vec<String>);

fn measure_all(args: &Args, root: &Path) -> R<Measured> {
    let n = args.samples.max(100);
    let rounds = 20;
    let per_round = n.div_ceil(rounds);
    let warm = (n / 10).max(100);

    // Socket floor.
    let (mut floor_client, floor_server) = UnixStream::pair()?;
    let echo = echo_server(floor_server);
    let (mut framed_client, framed_server) = UnixStream::pair()?;
    let framed = framed_echo_server(framed_server);
    // devfd's server, driven raw.
    let (a, b) = UnixStream::pair()?;
    let devfd_raw_thread = devfd_server(b)?;
    // Read and write share the connection (one op at a time): a RefCell each.
    let devfd_raw = RefCell::new(RawClient::new(a)?);
    // rust-vmm's server, driven raw.
    let rv_path = root.join("rust-vmm.sock");
    let rv_raw_thread = rust_vmm_server(&rv_path)?;
    let rv_raw = RefCell::new(RawClient::new(UnixStream::connect(&rv_path)?)?);
    // devfd's client on devfd's server: as a device, and on FUSE.
    let (a, b) = UnixStream::pair()?;
    let devfd_client_thread = devfd_server(b)?;
    let client = devfd_vfio_user::Client::over(a, "devfd edu", None)?;
    let (a, b) = UnixStream::pair()?;
    let devfd_fuse_thread = devfd_server(b)?;
    let fuse_client: Arc<dyn Device> =
        Arc::new(devfd_vfio_user::Client::over(a, "devfd edu (FUSE)", None)?);
    // devfd's client on rust-vmm's server, as a device.
    let rv_client_path = root.join("rust-vmm-client.sock");
    let rv_client_thread = rust_vmm_server(&rv_client_path)?;
    let rv_client = devfd_vfio_user::Client::connect(&rv_client_path, None)?;

    let bar0 = devfd_format::parse(fuse_client.description())?
        .region(0)
        .ok_or("no region 0 in the client's description")?
        .offset;
    let fuse_dir = root.join("fuse");
    let floor_dir = root.join("floor");
    std::fs::create_dir(&fuse_dir)?;
    std::fs::create_dir(&floor_dir)?;
    let mut options = devfd_fuse::ServeOptions::new(&fuse_dir);
    options.threads = THREADS;
    // edu1: the emulated edu itself on the same mount, to split the device-file figure.
    let local_edu = devfd_emu::from_spec_str("edu")?;
    let local_bar0 = devfd_format::parse(local_edu.description())?
        .region(0)
        .ok_or("no region 0 in edu's description")?
        .offset;
    let fuse = devfd_fuse::serve(
        vec![("edu0".into(), fuse_client), ("edu1".into(), local_edu)],
        options,
    )?;
    let floor = Floor::mount(&floor_dir, THREADS)?;
    let device_file = File::options()
        .read(true)
        .write(true)
        .open(fuse_dir.join("edu0"))?;
    let local_file = File::options()
        .read(true)
        .write(true)
        .open(fuse_dir.join("edu1"))?;
    let floor_file = File::options()
        .read(true)
        .write(true)
        .open(floor.path("zero"))?;
    // Every thread made so far (servers, FUSE, the clients' interrupt threads) on CPU 0.
    place(Placement::Pinned)?;

    let samples = {
        let mut buf = [0u8; 16];
        let mut ops: Vec<Op<'_>> = vec![
            Box::new(|| {
                let t = Instant::now();
                floor_client.write_all(&buf)?;
                floor_client.read_exact(&mut buf)?;
                Ok(ns(t))
            }),
            Box::new(|| {
                let mut reply = [0u8; 36];
                let t = Instant::now();
                framed_client.write_all(&[0u8; 32])?;
                framed_client.read_exact(&mut reply)?;
                Ok(ns(t))
            }),
            Box::new(|| devfd_raw.borrow_mut().read()),
            Box::new(|| rv_raw.borrow_mut().read()),
            Box::new(|| devfd_raw.borrow_mut().write()),
            Box::new(|| rv_raw.borrow_mut().write()),
            Box::new(|| {
                let mut b = [0u8; 4];
                let t = Instant::now();
                client.read(0, 0, &mut b)?;
                let d = ns(t);
                if u32::from_le_bytes(b) != ID {
                    return Err("devfd client: wrong ID".into());
                }
                Ok(d)
            }),
            Box::new(|| {
                let mut b = [0u8; 4];
                let t = Instant::now();
                rv_client.read(0, 0, &mut b)?;
                let d = ns(t);
                if u32::from_le_bytes(b) != ID {
                    return Err("devfd client on rust-vmm: wrong ID".into());
                }
                Ok(d)
            }),
            Box::new(|| pread4(&floor_file, 0, None)),
            Box::new(|| pread4(&device_file, bar0, Some(ID))),
            Box::new(|| pread4(&local_file, local_bar0, Some(ID))),
        ];
        measure(warm, rounds, per_round, &mut ops)?
    };
    let mut s = samples;
    let q = |s: &mut Samples| (s.quantile(0.50), s.quantile(0.99));
    let sock = q(&mut s[0]);
    let framing = q(&mut s[1]);
    let devfd_read = q(&mut s[2]);
    let rv_read = q(&mut s[3]);
    let devfd_write = q(&mut s[4]);
    let rv_write = q(&mut s[5]);
    let client_devfd = q(&mut s[6]);
    let client_rv = q(&mut s[7]);
    let fuse_floor = q(&mut s[8]);
    let file = q(&mut s[9]);
    let local = q(&mut s[10]);
    let sum = (fuse_floor.0 + sock.0, fuse_floor.1 + sock.1);

    // Tear down: the FUSE mount drops its client, whose socket closes; the raw clients close.
    drop((device_file, local_file, floor_file));
    fuse.unmount()?;
    floor.unmount()?;
    drop((
        devfd_raw,
        rv_raw,
        client,
        rv_client,
        floor_client,
        framed_client,
    ));
    for t in [
        echo,
        framed,
        devfd_raw_thread,
        rv_raw_thread,
        devfd_client_thread,
        devfd_fuse_thread,
        rv_client_thread,
    ] {
        let _ = t.join();
    }

    let socket_floor = "socket floor";
    let line = |path: &str, (p50, p99): (f64, f64), floor, goal| Line {
        path: path.into(),
        p50,
        p99,
        floor,
        goal,
    };
    let vs_sock = Some((sock.0, sock.1, socket_floor));
    let lines = vec![
        line(
            "socket floor: Unix stream socket, 16 B request / 16 B reply, two threads",
            sock,
            None,
            None,
        ),
        line(
            "framing floor: the same socket, 32 B out, read by the server as 16 B header + 16 \
             B payload (two reads), 36 B back",
            framing,
            vs_sock,
            None,
        ),
        line(
            "devfd server (edu): REGION_READ 4 B, region 0 + 0 (32 B out, 36 B back)",
            devfd_read,
            vs_sock,
            Some(1.10),
        ),
        line(
            "devfd server (edu): REGION_WRITE 4 B, region 0 + 4 (36 B out, 32 B back)",
            devfd_write,
            vs_sock,
            Some(1.10),
        ),
        line(
            "rust-vmm `vfio_user` 0.1.7 server: REGION_READ 4 B, same message",
            rv_read,
            vs_sock,
            None,
        ),
        line(
            "rust-vmm `vfio_user` 0.1.7 server: REGION_WRITE 4 B, same message",
            rv_write,
            vs_sock,
            None,
        ),
        line(
            "devfd `Client` → devfd server, `Device::read` 4 B of BAR0 (no FUSE)",
            client_devfd,
            vs_sock,
            None,
        ),
        line(
            "devfd `Client` → rust-vmm server, `Device::read` 4 B of BAR0 (no FUSE)",
            client_rv,
            vs_sock,
            None,
        ),
        line(
            "FUSE floor: `pread` 4 B of the no-op file (direct_io)",
            fuse_floor,
            None,
            None,
        ),
        line(
            "device file: `pread` 4 B at BAR0 (FUSE → devfd `Client` → devfd server)",
            file,
            Some((sum.0, sum.1, "FUSE floor + socket floor")),
            None,
        ),
        line(
            "device file: `pread` 4 B at BAR0 of the emulated edu on the same mount (no \
             vfio-user)",
            local,
            Some((fuse_floor.0, fuse_floor.1, "FUSE floor")),
            None,
        ),
    ];
    let notes = vec![
        format!(
            "{} samples per path, interleaved in {rounds} rounds of {per_round} after {warm} \
             warm-up accesses each. devfd server ÷ rust-vmm server: REGION_READ p50 {:.2}×, \
             p99 {:.2}×; REGION_WRITE p50 {:.2}×, p99 {:.2}×. devfd server REGION_READ ÷ the \
             framing floor: p50 {:.2}×, p99 {:.2}×. FUSE floor + socket floor: p50 {}, \
             p99 {} (sums of the percentiles). The device file through the client ÷ (the \
             emulated edu's device file + `Client::read`): p50 {:.2}×, p99 {:.2}×. BAR0 is at \
             file offset {bar0:#x} of the client's device file; FUSE mounts have {THREADS} \
             server threads each.",
            rounds * per_round,
            devfd_read.0 / rv_read.0,
            devfd_read.1 / rv_read.1,
            devfd_write.0 / rv_write.0,
            devfd_write.1 / rv_write.1,
            devfd_read.0 / framing.0,
            devfd_read.1 / framing.1,
            us(sum.0),
            us(sum.1),
            file.0 / (local.0 + client_devfd.0),
            file.1 / (local.1 + client_devfd.1),
        ),
        format!(
            "Goals met: {} of 4 (p50 and p99 of devfd's server, read and write, ≤ 1.10× the \
             socket floor).",
            [devfd_read, devfd_write]
                .iter()
                .flat_map(|&(p50, p99)| [p50 / sock.0, p99 / sock.1])
                .filter(|&r| r <= 1.10)
                .count()
        ),
    ];
    Ok((lines, notes))
}

fn main() {
    let args = parse_args();
    match run(&args) {
        Ok(report) => {
            print!("{report}");
            if let Some(path) = &args.out
                && let Err(e) = std::fs::write(path, &report)
            {
                eprintln!("vfio-user-bench: writing {}: {e}", path.display());
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("vfio-user-bench: {e}");
            std::process::exit(1);
        }
    }
}
