//! Conformance tests of the vfio-user server (QEMU `docs/interop/vfio-user.rst`) serving QEMU's
//! `edu` device, spoken in raw bytes over real Unix sockets to `Server::serve_connection` on a
//! thread. Requests are laid out field by field here and replies parsed here, so the crate's
//! own encoder and decoder never check themselves; fds travel as `SCM_RIGHTS` through a
//! `sendmsg` written in this file.
//!
//! Tests run in parallel threads of one process, so the test that counts the process's open
//! fds takes [`FD_COUNTING`] exclusively and every other test takes it shared.

use std::fs::File;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use devfd_device::Device;
use devfd_emu::{Edu, EduOptions};
use devfd_format::Location;
use devfd_format::wire::{IRQ_KIND_INTX, IRQ_KIND_MSI};
use devfd_vfio_user::{Client, ConnectionEnd, DMA_REGION, Server, VfioUserError};

// ---- The protocol, written out from the specification (not taken from the crate) ----

const VERSION: u16 = 1;
const DMA_MAP: u16 = 2;
const DMA_UNMAP: u16 = 3;
const GET_INFO: u16 = 4;
const GET_REGION_INFO: u16 = 5;
const GET_REGION_IO_FDS: u16 = 6;
const GET_IRQ_INFO: u16 = 7;
const SET_IRQS: u16 = 8;
const REGION_READ: u16 = 9;
const REGION_WRITE: u16 = 10;
const DMA_READ: u16 = 11;
const DMA_WRITE: u16 = 12;
const DEVICE_RESET: u16 = 13;
const DIRTY_PAGES: u16 = 14;
const REGION_WRITE_MULTI: u16 = 15;
const DEVICE_FEATURE: u16 = 16;
const MIG_DATA_READ: u16 = 17;
const MIG_DATA_WRITE: u16 = 18;

/// Header flags: type reply, No_reply, Error.
const REPLY: u32 = 0x1;
const NO_REPLY: u32 = 0x10;
const ERROR: u32 = 0x20;

/// The largest message the server takes: header, access head, 1 MiB of data.
const MAX_MESSAGE: usize = 16 + 16 + (1 << 20);
const MIB: u64 = 1 << 20;

/// DMA_MAP flags.
const READABLE: u32 = 1;
const WRITEABLE: u32 = 2;
const RW: u32 = READABLE | WRITEABLE;
/// DMA_UNMAP flags.
const UNMAP_DIRTY_BITMAP: u32 = 1;
const UNMAP_ALL: u32 = 2;

/// SET_IRQS flags.
const DATA_NONE: u32 = 1 << 0;
const DATA_BOOL: u32 = 1 << 1;
const DATA_EVENTFD: u32 = 1 << 2;
const MASK: u32 = 1 << 3;
const UNMASK: u32 = 1 << 4;
const TRIGGER: u32 = 1 << 5;

/// GET_IRQ_INFO flags.
const IRQ_EVENTFD: u32 = 1 << 0;
const IRQ_MASKABLE: u32 = 1 << 1;
const IRQ_AUTOMASKED: u32 = 1 << 2;
const IRQ_NORESIZE: u32 = 1 << 3;

/// VFIO indices.
const BAR0: u32 = 0;
const CONFIG: u32 = 7;
const INTX: u32 = 0;
const MSI: u32 = 1;
const MSIX: u32 = 2;
const ERR_IRQ: u32 = 3;

// ---- edu (QEMU docs/specs/edu.rst) ----

const ID: u64 = 0x00;
const LIVENESS: u64 = 0x04;
const STATUS: u64 = 0x20;
const IRQ_STATUS: u64 = 0x24;
const IRQ_RAISE: u64 = 0x60;
const IRQ_ACK: u64 = 0x64;
const DMA_SRC: u64 = 0x80;
const DMA_DST: u64 = 0x88;
const DMA_COUNT: u64 = 0x90;
const DMA_CMD: u64 = 0x98;
const DMA_RUN: u64 = 1;
const DMA_TO_RAM: u64 = 2;
/// edu's DMA buffer, at this device address.
const EDU_BUFFER: u64 = 0x40000;
/// Config space: command register, its memory-space and bus-master bits.
const COMMAND: u64 = 4;
const MEMORY_SPACE: u16 = 1 << 1;
const BUS_MASTER: u16 = 1 << 2;

const EINVAL: i32 = libc::EINVAL;

// ---- Building messages ----

/// A payload laid out field by field, host-endian as the protocol says.
#[derive(Debug, Clone, Default)]
struct P(Vec<u8>);

impl P {
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
}

fn p() -> P {
    P::default()
}

/// A 16-byte header: id, command, size, flags, error.
fn header(id: u16, command: u16, size: u32, flags: u32, error: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..2].copy_from_slice(&id.to_ne_bytes());
    h[2..4].copy_from_slice(&command.to_ne_bytes());
    h[4..8].copy_from_slice(&size.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&error.to_ne_bytes());
    h
}

/// A whole message: the header (its size computed) and the payload.
fn message(id: u16, command: u16, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = header(id, command, (16 + payload.len()) as u32, flags, 0).to_vec();
    m.extend_from_slice(payload);
    m
}

fn version(major: u16, minor: u16, data: &[u8]) -> P {
    p().u16(major).u16(minor).raw(data)
}

/// REGION_READ/REGION_WRITE head: offset, region, count.
fn access(offset: u64, region: u32, count: u32) -> P {
    p().u64(offset).u32(region).u32(count)
}

fn dma_map(flags: u32, offset: u64, address: u64, size: u64) -> P {
    p().u32(32).u32(flags).u64(offset).u64(address).u64(size)
}

fn dma_unmap(flags: u32, address: u64, size: u64) -> P {
    p().u32(24).u32(flags).u64(address).u64(size)
}

fn irq_set(flags: u32, index: u32, start: u32, count: u32) -> P {
    p().u32(20).u32(flags).u32(index).u32(start).u32(count)
}

fn device_info(argsz: u32) -> P {
    p().u32(argsz).u32(0).u32(0).u32(0)
}

fn region_info(argsz: u32, index: u32) -> P {
    p().u32(argsz).u32(0).u32(index).u32(0).u64(0).u64(0)
}

// ---- Moving bytes and fds ----

/// Sends `bytes` with `fds` attached as `SCM_RIGHTS` (the rest, if the kernel takes only part
/// of it, follows without fds).
fn send_with_fds(sock: &UnixStream, bytes: &[u8], fds: &[RawFd]) {
    assert!(!bytes.is_empty());
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    let space = if fds.is_empty() {
        0
    } else {
        // SAFETY: CMSG_SPACE only computes a size.
        unsafe { libc::CMSG_SPACE(fd_bytes) as usize }
    };
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no iovecs, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `control` is CMSG_SPACE(fd_bytes) bytes, 8-byte aligned, so CMSG_FIRSTHDR is
        // non-null and one header with fds.len() fds fits in it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                fds.len(),
            );
        }
    }
    // SAFETY: msg points at `iov` (over `bytes`) and at `control`, both live for the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    assert!(n > 0, "sendmsg: {}", std::io::Error::last_os_error());
    let rest = &bytes[n as usize..];
    if !rest.is_empty() {
        let mut w = sock;
        w.write_all(rest).expect("sending the rest of a message");
    }
}

/// Receives `buf.len()` bytes (fewer only at the end of the stream), collecting any fds.
fn recv_exact(sock: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> usize {
    let mut got = 0;
    while got < buf.len() {
        let mut control = [0u64; 64];
        let rest = &mut buf[got..];
        let mut iov = libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        };
        // SAFETY: an all-zero msghdr is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at `iov` (over `rest`) and `control`, both live for the call.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            panic!("recvmsg: {e} (waiting for a message that never came?)");
        }
        // SAFETY: the kernel filled `control`; the CMSG macros walk it within msg_controllen,
        // and each SCM_RIGHTS payload holds whole fds, now ours.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..len / size_of::<RawFd>() {
                        fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    got
}

/// A message as it came off the socket.
#[derive(Debug)]
struct Msg {
    id: u16,
    command: u16,
    size: u32,
    flags: u32,
    error: u32,
    payload: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Msg {
    fn u64(&self, at: usize) -> u64 {
        u64::from_ne_bytes(self.payload[at..at + 8].try_into().unwrap())
    }
}

fn ne_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
}

/// The next message; `None` if the stream ended cleanly before it.
fn recv(sock: &UnixStream) -> Option<Msg> {
    let mut fds = Vec::new();
    let mut h = [0u8; 16];
    let got = recv_exact(sock, &mut h, &mut fds);
    if got == 0 {
        return None;
    }
    assert_eq!(got, 16, "the server sent a header cut short");
    let size = u32::from_ne_bytes(h[4..8].try_into().unwrap());
    assert!(
        (16..=MAX_MESSAGE).contains(&(size as usize)),
        "the server sent a message of {size} bytes"
    );
    let mut payload = vec![0u8; size as usize - 16];
    assert_eq!(
        recv_exact(sock, &mut payload, &mut fds),
        payload.len(),
        "the server sent a message cut short"
    );
    Some(Msg {
        id: ne_u16(&h, 0),
        command: ne_u16(&h, 2),
        size,
        flags: u32::from_ne_bytes(h[8..12].try_into().unwrap()),
        error: u32::from_ne_bytes(h[12..16].try_into().unwrap()),
        payload,
        fds,
    })
}

/// How the test client answers the server's DMA_READ/DMA_WRITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DmaMode {
    /// From [`Peer::memory`].
    Serve,
    /// With an error reply of this errno.
    Fail(i32),
    /// DMA_READ with one byte of data too few.
    Short,
}

/// The client side of one connection, speaking raw vfio-user.
struct Peer {
    sock: UnixStream,
    next_id: u16,
    /// Memory the server reaches by messages: (bus address, bytes).
    memory: Option<(u64, Vec<u8>)>,
    dma_mode: DmaMode,
    /// Every command the server sent (answered as they came).
    requests: Vec<Msg>,
}

impl Peer {
    fn new(sock: UnixStream) -> Self {
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Peer {
            sock,
            next_id: 1,
            memory: None,
            dma_mode: DmaMode::Serve,
            requests: Vec::new(),
        }
    }

    /// Sends a command; returns its id.
    fn send(&mut self, command: u16, flags: u32, payload: &[u8], fds: &[RawFd]) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        send_with_fds(&self.sock, &message(id, command, flags, payload), fds);
        id
    }

    /// The next message that is not a command of the server's (those are answered as a
    /// client answers them, and kept in `requests`); `None` at the end of the stream.
    fn next(&mut self) -> Option<Msg> {
        loop {
            let m = recv(&self.sock)?;
            if m.flags & 0xf == 0 {
                self.answer(m);
                continue;
            }
            return Some(m);
        }
    }

    /// Sends a command and returns its reply, checked to answer it and to carry no fds.
    fn call_fds(&mut self, command: u16, payload: &P, fds: &[RawFd]) -> Msg {
        let id = self.send(command, 0, &payload.0, fds);
        let m = self.next().unwrap_or_else(|| {
            panic!("the server closed the connection instead of answering command {command}")
        });
        assert_eq!(
            (m.id, m.command),
            (id, command),
            "a reply to another message"
        );
        assert!(m.fds.is_empty(), "a reply with fds");
        m
    }

    fn ok(&mut self, command: u16, payload: &P) -> Vec<u8> {
        self.ok_fds(command, payload, &[])
    }

    /// A successful reply's payload.
    fn ok_fds(&mut self, command: u16, payload: &P, fds: &[RawFd]) -> Vec<u8> {
        let m = self.call_fds(command, payload, fds);
        assert_eq!(
            m.flags, REPLY,
            "command {command} failed: errno {}",
            m.error
        );
        assert_eq!(m.error, 0);
        assert_eq!(m.size as usize, 16 + m.payload.len());
        m.payload
    }

    fn err(&mut self, command: u16, payload: &P) -> i32 {
        self.err_fds(command, payload, &[])
    }

    /// An error reply's errno (checked to be the header alone).
    fn err_fds(&mut self, command: u16, payload: &P, fds: &[RawFd]) -> i32 {
        let m = self.call_fds(command, payload, fds);
        assert_eq!(
            m.flags,
            REPLY | ERROR,
            "command {command} ({payload:?}) succeeded where it should fail"
        );
        assert_eq!(m.size, 16, "an error reply is the header alone");
        m.error as i32
    }

    /// The server ended the connection: nothing more comes.
    fn expect_eof(&mut self) {
        if let Some(m) = self.next() {
            panic!("expected the server to close the connection; got {m:?}");
        }
    }

    fn negotiate(&mut self) {
        self.negotiate_with(br#"{"capabilities":{"max_msg_fds":8}}"#);
    }

    fn negotiate_with(&mut self, json: &[u8]) {
        let mut data = json.to_vec();
        data.push(0);
        let r = self.ok(VERSION, &version(0, 1, &data));
        assert_eq!((ne_u16(&r, 0), ne_u16(&r, 2)), (0, 1));
    }

    /// REGION_READ, checking the reply's head echoes the request.
    fn read(&mut self, region: u32, offset: u64, count: u32) -> Vec<u8> {
        let req = access(offset, region, count);
        let r = self.ok(REGION_READ, &req);
        assert_eq!(
            r.len(),
            16 + count as usize,
            "the reply is the head and the data"
        );
        assert_eq!(
            r[..16],
            req.0[..],
            "the reply echoes offset, region and count"
        );
        r[16..].to_vec()
    }

    /// REGION_WRITE, checking the reply is the head without the data.
    fn write(&mut self, region: u32, offset: u64, data: &[u8]) {
        let head = access(offset, region, data.len() as u32);
        let r = self.ok(REGION_WRITE, &head.clone().raw(data));
        assert_eq!(r, head.0, "the reply is offset, region and count");
    }

    fn read16(&mut self, region: u32, offset: u64) -> u16 {
        u16::from_le_bytes(self.read(region, offset, 2).try_into().unwrap())
    }
    fn read32(&mut self, region: u32, offset: u64) -> u32 {
        u32::from_le_bytes(self.read(region, offset, 4).try_into().unwrap())
    }
    fn read64(&mut self, region: u32, offset: u64) -> u64 {
        u64::from_le_bytes(self.read(region, offset, 8).try_into().unwrap())
    }
    fn write32(&mut self, region: u32, offset: u64, value: u32) {
        self.write(region, offset, &value.to_le_bytes());
    }
    fn write64(&mut self, region: u32, offset: u64, value: u64) {
        self.write(region, offset, &value.to_le_bytes());
    }

    /// SET_IRQS that must succeed (its reply has no payload).
    fn set_irqs(&mut self, flags: u32, index: u32, start: u32, count: u32, fds: &[RawFd]) {
        let r = self.ok_fds(SET_IRQS, &irq_set(flags, index, start, count), fds);
        assert!(r.is_empty(), "SET_IRQS's reply has no payload");
    }

    fn unmask_intx(&mut self) {
        self.set_irqs(DATA_NONE | UNMASK, INTX, 0, 1, &[]);
    }

    fn memory(&self) -> &[u8] {
        &self.memory.as_ref().expect("no test memory").1
    }

    /// Answers a server command as a client does: DMA_READ/DMA_WRITE from `memory`.
    fn answer(&mut self, m: Msg) {
        let (address, count) = (m.u64(0), m.u64(8) as usize);
        let range = self.memory.as_ref().and_then(|(base, mem)| {
            let start = address.checked_sub(*base)? as usize;
            (start + count <= mem.len()).then_some(start..start + count)
        });
        let reply = match (m.command, self.dma_mode, range) {
            (_, DmaMode::Fail(errno), _) => Err(errno),
            (DMA_READ, mode, Some(r)) => {
                let mut data = self.memory()[r].to_vec();
                if mode == DmaMode::Short {
                    data.pop();
                }
                Ok(p().u64(address).u64(count as u64).raw(&data))
            }
            (DMA_WRITE, _, Some(r)) if m.payload.len() == 16 + count => {
                let mem = &mut self.memory.as_mut().unwrap().1;
                mem[r].copy_from_slice(&m.payload[16..]);
                Ok(p().u64(address).u64(count as u64))
            }
            _ => Err(libc::EFAULT),
        };
        let bytes = match reply {
            Ok(payload) => message(m.id, m.command, REPLY, &payload.0),
            Err(errno) => header(m.id, m.command, 16, REPLY | ERROR, errno as u32).to_vec(),
        };
        send_with_fds(&self.sock, &bytes, &[]);
        self.requests.push(m);
    }
}

// ---- Servers, devices and helpers ----

type ServerThread = JoinHandle<Result<ConnectionEnd, VfioUserError>>;

fn edu() -> Arc<Edu> {
    Arc::new(Edu::new(EduOptions::default()).unwrap())
}

/// A server for `device` on one end of a socket pair, serving on a thread.
fn serve(device: &Arc<Edu>) -> (Peer, ServerThread) {
    let server = Server::new(device.clone()).unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let thread = std::thread::spawn(move || server.serve_connection(theirs));
    (Peer::new(ours), thread)
}

/// A fresh edu, served and negotiated.
fn connected() -> (Peer, ServerThread, Arc<Edu>) {
    let device = edu();
    let (mut peer, thread) = serve(&device);
    peer.negotiate();
    (peer, thread, device)
}

/// How the server's connection ended.
fn joined(thread: ServerThread) -> ConnectionEnd {
    thread
        .join()
        .expect("the server thread panicked")
        .expect("serve_connection failed")
}

/// Closes the client end and returns how the server's connection ended.
fn end(peer: Peer, thread: ServerThread) -> ConnectionEnd {
    drop(peer);
    joined(thread)
}

fn assert_closed(end: ConnectionEnd) {
    assert!(matches!(end, ConnectionEnd::Closed), "{end:?}");
}

fn assert_dropped(end: ConnectionEnd) -> String {
    match end {
        ConnectionEnd::Dropped(why) => why,
        other => panic!("expected the server to drop the connection; it ended {other:?}"),
    }
}

/// A non-blocking eventfd.
struct EventFd(File);

impl EventFd {
    fn new() -> Self {
        // SAFETY: eventfd takes no pointers and returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a new descriptor nothing else owns.
        EventFd(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// The counter, reset (0 if it was not signalled).
    fn take(&self) -> u64 {
        let mut b = [0u8; 8];
        match (&self.0).read(&mut b) {
            Ok(8) => u64::from_ne_bytes(b),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            other => panic!("reading an eventfd: {other:?}"),
        }
    }
}

/// A memfd of `size` bytes, zeroed.
fn memfd(size: u64) -> File {
    // SAFETY: memfd_create reads a NUL-terminated name and returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"devfd-vfio-user-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a new descriptor nothing else owns.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.set_len(size).unwrap();
    f
}

fn read_at(f: &File, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, offset).unwrap();
    b
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sets (or clears) bus mastering in edu's command register, over the wire.
fn bus_master(peer: &mut Peer, on: bool) {
    let command = peer.read16(CONFIG, COMMAND);
    let command = if on {
        command | BUS_MASTER | MEMORY_SPACE
    } else {
        command & !BUS_MASTER
    };
    peer.write(CONFIG, COMMAND, &command.to_le_bytes());
}

/// Runs one edu DMA transfer over the wire and waits for it to end (answering any DMA
/// messages meanwhile).
fn edu_dma(peer: &mut Peer, src: u64, dst: u64, count: u64, to_ram: bool) {
    peer.write64(BAR0, DMA_SRC, src);
    peer.write64(BAR0, DMA_DST, dst);
    peer.write64(BAR0, DMA_COUNT, count);
    let direction = if to_ram { DMA_TO_RAM } else { 0 };
    peer.write64(BAR0, DMA_CMD, DMA_RUN | direction);
    eventually("the DMA transfer to end", || {
        peer.read64(BAR0, DMA_CMD) & DMA_RUN == 0
    });
}

fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "devfd-vfio-user-test-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Serializes the fd-counting test against every other test.
static FD_COUNTING: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    FD_COUNTING.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FD_COUNTING.write().unwrap_or_else(PoisonError::into_inner)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The open-fd count once it stops changing (a server thread of an earlier test may still be
/// closing what its client gave it).
fn settled_fds() -> usize {
    let start = Instant::now();
    let mut last = open_fds();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = open_fds();
        if now == last || start.elapsed() > Duration::from_secs(5) {
            return now;
        }
        last = now;
    }
}

// ---- VERSION ----

#[test]
fn version_reply_has_major_0_no_higher_minor_and_nul_terminated_json() {
    let _g = shared();
    for (proposed, answered) in [(0u16, 0u16), (1, 1), (7, 1)] {
        let (mut peer, thread) = serve(&edu());
        let r = peer.ok(
            VERSION,
            &version(0, proposed, b"{\"capabilities\":{\"max_msg_fds\":4}}\0"),
        );
        assert_eq!(ne_u16(&r, 0), 0, "major");
        assert_eq!(ne_u16(&r, 2), answered, "minor for a proposed 0.{proposed}");
        let json = &r[4..];
        assert_eq!(json.last(), Some(&0), "the JSON is NUL-terminated");
        assert_eq!(json.iter().filter(|&&b| b == 0).count(), 1, "one NUL, last");
        let value: serde_json::Value = serde_json::from_slice(&json[..json.len() - 1]).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"capabilities": {
                "max_msg_fds": 16,
                "max_data_xfer_size": 1048576,
                "pgsizes": 4096,
                "max_dma_maps": 1024,
            }})
        );
        // A second VERSION is refused, and the connection goes on.
        assert_eq!(peer.err(VERSION, &version(0, proposed, b"\0")), EINVAL);
        assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
        assert_closed(end(peer, thread));
    }
    // The version data is optional; unknown keys and NUL padding are accepted.
    for data in [
        &b""[..],
        b"\0",
        b"{}\0",
        b"{\"capabilities\":{\"max_msg_fds\":2,\"future\":{\"x\":[1]}},\"other\":true}\0\0\0",
        b"{\"capabilities\":{\"twin_socket\":{\"supported\":true},\"write_multiple\":true}}\0",
    ] {
        let (mut peer, thread) = serve(&edu());
        let r = peer.ok(VERSION, &version(0, 1, data));
        assert_eq!((ne_u16(&r, 0), ne_u16(&r, 2)), (0, 1));
        // twin_socket is not offered: the reply's capabilities are devfd's four limits.
        let text = std::str::from_utf8(&r[4..r.len() - 1]).unwrap();
        assert!(!text.contains("twin_socket"), "{text}");
        assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
        assert_closed(end(peer, thread));
    }
}

#[test]
fn a_command_before_version_gets_an_error_and_the_connection_closes() {
    let _g = shared();
    for (command, payload) in [
        (GET_INFO, device_info(16)),
        (REGION_READ, access(ID, BAR0, 4)),
        (DEVICE_RESET, p()),
    ] {
        let device = edu();
        let (mut peer, thread) = serve(&device);
        assert_eq!(peer.err(command, &payload), EINVAL, "command {command}");
        peer.expect_eof();
        let why = assert_dropped(joined(thread));
        assert!(why.contains("VERSION"), "{why}");
    }
}

#[test]
fn version_major_1_is_refused_and_the_connection_closes() {
    let _g = shared();
    let (mut peer, thread) = serve(&edu());
    assert_eq!(peer.err(VERSION, &version(1, 0, b"{}\0")), libc::ENOTSUP);
    peer.expect_eof();
    assert_dropped(joined(thread));
}

#[test]
fn malformed_version_data_gets_einval_and_the_client_may_try_again() {
    let _g = shared();
    let (mut peer, thread) = serve(&edu());
    let bad: &[&[u8]] = &[
        b"[1,2]\0",
        b"\"capabilities\"\0",
        b"42\0",
        b"{\"capabilities\":[]}\0",
        b"{\"capabilities\":{\"max_msg_fds\":\"8\"}}\0",
        b"{\"capabilities\":{\"max_msg_fds\":-1}}\0",
        b"{\"capabilities\":{\"max_data_xfer_size\":1.5}}\0",
        b"{\"capabilities\":{\"max_data_xfer_size\":0}}\0",
        b"{\"capabilities\":{\"max_dma_maps\":{}}}\0",
        b"{\"capabilities\":{\"pgsizes\":null}}\0",
        b"{\"capabilities\":{\"write_multiple\":1}}\0",
        b"{\"capabilities\":{\"twin_socket\":true}}\0",
        b"{\"capabilities\":{\"twin_socket\":{\"supported\":\"yes\"}}}\0",
        // Bytes after the terminating NUL.
        b"{}\0{}",
        b"{}\0\0x",
        // Not JSON, not UTF-8.
        b"{\"capabilities\":{}\0",
        b"{capabilities}\0",
        b"\xff\xfe\0",
    ];
    for data in bad {
        assert_eq!(
            peer.err(VERSION, &version(0, 1, data)),
            EINVAL,
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    // Shorter than major and minor.
    assert_eq!(peer.err(VERSION, &p().u16(0)), EINVAL);
    assert_eq!(peer.err(VERSION, &p()), EINVAL);
    // None of them negotiated anything; a good VERSION still can.
    peer.negotiate();
    assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
    assert_closed(end(peer, thread));
}

// ---- Device, region and irq information ----

#[test]
fn device_get_info() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let expected = p().u32(16).u32(3).u32(9).u32(5).0; // flags: RESET | PCI
    assert_eq!(peer.ok(GET_INFO, &device_info(16)), expected);
    assert_eq!(
        peer.ok(GET_INFO, &device_info(4096)),
        expected,
        "argsz is the size needed"
    );
    assert_eq!(peer.err(GET_INFO, &device_info(15)), EINVAL);
    assert_eq!(peer.err(GET_INFO, &device_info(0)), EINVAL);
    assert_eq!(peer.err(GET_INFO, &p().u32(16).u32(0)), EINVAL, "short");
    assert_closed(end(peer, thread));
}

#[test]
fn device_get_region_info() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let expected = |index: u32, flags: u32, size: u64| {
        p().u32(32).u32(flags).u32(index).u32(0).u64(size).u64(0).0
    };
    // BAR0: 1 MiB, read/write, not mappable (edu's registers are trapped).
    assert_eq!(
        peer.ok(GET_REGION_INFO, &region_info(32, 0)),
        expected(0, 3, MIB)
    );
    assert_eq!(
        peer.ok(GET_REGION_INFO, &region_info(4096, 0)),
        expected(0, 3, MIB)
    );
    assert_eq!(
        peer.ok(GET_REGION_INFO, &region_info(32, 7)),
        expected(7, 3, 256)
    );
    // Absent regions are answered with size 0 and no flags.
    for absent in [1, 2, 3, 4, 5, 6, 8] {
        assert_eq!(
            peer.ok(GET_REGION_INFO, &region_info(32, absent)),
            expected(absent, 0, 0),
            "region {absent}"
        );
    }
    assert_eq!(peer.err(GET_REGION_INFO, &region_info(32, 9)), EINVAL);
    assert_eq!(
        peer.err(GET_REGION_INFO, &region_info(32, u32::MAX)),
        EINVAL
    );
    assert_eq!(peer.err(GET_REGION_INFO, &region_info(31, 0)), EINVAL);
    assert_eq!(
        peer.err(GET_REGION_INFO, &p().u32(32).u32(0).u32(0).u32(0)),
        EINVAL,
        "short"
    );
    assert_closed(end(peer, thread));
}

#[test]
fn device_get_region_io_fds() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let req = |argsz: u32, index: u32| p().u32(argsz).u32(0).u32(index).u32(0);
    let none = |index: u32| p().u32(16).u32(0).u32(index).u32(0).0;
    assert_eq!(peer.ok(GET_REGION_IO_FDS, &req(16, 0)), none(0));
    assert_eq!(peer.ok(GET_REGION_IO_FDS, &req(4096, 7)), none(7));
    assert_eq!(peer.ok(GET_REGION_IO_FDS, &req(16, 1)), none(1));
    assert_eq!(peer.err(GET_REGION_IO_FDS, &req(16, 9)), EINVAL);
    assert_eq!(peer.err(GET_REGION_IO_FDS, &req(15, 0)), EINVAL);
    assert_eq!(peer.err(GET_REGION_IO_FDS, &p().u32(16)), EINVAL, "short");
    assert_closed(end(peer, thread));
}

#[test]
fn device_get_irq_info() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let req = |argsz: u32, index: u32| p().u32(argsz).u32(0).u32(index).u32(0);
    let expected =
        |index: u32, flags: u32, count: u32| p().u32(16).u32(flags).u32(index).u32(count).0;
    assert_eq!(
        peer.ok(GET_IRQ_INFO, &req(16, INTX)),
        expected(INTX, IRQ_EVENTFD | IRQ_MASKABLE | IRQ_AUTOMASKED, 1)
    );
    assert_eq!(
        peer.ok(GET_IRQ_INFO, &req(16, MSI)),
        expected(MSI, IRQ_EVENTFD | IRQ_MASKABLE | IRQ_NORESIZE, 1)
    );
    assert_eq!(
        peer.ok(GET_IRQ_INFO, &req(16, MSIX)),
        expected(MSIX, IRQ_EVENTFD | IRQ_NORESIZE, 0)
    );
    assert_eq!(
        peer.ok(GET_IRQ_INFO, &req(16, ERR_IRQ)),
        expected(ERR_IRQ, IRQ_EVENTFD, 0)
    );
    assert_eq!(
        peer.ok(GET_IRQ_INFO, &req(4096, 4)),
        expected(4, IRQ_EVENTFD, 0)
    );
    assert_eq!(peer.err(GET_IRQ_INFO, &req(16, 5)), EINVAL);
    assert_eq!(peer.err(GET_IRQ_INFO, &req(15, INTX)), EINVAL);
    assert_eq!(peer.err(GET_IRQ_INFO, &p().u32(16).u32(0)), EINVAL, "short");
    assert_closed(end(peer, thread));
}

// ---- REGION_READ, REGION_WRITE, REGION_WRITE_MULTI ----

#[test]
fn region_read_and_write() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
    peer.write32(BAR0, LIVENESS, 0x1234_5678);
    assert_eq!(peer.read32(BAR0, LIVENESS), !0x1234_5678);
    // 8-byte registers from 0x80 on.
    peer.write64(BAR0, DMA_SRC, 0x1122_3344_5566_7788);
    assert_eq!(peer.read64(BAR0, DMA_SRC), 0x1122_3344_5566_7788);

    // Config space: one 256-byte read equals 64 four-byte reads.
    let whole = peer.read(CONFIG, 0, 256);
    let pieces: Vec<u8> = (0..64).flat_map(|i| peer.read(CONFIG, 4 * i, 4)).collect();
    assert_eq!(whole, pieces);
    assert_eq!(
        whole[..4],
        [0x34, 0x12, 0xe8, 0x11],
        "vendor 1234, device 11e8"
    );

    // A long read in one message, split into accesses the region takes.
    let long = peer.read(BAR0, 0x80, (MIB - 0x80) as u32);
    assert_eq!(long[..8], 0x1122_3344_5566_7788u64.to_le_bytes());
    assert!(
        long[0x20..].iter().all(|&b| b == 0xff),
        "unimplemented registers"
    );

    // Reads past the end, of absent or unknown regions.
    for (region, offset, count) in [
        (CONFIG, 252, 8),
        (CONFIG, 256, 1),
        (CONFIG, 0, 257),
        (BAR0, MIB - 4, 8),
        (BAR0, MIB, 4),
        (CONFIG, u64::MAX, 1),
        (CONFIG, u64::MAX - 3, 4),
        (1, 0, 4),
        (8, 0, 4),
        (9, 0, 4),
        (u32::MAX, 0, 4),
    ] {
        assert_eq!(
            peer.err(REGION_READ, &access(offset, region, count)),
            EINVAL,
            "read of {count} at {offset:#x} in region {region}"
        );
    }
    // Count 0, or over max_data_xfer_size.
    assert_eq!(peer.err(REGION_READ, &access(0, CONFIG, 0)), EINVAL);
    assert_eq!(
        peer.err(REGION_READ, &access(0, BAR0, MIB as u32 + 1)),
        EINVAL
    );
    assert_eq!(peer.err(REGION_READ, &access(0, BAR0, u32::MAX)), EINVAL);
    // Widths BAR0 does not take: 2 bytes, or 4 at an odd offset (the server's split fails);
    // 8 bytes below 0x80 (edu itself refuses: EIO).
    assert_eq!(peer.err(REGION_READ, &access(0, BAR0, 2)), EINVAL);
    assert_eq!(peer.err(REGION_READ, &access(2, BAR0, 4)), EINVAL);
    assert_eq!(peer.err(REGION_READ, &access(0, BAR0, 8)), libc::EIO);
    assert_eq!(
        peer.err(REGION_READ, &p().u64(0).u32(BAR0)),
        EINVAL,
        "short"
    );

    // Writes whose count differs from the data, or is 0 or too large.
    let value = 0xdead_beefu32.to_le_bytes();
    assert_eq!(
        peer.err(REGION_WRITE, &access(LIVENESS, BAR0, 8).raw(&value)),
        EINVAL
    );
    assert_eq!(
        peer.err(REGION_WRITE, &access(LIVENESS, BAR0, 2).raw(&value)),
        EINVAL
    );
    assert_eq!(peer.err(REGION_WRITE, &access(LIVENESS, BAR0, 0)), EINVAL);
    assert_eq!(
        peer.err(REGION_WRITE, &access(LIVENESS, BAR0, 0).raw(&value)),
        EINVAL
    );
    assert_eq!(
        peer.err(
            REGION_WRITE,
            &access(LIVENESS, BAR0, MIB as u32 + 1).raw(&value)
        ),
        EINVAL
    );
    assert_eq!(
        peer.err(REGION_WRITE, &access(254, CONFIG, 4).raw(&value)),
        EINVAL
    );
    assert_eq!(peer.err(REGION_WRITE, &access(0, 9, 4).raw(&value)), EINVAL);
    assert_eq!(
        peer.err(REGION_WRITE, &access(2, BAR0, 4).raw(&value)),
        EINVAL
    );
    // None of them reached the device.
    assert_eq!(peer.read32(BAR0, LIVENESS), !0x1234_5678);

    // The largest message there is (header, head and 1 MiB): received whole and answered
    // (edu refuses 8-byte accesses at 0: EIO), and the connection goes on.
    let big = access(0, BAR0, MIB as u32).raw(&vec![0u8; MIB as usize]);
    assert_eq!(16 + big.0.len(), MAX_MESSAGE);
    assert_eq!(peer.err(REGION_WRITE, &big), libc::EIO);
    assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
    assert_closed(end(peer, thread));
}

#[test]
fn no_reply_commands_get_no_reply() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    // A posted write, a failing posted write (no error reply either), a read without reply.
    peer.send(
        REGION_WRITE,
        NO_REPLY,
        &access(LIVENESS, BAR0, 4).raw(&7u32.to_le_bytes()).0,
        &[],
    );
    peer.send(REGION_WRITE, NO_REPLY, &access(0, 9, 4).raw(&[0; 4]).0, &[]);
    peer.send(REGION_READ, NO_REPLY, &access(ID, BAR0, 4).0, &[]);
    peer.send(99, NO_REPLY, &[], &[]);
    // The next thing on the socket is the reply to the next command, which sees the write.
    let id = peer.send(REGION_READ, 0, &access(LIVENESS, BAR0, 4).0, &[]);
    let m = peer.next().unwrap();
    assert_eq!((m.id, m.command, m.flags), (id, REGION_READ, REPLY));
    assert_eq!(m.payload[16..], (!7u32).to_le_bytes());
    assert_closed(end(peer, thread));
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let mut batch = Vec::new();
    for i in 0..48u16 {
        let id = 1000 + i;
        let m = match i % 3 {
            0 => message(
                id,
                REGION_WRITE,
                0,
                &access(LIVENESS, BAR0, 4).raw(&u32::from(i).to_le_bytes()).0,
            ),
            1 => message(id, REGION_READ, 0, &access(LIVENESS, BAR0, 4).0),
            _ => message(id, 99, 0, &[]),
        };
        batch.extend_from_slice(&m);
    }
    (&peer.sock).write_all(&batch).unwrap();
    for i in 0..48u16 {
        let m = peer.next().unwrap();
        assert_eq!(m.id, 1000 + i, "replies come in order");
        match i % 3 {
            0 => assert_eq!((m.command, m.flags), (REGION_WRITE, REPLY)),
            1 => {
                assert_eq!((m.command, m.flags), (REGION_READ, REPLY));
                assert_eq!(m.payload[16..], (!u32::from(i - 1)).to_le_bytes());
            }
            _ => assert_eq!(
                (m.command, m.flags, m.error),
                (99, REPLY | ERROR, libc::ENOTSUP as u32)
            ),
        }
    }
    assert_closed(end(peer, thread));
}

#[test]
fn region_write_multi() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let entry = |offset: u64, region: u32, data: &[u8]| {
        let mut d = [0u8; 8];
        d[..data.len()].copy_from_slice(data);
        p().u64(offset).u32(region).u32(data.len() as u32).raw(&d).0
    };
    let liveness = entry(LIVENESS, BAR0, &5u32.to_le_bytes());
    let status = entry(STATUS, BAR0, &0x80u32.to_le_bytes());
    let r = peer.ok(REGION_WRITE_MULTI, &p().u64(2).raw(&liveness).raw(&status));
    assert_eq!(r, p().u64(2).0, "the reply is the number of writes done");
    assert_eq!(peer.read32(BAR0, LIVENESS), !5);
    assert_eq!(peer.read32(BAR0, STATUS), 0x80);
    // wr_cnt that differs from the writes, zero writes, partial entries, bad counts.
    let cases = [
        p().u64(3).raw(&liveness).raw(&status),
        p().u64(1).raw(&liveness).raw(&status),
        p().u64(0),
        p().u64(1).raw(&liveness[..20]),
        p().u64(1).raw(&entry(LIVENESS, BAR0, &[])),
        p().u64(1).raw(&p().u64(LIVENESS).u32(BAR0).u32(9).u64(0).0),
        p().u64(1).raw(&entry(0, 9, &[0; 4])),
        p(),
    ];
    for case in &cases {
        assert_eq!(peer.err(REGION_WRITE_MULTI, case), EINVAL, "{case:?}");
    }
    // All or nothing: a good write before a refused one (config region 7 past its end) is
    // not made either.
    let good = entry(LIVENESS, BAR0, &9u32.to_le_bytes());
    let past_end = entry(0x100, 7, &[0; 4]);
    assert_eq!(
        peer.err(REGION_WRITE_MULTI, &p().u64(2).raw(&good).raw(&past_end)),
        EINVAL
    );
    assert_eq!(
        peer.read32(BAR0, LIVENESS),
        !5,
        "the first write was not made"
    );
    peer.write32(BAR0, STATUS, 0);
    assert_closed(end(peer, thread));
}

// ---- SET_IRQS ----

#[test]
fn intx_eventfd_fires_stays_automasked_until_unmask() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let ev = EventFd::new();
    peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[ev.raw()]);
    assert_eq!(ev.take(), 0);
    peer.write32(BAR0, IRQ_RAISE, 1);
    assert_eq!(ev.take(), 1, "raising INTx signals the eventfd");
    assert_eq!(peer.read32(BAR0, IRQ_STATUS), 1);

    // Automasked: acknowledged and raised again, it stays quiet until UNMASK.
    peer.write32(BAR0, IRQ_ACK, 1);
    peer.write32(BAR0, IRQ_RAISE, 2);
    assert_eq!(ev.take(), 0, "masked since it fired");
    peer.unmask_intx();
    assert_eq!(ev.take(), 1, "unmasking delivers the held event");
    // Still asserted (status 2): each unmask delivers the level again.
    peer.unmask_intx();
    assert_eq!(ev.take(), 1, "the level is still asserted");
    // Acknowledged: unmasking is quiet, and the next raise fires at once.
    peer.write32(BAR0, IRQ_ACK, 2);
    assert_eq!(peer.read32(BAR0, IRQ_STATUS), 0);
    peer.unmask_intx();
    assert_eq!(ev.take(), 0);
    peer.write32(BAR0, IRQ_RAISE, 4);
    assert_eq!(ev.take(), 1);
    peer.write32(BAR0, IRQ_ACK, 4);
    peer.unmask_intx();

    // The client's own MASK holds events; BOOL data picks the vectors.
    peer.ok(SET_IRQS, &irq_set(DATA_BOOL | MASK, INTX, 0, 1).raw(&[1]));
    peer.write32(BAR0, IRQ_RAISE, 8);
    assert_eq!(ev.take(), 0, "masked by the client");
    peer.ok(SET_IRQS, &irq_set(DATA_BOOL | UNMASK, INTX, 0, 1).raw(&[0]));
    assert_eq!(ev.take(), 0, "a false bool leaves the vector alone");
    peer.ok(SET_IRQS, &irq_set(DATA_BOOL | UNMASK, INTX, 0, 1).raw(&[1]));
    assert_eq!(ev.take(), 1);
    peer.write32(BAR0, IRQ_ACK, 8);
    peer.unmask_intx();
    assert_eq!(ev.take(), 0);

    // The client triggers INTx itself (loopback), with DATA_NONE or a true bool.
    peer.set_irqs(DATA_NONE | TRIGGER, INTX, 0, 1, &[]);
    assert_eq!(ev.take(), 1);
    peer.unmask_intx();
    peer.ok(
        SET_IRQS,
        &irq_set(DATA_BOOL | TRIGGER, INTX, 0, 1).raw(&[0]),
    );
    assert_eq!(ev.take(), 0);
    peer.ok(
        SET_IRQS,
        &irq_set(DATA_BOOL | TRIGGER, INTX, 0, 1).raw(&[1]),
    );
    assert_eq!(ev.take(), 1);
    peer.unmask_intx();
    assert_eq!(ev.take(), 0);
    assert_closed(end(peer, thread));
}

#[test]
fn intx_disabled_then_enabled_again_fires() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let first = EventFd::new();
    peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[first.raw()]);
    peer.write32(BAR0, IRQ_RAISE, 1);
    assert_eq!(first.take(), 1);
    // Disabled (count 0, DATA_NONE, TRIGGER) while automasked; nothing signals it now.
    peer.set_irqs(DATA_NONE | TRIGGER, INTX, 0, 0, &[]);
    peer.write32(BAR0, IRQ_ACK, 1);
    peer.write32(BAR0, IRQ_RAISE, 2);
    assert_eq!(first.take(), 0, "disabled");
    peer.write32(BAR0, IRQ_ACK, 2);
    // Enabled again (QEMU does this each time it switches back to INTx): as with VFIO, INTx
    // starts unmasked, so the next raise fires on the new eventfd.
    let second = EventFd::new();
    peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[second.raw()]);
    assert_eq!(second.take(), 0);
    peer.write32(BAR0, IRQ_RAISE, 4);
    assert_eq!(second.take(), 1, "fires after being enabled again");
    assert_eq!(first.take(), 0, "the old eventfd is unrouted");
    // De-assigned by DATA_EVENTFD without fds, while asserted; enabled again, the asserted
    // line is delivered at once.
    peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[]);
    peer.unmask_intx();
    assert_eq!(second.take(), 0, "de-assigned");
    let third = EventFd::new();
    peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[third.raw()]);
    assert_eq!(third.take(), 1, "the line is still asserted");
    peer.write32(BAR0, IRQ_ACK, 4);
    peer.unmask_intx();
    assert_eq!(third.take(), 0);
    // Replacing an eventfd while enabled keeps the mask state (no spurious delivery).
    peer.write32(BAR0, IRQ_RAISE, 8);
    assert_eq!(third.take(), 1);
    let fourth = EventFd::new();
    peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[fourth.raw()]);
    assert_eq!(fourth.take(), 0, "still automasked: nothing until UNMASK");
    peer.unmask_intx();
    assert_eq!(fourth.take(), 1);
    assert_eq!(third.take(), 0);
    peer.write32(BAR0, IRQ_ACK, 8);
    peer.unmask_intx();
    assert_closed(end(peer, thread));
}

#[test]
fn msi_eventfd_after_enabling_msi_in_config() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let cap = u64::from(peer.read(CONFIG, 0x34, 1)[0]);
    assert_eq!(
        peer.read(CONFIG, cap, 1)[0],
        0x05,
        "the capability at {cap:#x} is MSI"
    );
    let control = peer.read16(CONFIG, cap + 2);
    assert_eq!(control & 1, 0, "MSI starts disabled");
    let (intx, msi) = (EventFd::new(), EventFd::new());
    peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[intx.raw()]);
    peer.set_irqs(DATA_EVENTFD | TRIGGER, MSI, 0, 1, &[msi.raw()]);
    peer.write(CONFIG, cap + 2, &(control | 1).to_le_bytes());
    assert_eq!(peer.read16(CONFIG, cap + 2) & 1, 1);

    peer.write32(BAR0, IRQ_RAISE, 1);
    assert_eq!(msi.take(), 1, "a raise is an MSI");
    assert_eq!(intx.take(), 0, "no INTx with MSI enabled");
    peer.write32(BAR0, IRQ_RAISE, 2);
    assert_eq!(
        msi.take(),
        1,
        "MSI is not automasked: every raise is a message"
    );
    // MASK holds a message, UNMASK delivers it.
    peer.set_irqs(DATA_NONE | MASK, MSI, 0, 1, &[]);
    peer.write32(BAR0, IRQ_RAISE, 4);
    assert_eq!(msi.take(), 0);
    peer.set_irqs(DATA_NONE | UNMASK, MSI, 0, 1, &[]);
    assert_eq!(msi.take(), 1);
    // The client triggers it itself.
    peer.set_irqs(DATA_NONE | TRIGGER, MSI, 0, 1, &[]);
    assert_eq!(msi.take(), 1);
    // Disabled (count 0): no more signals.
    peer.set_irqs(DATA_NONE | TRIGGER, MSI, 0, 0, &[]);
    peer.write32(BAR0, IRQ_RAISE, 8);
    assert_eq!(msi.take(), 0);
    peer.write32(BAR0, IRQ_ACK, 0xf);
    peer.write(CONFIG, cap + 2, &control.to_le_bytes());
    assert_eq!(intx.take(), 0);
    assert_closed(end(peer, thread));
}

#[test]
fn set_irqs_bad_forms_are_refused() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let (a, b) = (EventFd::new(), EventFd::new());
    for flags in [
        DATA_NONE | MASK | UNMASK,
        DATA_NONE | MASK | TRIGGER,
        DATA_NONE | DATA_BOOL | TRIGGER,
        DATA_EVENTFD | DATA_NONE | TRIGGER,
        TRIGGER,
        DATA_NONE,
        0,
        DATA_NONE | TRIGGER | 1 << 6,
        DATA_NONE | TRIGGER | 1 << 31,
    ] {
        assert_eq!(
            peer.err(SET_IRQS, &irq_set(flags, INTX, 0, 1)),
            EINVAL,
            "flags {flags:#x}"
        );
    }
    let eventfd = DATA_EVENTFD | TRIGGER;
    let cases: [(P, Vec<RawFd>, i32); 13] = [
        // An fd count that is neither count nor 0.
        (irq_set(eventfd, INTX, 0, 1), vec![a.raw(), b.raw()], EINVAL),
        (irq_set(eventfd, MSI, 0, 1), vec![a.raw(), b.raw()], EINVAL),
        // More vectors than the index has, a start past them, start + count overflowing.
        (irq_set(eventfd, INTX, 0, 2), vec![a.raw(), b.raw()], EINVAL),
        (irq_set(eventfd, INTX, 1, 1), vec![a.raw()], EINVAL),
        (
            irq_set(DATA_NONE | TRIGGER, INTX, u32::MAX, 1),
            vec![],
            EINVAL,
        ),
        // Indices past the last, or with no vectors.
        (irq_set(eventfd, 5, 0, 1), vec![a.raw()], EINVAL),
        (irq_set(eventfd, MSIX, 0, 1), vec![a.raw()], EINVAL),
        (irq_set(DATA_NONE | MASK, ERR_IRQ, 0, 1), vec![], EINVAL),
        // Fds where the data is not EVENTFD.
        (
            irq_set(DATA_NONE | TRIGGER, INTX, 0, 1),
            vec![a.raw()],
            EINVAL,
        ),
        // Bools that differ from count.
        (irq_set(DATA_BOOL | TRIGGER, INTX, 0, 1), vec![], EINVAL),
        (
            irq_set(DATA_BOOL | TRIGGER, INTX, 0, 1).raw(&[1, 1]),
            vec![],
            EINVAL,
        ),
        // Mask/unmask notification eventfds (KVM's resampler) are not offered.
        (
            irq_set(DATA_EVENTFD | UNMASK, INTX, 0, 1),
            vec![a.raw()],
            libc::ENOTSUP,
        ),
        // Short.
        (
            p().u32(20).u32(DATA_NONE | TRIGGER).u32(INTX),
            vec![],
            EINVAL,
        ),
    ];
    for (payload, fds, errno) in &cases {
        assert_eq!(
            peer.err_fds(SET_IRQS, payload, fds),
            *errno,
            "{payload:?} with {} fds",
            fds.len()
        );
    }
    // Count 0 with anything but DATA_NONE + TRIGGER is not the "disable" form.
    assert_eq!(
        peer.err(SET_IRQS, &irq_set(DATA_NONE | MASK, INTX, 0, 0)),
        EINVAL
    );
    // "Disable" of an index without vectors is fine.
    peer.set_irqs(DATA_NONE | TRIGGER, MSIX, 0, 0, &[]);
    // None of the refused registrations took.
    peer.write32(BAR0, IRQ_RAISE, 1);
    assert_eq!((a.take(), b.take()), (0, 0));
    peer.write32(BAR0, IRQ_ACK, 1);
    assert_closed(end(peer, thread));
}

// ---- DMA ----

#[test]
fn dma_map_with_a_memfd_and_edu_dma_through_it() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let ram = memfd(0x4000);
    let data = pattern(256, 3);
    ram.write_all_at(&data, 0).unwrap();
    let r = peer.ok_fds(
        DMA_MAP,
        &dma_map(RW, 0, 0x10_0000, 0x4000),
        &[ram.as_raw_fd()],
    );
    assert!(r.is_empty(), "DMA_MAP's reply has no payload");

    // Without bus mastering nothing moves.
    edu_dma(&mut peer, EDU_BUFFER, 0x10_1000, 256, true);
    assert_eq!(read_at(&ram, 0x1000, 256), vec![0; 256]);
    // RAM to edu's buffer and back one page further on.
    bus_master(&mut peer, true);
    edu_dma(&mut peer, 0x10_0000, EDU_BUFFER, 256, false);
    edu_dma(&mut peer, EDU_BUFFER, 0x10_1000, 256, true);
    assert_eq!(read_at(&ram, 0x1000, 256), data);

    // A second mapping of the same memfd at an offset.
    peer.ok_fds(
        DMA_MAP,
        &dma_map(RW, 0x2000, 0x20_0000, 0x1000),
        &[ram.as_raw_fd()],
    );
    edu_dma(&mut peer, EDU_BUFFER, 0x20_0080, 256, true);
    assert_eq!(read_at(&ram, 0x2080, 256), data);
    // One transfer across two adjacent mappings lands in both.
    let ram2 = memfd(0x1000);
    peer.ok_fds(
        DMA_MAP,
        &dma_map(RW, 0, 0x10_4000, 0x1000),
        &[ram2.as_raw_fd()],
    );
    edu_dma(&mut peer, EDU_BUFFER, 0x10_3f80, 256, true);
    assert_eq!(read_at(&ram, 0x3f80, 128), data[..128]);
    assert_eq!(read_at(&ram2, 0, 128), data[128..]);
    assert!(
        peer.requests.is_empty(),
        "mapped memory is never reached by messages"
    );

    // DMA_UNMAP of exactly a mapping: the reply is the request.
    let unmap = dma_unmap(0, 0x20_0000, 0x1000);
    assert_eq!(peer.ok(DMA_UNMAP, &unmap), unmap.0);
    // Unknown: gone already, part of a mapping, more than one.
    for (address, size) in [
        (0x20_0000, 0x1000),
        (0x10_0000, 0x1000),
        (0x10_0000, 0x5000),
    ] {
        assert_eq!(
            peer.err(DMA_UNMAP, &dma_unmap(0, address, size)),
            libc::ENOENT,
            "{address:#x}+{size:#x}"
        );
    }
    // What was unmapped faults: nothing lands there.
    edu_dma(&mut peer, EDU_BUFFER, 0x20_0800, 256, true);
    assert_eq!(read_at(&ram, 0x2800, 256), vec![0; 256]);
    // UNMAP_ALL: the reply is the request; every mapping faults after it.
    let all = dma_unmap(UNMAP_ALL, 0, 0);
    assert_eq!(peer.ok(DMA_UNMAP, &all), all.0);
    edu_dma(&mut peer, EDU_BUFFER, 0x10_3000, 256, true);
    edu_dma(&mut peer, EDU_BUFFER, 0x10_4800, 256, true);
    assert_eq!(read_at(&ram, 0x3000, 256), vec![0; 256]);
    assert_eq!(read_at(&ram2, 0x800, 256), vec![0; 256]);
    // The space is free again.
    peer.ok_fds(
        DMA_MAP,
        &dma_map(RW, 0, 0x10_0000, 0x4000),
        &[ram.as_raw_fd()],
    );
    edu_dma(&mut peer, EDU_BUFFER, 0x10_3000, 256, true);
    assert_eq!(read_at(&ram, 0x3000, 256), data);
    assert!(peer.requests.is_empty());
    assert_closed(end(peer, thread));
}

#[test]
fn dma_map_and_unmap_bad_forms_are_refused() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let ram = memfd(0x20_0000);
    let short = memfd(0x1000);
    // An fd shorter than the mapping would SIGBUS the server on a transfer past its end.
    assert_eq!(
        peer.err_fds(
            DMA_MAP,
            &dma_map(RW, 0, 0x80_0000, 0x2000),
            &[short.as_raw_fd()]
        ),
        libc::EINVAL
    );
    assert_eq!(
        peer.err_fds(
            DMA_MAP,
            &dma_map(RW, 0x1000, 0x80_0000, 0x1000),
            &[short.as_raw_fd()]
        ),
        libc::EINVAL
    );
    let fd = ram.as_raw_fd();
    peer.ok_fds(DMA_MAP, &dma_map(RW, 0, 0x10_0000, 0x4000), &[fd]);
    // Overlapping maps, with and without an fd: EEXIST.
    for (address, size) in [
        (0x10_0000, 0x4000),
        (0x10_1000, 0x1000),
        (0xf_f000, 0x2000),
        (0x10_3000, 0x2000),
        (0xf_0000, 0x10_0000),
    ] {
        assert_eq!(
            peer.err_fds(DMA_MAP, &dma_map(RW, 0, address, size), &[fd]),
            libc::EEXIST,
            "{address:#x}+{size:#x}"
        );
        assert_eq!(
            peer.err(DMA_MAP, &dma_map(RW, 0, address, size)),
            libc::EEXIST,
            "{address:#x}+{size:#x} without an fd"
        );
    }
    // Adjacent on either side is fine.
    peer.ok_fds(DMA_MAP, &dma_map(RW, 0x8000, 0xf_f000, 0x1000), &[fd]);
    peer.ok(DMA_MAP, &dma_map(RW, 0, 0x10_4000, 0x1000));
    // Shapes: unaligned address, size or (with an fd) offset; empty; past 2^64; flags.
    for (flags, offset, address, size) in [
        (RW, 0, 0x20_0800, 0x1000),
        (RW, 0, 0x20_0000, 0x800),
        (RW, 0x100, 0x20_0000, 0x1000),
        (RW, 0, 0x20_0000, 0),
        (RW, 0, 0xffff_ffff_ffff_f000, 0x2000),
        (RW | 4, 0, 0x20_0000, 0x1000),
        (1 << 31, 0, 0x20_0000, 0x1000),
    ] {
        assert_eq!(
            peer.err_fds(DMA_MAP, &dma_map(flags, offset, address, size), &[fd]),
            EINVAL,
            "flags {flags:#x} offset {offset:#x} at {address:#x}+{size:#x}"
        );
    }
    assert_eq!(
        peer.err_fds(DMA_MAP, &dma_map(RW, 0, 0x20_0000, 0x1000), &[fd, fd]),
        EINVAL,
        "two fds"
    );
    assert_eq!(
        peer.err(DMA_MAP, &p().u32(32).u32(RW).u64(0).u64(0x20_0000)),
        EINVAL,
        "short"
    );
    // An fd that cannot be mapped.
    let ev = EventFd::new();
    assert_eq!(
        peer.err_fds(DMA_MAP, &dma_map(RW, 0, 0x20_0000, 0x1000), &[ev.raw()]),
        libc::ENODEV
    );
    // DMA_UNMAP shapes: dirty bitmap (not supported), undefined flags, UNMAP_ALL with an
    // address or size, an fd, short.
    for (flags, address, size) in [
        (UNMAP_DIRTY_BITMAP, 0x10_0000, 0x4000),
        (4, 0x10_0000, 0x4000),
        (UNMAP_ALL, 0x10_0000, 0),
        (UNMAP_ALL, 0, 0x4000),
    ] {
        assert_eq!(
            peer.err(DMA_UNMAP, &dma_unmap(flags, address, size)),
            EINVAL,
            "flags {flags:#x} at {address:#x}+{size:#x}"
        );
    }
    assert_eq!(
        peer.err_fds(DMA_UNMAP, &dma_unmap(0, 0x10_0000, 0x4000), &[fd]),
        EINVAL
    );
    assert_eq!(
        peer.err(DMA_UNMAP, &p().u32(24).u32(0).u64(0x10_0000)),
        EINVAL
    );
    // None of the refusals changed the mappings.
    for (address, size) in [(0x10_0000, 0x4000), (0xf_f000, 0x1000), (0x10_4000, 0x1000)] {
        let req = dma_unmap(0, address, size);
        assert_eq!(peer.ok(DMA_UNMAP, &req), req.0);
    }
    assert_eq!(
        peer.err(DMA_UNMAP, &dma_unmap(0, 0x20_0000, 0x1000)),
        libc::ENOENT
    );
    assert_closed(end(peer, thread));
}

#[test]
fn dma_maps_are_limited_to_max_dma_maps() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    for i in 0..1024u64 {
        peer.ok(DMA_MAP, &dma_map(RW, 0, 0x1000_0000 + i * 0x2000, 0x1000));
    }
    assert_eq!(
        peer.err(DMA_MAP, &dma_map(RW, 0, 0x1000, 0x1000)),
        libc::ENOSPC
    );
    let one = dma_unmap(0, 0x1000_0000, 0x1000);
    assert_eq!(peer.ok(DMA_UNMAP, &one), one.0);
    peer.ok(DMA_MAP, &dma_map(RW, 0, 0x1000, 0x1000));
    let all = dma_unmap(UNMAP_ALL, 0, 0);
    assert_eq!(peer.ok(DMA_UNMAP, &all), all.0);
    peer.ok(DMA_MAP, &dma_map(RW, 0, 0x1000_0000, 0x1000));
    assert_closed(end(peer, thread));
}

#[test]
fn dma_without_an_fd_goes_through_dma_read_and_dma_write() {
    let _g = shared();
    let device = edu();
    let (mut peer, thread) = serve(&device);
    // The client takes at most 64 bytes per data message.
    peer.negotiate_with(br#"{"capabilities":{"max_data_xfer_size":64}}"#);
    let base = 0x20_0000;
    let data = pattern(256, 11);
    let mut mem = vec![0u8; 0x2000];
    mem[..256].copy_from_slice(&data);
    peer.memory = Some((base, mem));
    assert!(peer.ok(DMA_MAP, &dma_map(RW, 0, base, 0x2000)).is_empty());
    bus_master(&mut peer, true);

    // RAM to the buffer: DMA_READs (address, count) of 64 bytes each, in order.
    edu_dma(&mut peer, base, EDU_BUFFER, 256, false);
    let reads: Vec<_> = peer
        .requests
        .drain(..)
        .map(|m| (m.command, m.flags, m.payload.len(), m.u64(0), m.u64(8)))
        .collect();
    let expected: Vec<_> = (0..4)
        .map(|i| (DMA_READ, 0, 16, base + 64 * i, 64))
        .collect();
    assert_eq!(reads, expected);
    // The buffer to RAM: DMA_WRITEs (address, count, data).
    edu_dma(&mut peer, EDU_BUFFER, base + 0x1000, 256, true);
    let writes: Vec<_> = peer
        .requests
        .drain(..)
        .map(|m| (m.command, m.flags, m.payload.len(), m.u64(0), m.u64(8)))
        .collect();
    let expected: Vec<_> = (0..4)
        .map(|i| (DMA_WRITE, 0, 16 + 64, base + 0x1000 + 64 * i, 64))
        .collect();
    assert_eq!(writes, expected);
    assert_eq!(peer.memory()[0x1000..0x1100], data[..]);

    // A DMA_READ answered with an error, or with too little data: the transfer faults at the
    // first message, and nothing reaches the buffer.
    peer.memory.as_mut().unwrap().1[..256].fill(0xee);
    for mode in [DmaMode::Fail(libc::EFAULT), DmaMode::Short] {
        peer.dma_mode = mode;
        edu_dma(&mut peer, base, EDU_BUFFER, 256, false);
        assert_eq!(
            peer.requests.len(),
            1,
            "{mode:?}: one DMA_READ, then the fault"
        );
        assert_eq!(peer.requests.remove(0).command, DMA_READ);
    }
    peer.dma_mode = DmaMode::Serve;
    edu_dma(&mut peer, EDU_BUFFER, base + 0x1800, 256, true);
    assert_eq!(
        peer.memory()[0x1800..0x1900],
        data[..],
        "the buffer still holds the first transfer"
    );
    peer.requests.clear();
    // A read-only mapping is never written, memory outside every mapping never reached: no
    // message asks the client.
    peer.ok(DMA_MAP, &dma_map(READABLE, 0, 0x30_0000, 0x1000));
    edu_dma(&mut peer, EDU_BUFFER, 0x30_0000, 256, true);
    edu_dma(&mut peer, EDU_BUFFER, 0x40_0000, 256, true);
    assert!(peer.requests.is_empty(), "{:?}", peer.requests);
    // Unmapped, the client's memory is not asked for again.
    let unmap = dma_unmap(0, base, 0x2000);
    assert_eq!(peer.ok(DMA_UNMAP, &unmap), unmap.0);
    edu_dma(&mut peer, EDU_BUFFER, base, 256, true);
    assert!(peer.requests.is_empty(), "{:?}", peer.requests);
    assert_closed(end(peer, thread));
}

// ---- DEVICE_RESET and the unsupported ----

#[test]
fn reset_and_unsupported_commands() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let info = peer.ok(GET_INFO, &device_info(16));
    assert_eq!(
        u32::from_ne_bytes(info[4..8].try_into().unwrap()) & 1,
        1,
        "edu resets (Device::resettable), though its device file has no reset word"
    );
    peer.write32(BAR0, LIVENESS, 3);
    assert!(
        peer.ok(DEVICE_RESET, &p()).is_empty(),
        "no payload in the reply"
    );
    assert_eq!(peer.read32(BAR0, LIVENESS), !0, "back to power-on");
    let ev = EventFd::new();
    assert_eq!(peer.err_fds(DEVICE_RESET, &p(), &[ev.raw()]), EINVAL);

    for (command, payload) in [
        // PROBE | GET of VFIO_DEVICE_FEATURE_MIGRATION.
        (DEVICE_FEATURE, p().u32(16).u32(1 << 18 | 1 << 16 | 1)),
        (DEVICE_FEATURE, p()),
        (DIRTY_PAGES, p().u32(16).u32(1)),
        (MIG_DATA_READ, p().u32(8).u32(4096)),
        (MIG_DATA_WRITE, p().u32(12).u32(4).raw(&[0; 4])),
        (0, p()),
        (19, p()),
        (99, p().u64(1)),
        (u16::MAX, p()),
    ] {
        assert_eq!(
            peer.err(command, &payload),
            libc::ENOTSUP,
            "command {command}"
        );
    }
    // DMA_READ and DMA_WRITE go from the server to the client only.
    assert_eq!(peer.err(DMA_READ, &p().u64(0).u64(4)), EINVAL);
    assert_eq!(peer.err(DMA_WRITE, &p().u64(0).u64(4).raw(&[0; 4])), EINVAL);
    assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
    assert_closed(end(peer, thread));
}

// ---- Hostile clients ----

#[test]
fn untrustworthy_headers_get_an_error_reply_then_a_clean_close() {
    let _g = shared();
    let big = MAX_MESSAGE as u32;
    for (what, bytes, errno) in [
        ("size 0", header(0x4242, GET_INFO, 0, 0, 0), libc::EINVAL),
        ("size 15", header(0x4242, GET_INFO, 15, 0, 0), libc::EINVAL),
        (
            "size past the largest",
            header(0x4242, REGION_WRITE, big + 1, 0, 0),
            libc::E2BIG,
        ),
        (
            "size 4 GiB - 1",
            header(0x4242, REGION_WRITE, u32::MAX, 0, 0),
            libc::E2BIG,
        ),
        (
            "an undefined flag bit",
            header(0x4242, GET_INFO, 16, 1 << 6, 0),
            EINVAL,
        ),
        (
            "flag bit 31",
            header(0x4242, GET_INFO, 16, 1 << 31, 0),
            EINVAL,
        ),
        ("message type 2", header(0x4242, GET_INFO, 16, 2, 0), EINVAL),
        (
            "message type 15",
            header(0x4242, GET_INFO, 16, 0xf, 0),
            EINVAL,
        ),
    ] {
        let (mut peer, thread) = serve(&edu());
        peer.negotiate();
        send_with_fds(&peer.sock, &bytes, &[]);
        let m = peer.next().expect("an error reply before the close");
        let command = ne_u16(&bytes, 2);
        assert_eq!(
            (m.id, m.command, m.size, m.flags, m.error),
            (0x4242, command, 16, REPLY | ERROR, errno as u32),
            "{what}"
        );
        peer.expect_eof();
        assert_dropped(joined(thread));
    }
}

#[test]
fn a_message_cut_short_then_a_close_drops_the_connection() {
    let _g = shared();
    let whole = message(
        7,
        REGION_WRITE,
        0,
        &access(LIVENESS, BAR0, 4).raw(&[1; 4]).0,
    );
    for cut in [1, 8, 15, 16, 20, whole.len() - 1] {
        let (mut peer, thread) = serve(&edu());
        peer.negotiate();
        send_with_fds(&peer.sock, &whole[..cut], &[]);
        peer.sock.shutdown(Shutdown::Write).unwrap();
        peer.expect_eof();
        let why = assert_dropped(joined(thread));
        assert!(why.contains(&format!("{cut} bytes")), "{cut}: {why}");
    }
    // A close between messages is a clean end.
    let (mut peer, thread) = serve(&edu());
    peer.negotiate();
    peer.sock.shutdown(Shutdown::Write).unwrap();
    peer.expect_eof();
    assert_closed(joined(thread));
}

#[test]
fn too_many_fds_or_fds_where_none_go_get_an_error_and_the_server_goes_on() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let evs: Vec<EventFd> = (0..40).map(|_| EventFd::new()).collect();
    let fds: Vec<RawFd> = evs.iter().map(EventFd::raw).collect();
    // 40 fds on one message: more than the server has room for.
    assert_eq!(peer.err_fds(GET_INFO, &device_info(16), &fds), EINVAL);
    assert_eq!(
        peer.err_fds(SET_IRQS, &irq_set(DATA_EVENTFD | TRIGGER, INTX, 0, 1), &fds),
        EINVAL
    );
    // Fds on messages that take none.
    assert_eq!(peer.err_fds(GET_INFO, &device_info(16), &fds[..1]), EINVAL);
    assert_eq!(
        peer.err_fds(GET_REGION_INFO, &region_info(32, 0), &fds[..3]),
        EINVAL
    );
    assert_eq!(
        peer.err_fds(REGION_READ, &access(ID, BAR0, 4), &fds[..1]),
        EINVAL
    );
    assert_eq!(
        peer.err_fds(
            REGION_WRITE,
            &access(LIVENESS, BAR0, 4).raw(&[0; 4]),
            &fds[..2]
        ),
        EINVAL
    );
    assert_eq!(
        peer.err_fds(VERSION, &version(0, 1, b"\0"), &fds[..1]),
        EINVAL
    );
    // None of those took an eventfd for INTx; the server goes on.
    peer.write32(BAR0, IRQ_RAISE, 1);
    assert!(evs.iter().all(|e| e.take() == 0));
    peer.write32(BAR0, IRQ_ACK, 1);
    assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
    assert_closed(end(peer, thread));
}

#[test]
fn replies_to_nothing_are_ignored() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    peer.send(
        DMA_READ,
        REPLY,
        &p().u64(0).u64(4).raw(&[1, 2, 3, 4]).0,
        &[],
    );
    peer.send(DMA_WRITE, REPLY | ERROR, &[], &[]);
    peer.send(REGION_READ, REPLY, &[], &[]);
    peer.send(99, REPLY | NO_REPLY, &[0; 64], &[]);
    // The next message on the socket is the reply to this.
    assert_eq!(peer.read32(BAR0, ID), 0x0100_00ed);
    assert_closed(end(peer, thread));
}

#[test]
fn hostile_sessions_leak_no_fds() {
    let _g = exclusive();
    let device = edu();
    let before = settled_fds();
    {
        // Everything that hands the server fds, then a clean close.
        let (mut peer, thread) = serve(&device);
        peer.negotiate();
        let evs: Vec<EventFd> = (0..40).map(|_| EventFd::new()).collect();
        let fds: Vec<RawFd> = evs.iter().map(EventFd::raw).collect();
        let ram = memfd(0x2000);
        let ram_fd = ram.as_raw_fd();
        assert_eq!(peer.err_fds(GET_INFO, &device_info(16), &fds), EINVAL);
        assert_eq!(peer.err_fds(GET_INFO, &device_info(16), &fds[..3]), EINVAL);
        assert_eq!(
            peer.err_fds(
                SET_IRQS,
                &irq_set(DATA_EVENTFD | TRIGGER, INTX, 0, 1),
                &fds[..2]
            ),
            EINVAL
        );
        assert_eq!(
            peer.err_fds(
                SET_IRQS,
                &irq_set(DATA_EVENTFD | TRIGGER, INTX, 0, 2),
                &fds[..2]
            ),
            EINVAL
        );
        assert_eq!(
            peer.err_fds(
                DMA_MAP,
                &dma_map(RW, 0, 0x10_0000, 0x1000),
                &[ram_fd, fds[0]]
            ),
            EINVAL
        );
        assert_eq!(
            peer.err_fds(DMA_MAP, &dma_map(RW, 0, 0x10_0000, 0x1000), &[fds[0]]),
            libc::ENODEV
        );
        peer.ok_fds(DMA_MAP, &dma_map(RW, 0, 0x10_0000, 0x2000), &[ram_fd]);
        assert_eq!(
            peer.err_fds(DMA_MAP, &dma_map(RW, 0, 0x10_0000, 0x1000), &[ram_fd]),
            libc::EEXIST
        );
        peer.ok_fds(DMA_MAP, &dma_map(RW, 0, 0x20_0000, 0x1000), &[ram_fd]);
        let unmap = dma_unmap(0, 0x20_0000, 0x1000);
        assert_eq!(peer.ok(DMA_UNMAP, &unmap), unmap.0);
        // Fds on a reply to nothing, and on an unsupported command.
        peer.send(DMA_READ, REPLY, &[0; 16], &fds[..4]);
        assert_eq!(peer.err_fds(DEVICE_FEATURE, &p(), &fds[..2]), libc::ENOTSUP);
        // Eventfds kept, replaced, de-assigned.
        peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &fds[..1]);
        peer.set_irqs(DATA_EVENTFD | TRIGGER, MSI, 0, 1, &fds[1..2]);
        peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &fds[2..3]);
        peer.set_irqs(DATA_EVENTFD | TRIGGER, MSI, 0, 1, &[]);
        peer.set_irqs(DATA_EVENTFD | TRIGGER, MSI, 0, 1, &fds[3..4]);
        assert_closed(end(peer, thread));
        // The eventfd the server held is unrouted: raising INTx signals nobody.
        device.write(BAR0, IRQ_RAISE, &1u32.to_le_bytes()).unwrap();
        assert!(evs.iter().all(|e| e.take() == 0));
        device.write(BAR0, IRQ_ACK, &1u32.to_le_bytes()).unwrap();
    }
    {
        // Fds with a header that cannot be trusted.
        let (mut peer, thread) = serve(&device);
        peer.negotiate();
        let ev = EventFd::new();
        send_with_fds(&peer.sock, &header(1, GET_INFO, 8, 0, 0), &[ev.raw(); 3]);
        assert_eq!(peer.next().unwrap().flags, REPLY | ERROR);
        peer.expect_eof();
        assert_dropped(joined(thread));
    }
    {
        // Fds with a message cut short, after a mapping and an eventfd were given.
        let (mut peer, thread) = serve(&device);
        peer.negotiate();
        let ram = memfd(0x1000);
        let ev = EventFd::new();
        peer.ok_fds(
            DMA_MAP,
            &dma_map(RW, 0, 0x10_0000, 0x1000),
            &[ram.as_raw_fd()],
        );
        peer.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[ev.raw()]);
        let m = message(1, DMA_MAP, 0, &dma_map(RW, 0, 0x20_0000, 0x1000).0);
        send_with_fds(&peer.sock, &m[..30], &[ram.as_raw_fd(), ev.raw()]);
        peer.sock.shutdown(Shutdown::Write).unwrap();
        peer.expect_eof();
        assert_dropped(joined(thread));
    }
    for first in [
        // Fds on commands before VERSION (a malformed one, and VERSION itself).
        message(1, GET_INFO, 0, &device_info(16).0),
        message(1, VERSION, 0, &version(1, 0, b"\0").0),
    ] {
        let (mut peer, thread) = serve(&device);
        let ev = EventFd::new();
        send_with_fds(&peer.sock, &first, &[ev.raw()]);
        assert_eq!(peer.next().unwrap().flags, REPLY | ERROR);
        drop(peer);
        let _ = joined(thread);
    }
    let after = open_fds();
    assert_eq!(
        before, after,
        "open fds before and after the hostile sessions"
    );
}

// ---- Several clients, one listener ----

#[test]
fn clients_in_turn_on_one_listener() {
    let _g = shared();
    let path = socket_path("clients-in-turn");
    let listener = UnixListener::bind(&path).unwrap();
    let device = edu();
    let server = Server::new(device.clone()).unwrap();
    std::thread::spawn(move || server.serve(&listener));
    let data = pattern(256, 5);

    // Client 1 sets state: liveness, bus mastering, a DMA mapping, an INTx eventfd, and
    // leaves INTx raised and unacknowledged.
    let mut one = Peer::new(UnixStream::connect(&path).unwrap());
    one.negotiate();
    one.write32(BAR0, LIVENESS, 0x00c0_ffee);
    let ram = memfd(0x2000);
    ram.write_all_at(&data, 0).unwrap();
    one.ok_fds(
        DMA_MAP,
        &dma_map(RW, 0, 0x10_0000, 0x2000),
        &[ram.as_raw_fd()],
    );
    bus_master(&mut one, true);
    edu_dma(&mut one, 0x10_0000, EDU_BUFFER, 256, false);
    edu_dma(&mut one, EDU_BUFFER, 0x10_1000, 256, true);
    assert_eq!(read_at(&ram, 0x1000, 256), data);
    let ev1 = EventFd::new();
    one.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[ev1.raw()]);
    one.write32(BAR0, IRQ_RAISE, 1);
    assert_eq!(ev1.take(), 1);
    drop(one);

    // Client 2: the device state is retained...
    let mut two = Peer::new(UnixStream::connect(&path).unwrap());
    two.negotiate();
    assert_eq!(
        two.read32(BAR0, LIVENESS),
        !0x00c0_ffee,
        "device state retained"
    );
    assert_eq!(two.read32(BAR0, IRQ_STATUS), 1, "interrupt status retained");
    assert_ne!(
        two.read16(CONFIG, COMMAND) & BUS_MASTER,
        0,
        "config retained"
    );
    // ... but client 1's memory is gone: the same DMA faults, nothing lands in it, and no
    // message asks client 2 for it.
    ram.write_all_at(&[0; 256], 0x1000).unwrap();
    edu_dma(&mut two, EDU_BUFFER, 0x10_1000, 256, true);
    assert_eq!(
        read_at(&ram, 0x1000, 256),
        vec![0; 256],
        "client 1's memory unmapped"
    );
    assert!(two.requests.is_empty());
    let unmap = dma_unmap(0, 0x10_0000, 0x2000);
    assert_eq!(
        two.err(DMA_UNMAP, &unmap),
        libc::ENOENT,
        "client 2 has no mappings"
    );
    // INTx is routed nowhere: client 1's eventfd hears nothing.
    two.write32(BAR0, IRQ_ACK, 1);
    two.write32(BAR0, IRQ_RAISE, 2);
    assert_eq!(ev1.take(), 0, "client 1's eventfd is unrouted");
    // Until client 2 registers its own: then the pending interrupt reaches it.
    let ev2 = EventFd::new();
    two.set_irqs(DATA_EVENTFD | TRIGGER, INTX, 0, 1, &[ev2.raw()]);
    assert_eq!(
        ev2.take(),
        1,
        "the interrupt pending since before client 2 came"
    );
    two.write32(BAR0, IRQ_ACK, 2);
    two.unmask_intx();
    two.write32(BAR0, IRQ_RAISE, 4);
    assert_eq!(ev2.take(), 1);
    assert_eq!(ev1.take(), 0);
    two.write32(BAR0, IRQ_ACK, 4);
    two.unmask_intx();
    // Its own mapping works, at the same bus address.
    let ram2 = memfd(0x2000);
    two.ok_fds(
        DMA_MAP,
        &dma_map(RW, 0, 0x10_0000, 0x2000),
        &[ram2.as_raw_fd()],
    );
    edu_dma(&mut two, EDU_BUFFER, 0x10_1000, 256, true);
    assert_eq!(read_at(&ram2, 0x1000, 256), data);
    assert_eq!(read_at(&ram, 0x1000, 256), vec![0; 256]);
    drop(two);

    // And a third is served too.
    let mut three = Peer::new(UnixStream::connect(&path).unwrap());
    three.negotiate();
    assert_eq!(three.read32(BAR0, ID), 0x0100_00ed);
    drop(three);
    let _ = std::fs::remove_file(&path);
}

// ---- The crate's own client against the server ----

#[test]
fn the_client_describes_and_drives_the_served_edu() {
    let _g = shared();
    let path = socket_path("client");
    let listener = UnixListener::bind(&path).unwrap();
    let device = edu();
    let server = Server::new(device.clone()).unwrap();
    let thread: ServerThread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        server.serve_connection(stream)
    });
    let client = Client::connect(&path, Some(0x10000)).unwrap();
    let _ = std::fs::remove_file(&path);

    let d = devfd_format::parse(client.description()).unwrap();
    let id = d.pci_id().unwrap();
    assert_eq!((id.vendor, id.device), (0x1234, 0x11e8));
    assert_eq!((id.subsystem_vendor, id.subsystem_device), (0x1af4, 0x1100));
    assert_eq!((id.class, id.revision), (0x00ff00, 0x10));
    let bar0 = d.region(0).expect("region 0");
    assert_eq!(bar0.size, MIB);
    assert!(matches!(bar0.location(), Location::PciBar { bar: 0, .. }));
    let config = d.region(7).expect("region 7");
    assert_eq!(config.size, 256);
    assert_eq!(config.location(), Location::PciConfig);
    let window = d.region(DMA_REGION).expect("the DMA window");
    assert_eq!(window.size, 0x10000);
    assert_eq!(window.dma_address(), Some(devfd_emu::DEFAULT_BUS_ADDRESS));
    assert_eq!(d.regions().count(), 3);
    let irqs: Vec<_> = d
        .interrupts()
        .map(|i| (i.index, i.kind, i.count, i.automasked()))
        .collect();
    assert_eq!(
        irqs,
        [(0, IRQ_KIND_INTX, 1, true), (1, IRQ_KIND_MSI, 1, false)]
    );

    // Accesses through the client reach the served edu.
    let read32 = |offset: u64| {
        let mut b = [0u8; 4];
        client.read(0, offset, &mut b).unwrap();
        u32::from_le_bytes(b)
    };
    assert_eq!(read32(ID), 0x0100_00ed);
    client.write(0, LIVENESS, &9u32.to_le_bytes()).unwrap();
    assert_eq!(read32(LIVENESS), !9);
    let mut b = [0u8; 4];
    device.read(0, LIVENESS, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), !9, "the served device itself");

    // INTx through the client's eventfd.
    let sub = client.interrupts().subscribe();
    client.write(0, IRQ_RAISE, &1u32.to_le_bytes()).unwrap();
    let mut events = 0;
    eventually("INTx through the client", || {
        events += sub.take(0, 0).unwrap();
        events > 0
    });
    assert_eq!(events, 1);
    client.write(0, IRQ_ACK, &1u32.to_le_bytes()).unwrap();
    client.set_irq_mask(0, 0, false).unwrap();

    // edu's DMA into the client's window (a memfd given with DMA_MAP).
    let bus = devfd_emu::DEFAULT_BUS_ADDRESS;
    let data = pattern(256, 9);
    client.write(DMA_REGION, 0, &data).unwrap();
    let mut command = [0u8; 2];
    client.read(7, COMMAND, &mut command).unwrap();
    let command = u16::from_le_bytes(command) | BUS_MASTER | MEMORY_SPACE;
    client.write(7, COMMAND, &command.to_le_bytes()).unwrap();
    for (src, dst, direction) in [(bus, EDU_BUFFER, 0), (EDU_BUFFER, bus + 0x1000, DMA_TO_RAM)] {
        client.write(0, DMA_SRC, &src.to_le_bytes()).unwrap();
        client.write(0, DMA_DST, &dst.to_le_bytes()).unwrap();
        client.write(0, DMA_COUNT, &256u64.to_le_bytes()).unwrap();
        client
            .write(0, DMA_CMD, &(DMA_RUN | direction).to_le_bytes())
            .unwrap();
        eventually("the DMA transfer to end", || {
            let mut b = [0u8; 8];
            client.read(0, DMA_CMD, &mut b).unwrap();
            u64::from_le_bytes(b) & DMA_RUN == 0
        });
    }
    let mut back = vec![0u8; 256];
    client.read(DMA_REGION, 0x1000, &mut back).unwrap();
    assert_eq!(back, data);

    drop(client);
    assert_closed(joined(thread));
}

// ---- fds and read-ahead ----

/// The server reads ahead (one recvmsg takes several small messages), and a recvmsg returns
/// the fds of the last chunk it read: fds must still go to the message they came with, not
/// to the one before it. Each burst is sent before the server reads any of it.
#[test]
fn fds_stay_with_their_message_when_messages_arrive_together() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    // A posted write (no fds) and at once an eventfd registration for INTx.
    let ev = EventFd::new();
    let write = access(LIVENESS, BAR0, 4).raw(&7u32.to_le_bytes());
    let _ = peer.send(REGION_WRITE, NO_REPLY, &write.0, &[]);
    let id = peer.send(
        SET_IRQS,
        0,
        &irq_set(DATA_EVENTFD | TRIGGER, INTX, 0, 1).0,
        &[ev.raw()],
    );
    let m = peer.next().unwrap();
    assert_eq!(
        (m.id, m.flags),
        (id, REPLY),
        "SET_IRQS got its eventfd: {m:?}"
    );
    assert_eq!(peer.read32(BAR0, LIVENESS), !7, "the posted write was made");
    peer.write32(BAR0, 0x60, 1);
    assert_eq!(ev.take(), 1, "INTx reaches the eventfd sent with SET_IRQS");
    peer.write32(BAR0, 0x64, 1);

    // A DMA_MAP without an fd, then one with: each mapping gets its own backing.
    let ram = memfd(0x2000);
    let a = peer.send(DMA_MAP, 0, &dma_map(RW, 0, 0x10_0000, 0x1000).0, &[]);
    let b = peer.send(
        DMA_MAP,
        0,
        &dma_map(RW, 0, 0x20_0000, 0x2000).0,
        &[ram.as_raw_fd()],
    );
    for id in [a, b] {
        let m = peer.next().unwrap();
        assert_eq!((m.id, m.flags), (id, REPLY), "{m:?}");
    }
    // Many small messages, then fds on the last: still the last one's.
    let ev2 = EventFd::new();
    let mut ids = Vec::new();
    for i in 0..50u32 {
        let w = access(LIVENESS, BAR0, 4).raw(&i.to_le_bytes());
        ids.push(peer.send(REGION_WRITE, 0, &w.0, &[]));
    }
    ids.push(peer.send(
        SET_IRQS,
        0,
        &irq_set(DATA_EVENTFD | TRIGGER, INTX, 0, 1).0,
        &[ev2.raw()],
    ));
    for id in ids {
        let m = peer.next().unwrap();
        assert_eq!((m.id, m.flags), (id, REPLY), "{m:?}");
    }
    peer.unmask_intx();
    peer.write32(BAR0, 0x60, 1);
    assert_eq!(ev2.take(), 1);
    assert_eq!(ev.take(), 0, "the first eventfd was replaced");
    peer.write32(BAR0, 0x64, 1);
    assert_closed(end(peer, thread));
}

/// Only eventfds are signalled, and they are made non-blocking: a pipe (which could block
/// the device's interrupt path once full) is refused.
#[test]
fn set_irqs_takes_eventfds_only() {
    let _g = shared();
    let (mut peer, thread, _device) = connected();
    let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(
        peer.err_fds(
            SET_IRQS,
            &irq_set(DATA_EVENTFD | TRIGGER, INTX, 0, 1),
            &[w.as_raw_fd()]
        ),
        libc::EINVAL
    );
    drop((r, w));
    assert_closed(end(peer, thread));
}
