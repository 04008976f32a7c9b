//! One vfio-user connection's socket: whole messages in and out (header and payload in one
//! `sendmsg`, fds attached), and the server-to-client requests (DMA_READ/DMA_WRITE) whose
//! replies the connection's reader hands over.

use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use zerocopy::IntoBytes;

use crate::error::{ProtocolError, VfioUserError};
use crate::message::MessageHeader;
use crate::sys;
use crate::wire::*;

/// How a message could not be received.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the socket between messages.
    Closed,
    /// The peer closed the socket inside a message (after `got` of its bytes).
    Truncated {
        /// Bytes of the message that arrived.
        got: usize,
    },
    /// The peer stopped sending inside a message (after `got` of its bytes) for longer than
    /// the stall timeout.
    Stalled {
        /// Bytes of the message that arrived.
        got: usize,
    },
    /// The header cannot be trusted (its size, its flags): the stream cannot be followed.
    Header(ProtocolError, MessageHeader),
    /// More fds came with a message (and those read ahead of it) than devfd holds; they were
    /// closed and the stream cannot be followed.
    TooManyFds,
    /// More fds came than the kernel had room for; they were closed.
    FdsTruncated(MessageHeader),
    /// The socket failed.
    Io(io::Error),
}

/// A server-to-client request waiting for its reply.
#[derive(Default)]
struct Pending {
    id: Option<u16>,
    reply: Option<(MessageHeader, Vec<u8>)>,
}

/// How many bytes one `recvmsg` reads ahead.
const READ_AHEAD: usize = 64 * 1024;

/// The most fds held for one message and the messages read ahead of it; a peer that sends
/// more is dropped (it could otherwise exhaust the process's descriptors).
const MAX_FDS_HELD: usize = 64;

/// Bytes read from the socket but not yet taken.
struct ReadAhead {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Stream position (bytes received before) of `buf[0]`.
    base: u64,
    /// Fds that came with a message read ahead, by that message's stream position.
    held: Vec<(u64, OwnedFd)>,
}

impl ReadAhead {
    /// The size a buffered header at stream position `at` announces, if all 16 bytes of it
    /// are in the buffer.
    fn size_at(&self, at: u64) -> Option<u64> {
        let i = usize::try_from(at.checked_sub(self.base)?).ok()?;
        let raw: &[u8; HEADER_LEN] = self
            .buf
            .get(i..i.checked_add(HEADER_LEN)?)?
            .try_into()
            .ok()?;
        Some(u64::from(MessageHeader::unchecked(raw).size))
    }

    /// The stream position of the message that holds stream byte `last`, walking the
    /// buffered headers from the current message (at `message`, `size` bytes if known). A
    /// header that is not whole in the buffer, or announces less than a header, ends the
    /// walk there.
    fn message_holding(&self, last: u64, message: u64, size: Option<u64>) -> u64 {
        let mut at = message;
        let mut size = size.or_else(|| self.size_at(message));
        // Each step passes at least one header's bytes, so the walk ends within the buffer.
        while let Some(n) = size.filter(|&n| n >= HEADER_LEN as u64) {
            let Some(next) = at.checked_add(n).filter(|&next| next <= last) else {
                break;
            };
            at = next;
            size = self.size_at(at);
        }
        at
    }
}

/// A connected socket.
pub struct Channel {
    socket: UnixStream,
    /// Read ahead; only the connection's reader takes from it.
    rx: Mutex<ReadAhead>,
    /// The thread that receives (the first to call `recv`).
    reader: std::sync::OnceLock<std::thread::ThreadId>,
    send_lock: Mutex<()>,
    /// One server-to-client request at a time.
    request_lock: Mutex<()>,
    pending: Mutex<Pending>,
    replied: Condvar,
    next_id: AtomicU16,
    closed: AtomicBool,
    /// The peer's `max_data_xfer_size`.
    peer_max_xfer: AtomicU64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").finish_non_exhaustive()
    }
}

/// How long a server-to-client request waits for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl Channel {
    /// Wraps a connected socket.
    pub fn new(socket: UnixStream) -> Self {
        Channel {
            socket,
            rx: Mutex::new(ReadAhead {
                buf: vec![0u8; READ_AHEAD].into_boxed_slice(),
                start: 0,
                end: 0,
                base: 0,
                held: Vec::new(),
            }),
            reader: std::sync::OnceLock::new(),
            send_lock: Mutex::new(()),
            request_lock: Mutex::new(()),
            pending: Mutex::new(Pending::default()),
            replied: Condvar::new(),
            next_id: AtomicU16::new(0x8000),
            closed: AtomicBool::new(false),
            peer_max_xfer: AtomicU64::new(1 << 20),
        }
    }

    /// Lets a message that stops arriving half-way fail after `timeout` (a client that sends
    /// part of a message and stalls must not hold the socket for ever); idle time between
    /// messages is unlimited.
    /// A peer that stops reading replies for that long fails the send too.
    pub fn set_stall_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.socket.set_read_timeout(Some(timeout))?;
        self.socket.set_write_timeout(Some(timeout))
    }

    /// Sets the peer's `max_data_xfer_size` (from VERSION).
    pub fn set_peer_max_xfer(&self, max: u64) {
        self.peer_max_xfer.store(max.max(1), Ordering::Relaxed);
    }

    /// Takes `dst.len()` bytes of the current message (which starts at stream position
    /// `message`, of `size` bytes once its header is known): first what was read ahead, then
    /// from the socket, reading ahead up to [`READ_AHEAD`] bytes at a time so that a small
    /// message costs one `recvmsg`. `Ok(false)` if the peer closed before the first byte. With
    /// a stall timeout set, waiting before the first byte (`idle_ok`) goes on for ever, but a
    /// message that stops arriving half-way fails.
    ///
    /// Fds go to the message they came with. A `recvmsg` returns the fds of the last chunk
    /// of bytes it read (the kernel stops right after a chunk with fds), and a sender attaches
    /// a message's fds to its first byte, so they belong to the message holding the read's
    /// last byte: the current one, or one read ahead, which [`ReadAhead::held`] keeps them for.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &self,
        rx: &mut ReadAhead,
        dst: &mut [u8],
        fds: &mut Vec<OwnedFd>,
        truncated: &mut bool,
        idle_ok: bool,
        message: u64,
        size: Option<u64>,
    ) -> Result<bool, RecvError> {
        let mut got = 0;
        let mut came: Vec<OwnedFd> = Vec::new();
        while got < dst.len() {
            let buffered = rx.end.saturating_sub(rx.start);
            if buffered > 0 {
                let n = buffered.min(dst.len() - got);
                let (Some(to), Some(from)) = (
                    dst.get_mut(got..got + n),
                    rx.buf.get(rx.start..rx.start + n),
                ) else {
                    break;
                };
                to.copy_from_slice(from);
                rx.start += n;
                got += n;
                continue;
            }
            // The buffer is empty: the stream position is its end.
            rx.base += rx.end as u64;
            rx.start = 0;
            rx.end = 0;
            let direct = dst.len() - got >= READ_AHEAD;
            let into = if direct {
                dst.get_mut(got..).unwrap_or_default()
            } else {
                &mut rx.buf[..]
            };
            let (n, ctrunc) = match sys::recv_with_fds(self.socket.as_fd(), into, &mut came) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if idle_ok && got == 0 {
                        continue;
                    }
                    return Err(RecvError::Stalled { got });
                }
                Err(e) => return Err(RecvError::Io(e)),
            };
            *truncated |= ctrunc;
            if n == 0 {
                return if got == 0 {
                    Ok(false)
                } else {
                    Err(RecvError::Truncated { got })
                };
            }
            if direct {
                // Inside the current message: its fds.
                got += n;
                rx.base += n as u64;
                fds.append(&mut came);
            } else {
                rx.end = n;
                if !came.is_empty() {
                    let last = rx.base + n as u64 - 1;
                    let owner = rx.message_holding(last, message, size);
                    if owner == message {
                        fds.append(&mut came);
                    } else {
                        rx.held.extend(came.drain(..).map(|fd| (owner, fd)));
                    }
                }
            }
            if fds.len() + rx.held.len() > MAX_FDS_HELD {
                fds.clear();
                rx.held.clear();
                return Err(RecvError::TooManyFds);
            }
        }
        Ok(true)
    }

    /// Receives one message: its checked header, its payload into `payload` (resized to it)
    /// and its fds into `fds` (cleared first). A message over `max` bytes is refused. With
    /// `idle_ok`, waiting for a message to begin is not bounded by the stall timeout.
    pub fn recv(
        &self,
        payload: &mut Vec<u8>,
        fds: &mut Vec<OwnedFd>,
        max: usize,
        idle_ok: bool,
    ) -> Result<MessageHeader, RecvError> {
        fds.clear();
        let mut rx = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self.reader.set(std::thread::current().id());
        let message = rx.base + rx.start as u64;
        // Fds that came ahead of this message; any for messages already past are closed.
        let held = std::mem::take(&mut rx.held);
        for (owner, fd) in held {
            match owner.cmp(&message) {
                std::cmp::Ordering::Equal => fds.push(fd),
                std::cmp::Ordering::Greater => rx.held.push((owner, fd)),
                std::cmp::Ordering::Less => drop(fd),
            }
        }
        let mut raw = [0u8; HEADER_LEN];
        let mut ctrunc = false;
        if !self.take(&mut rx, &mut raw, fds, &mut ctrunc, idle_ok, message, None)? {
            return Err(RecvError::Closed);
        }
        let header = match MessageHeader::parse(&raw, max) {
            Ok(h) => h,
            Err(e) => {
                let h = MessageHeader::unchecked(&raw);
                return Err(RecvError::Header(e, h));
            }
        };
        payload.resize(header.payload_len(), 0);
        let size = Some(u64::from(header.size));
        match self.take(&mut rx, payload, fds, &mut ctrunc, false, message, size) {
            Ok(true) => {}
            Ok(false) => return Err(RecvError::Truncated { got: HEADER_LEN }),
            Err(RecvError::Truncated { got }) => {
                return Err(RecvError::Truncated {
                    got: HEADER_LEN + got,
                });
            }
            Err(RecvError::Stalled { got }) => {
                return Err(RecvError::Stalled {
                    got: HEADER_LEN + got,
                });
            }
            Err(e) => return Err(e),
        }
        if ctrunc {
            fds.clear();
            return Err(RecvError::FdsTruncated(header));
        }
        Ok(header)
    }

    /// Sends a message: the header (its size computed) and the payload `parts`, with `fds`.
    pub fn send(
        &self,
        id: u16,
        command: u16,
        flags: u32,
        error: u32,
        parts: &[&[u8]],
        fds: &[RawFd],
    ) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let header = Header {
            id: id.into(),
            command: command.into(),
            size: u32::try_from(HEADER_LEN + len)
                .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?
                .into(),
            flags: flags.into(),
            error: error.into(),
        };
        if parts.len() > 3 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut all: [&[u8]; 4] = [header.as_bytes(), &[], &[], &[]];
        for (slot, p) in all.iter_mut().skip(1).zip(parts) {
            *slot = p;
        }
        let n = parts.len().min(3) + 1;
        let _guard = self
            .send_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sys::send_with_fds(self.socket.as_fd(), all.get(..n).unwrap_or_default(), fds)
    }

    /// Sends a reply to `request`: `errno` 0 for success with `parts`, else an error reply
    /// (header only).
    pub fn reply(
        &self,
        request: &MessageHeader,
        errno: i32,
        parts: &[&[u8]],
        fds: &[RawFd],
    ) -> io::Result<()> {
        if errno == 0 {
            self.send(request.id, request.command, FLAGS_REPLY, 0, parts, fds)
        } else {
            self.send(
                request.id,
                request.command,
                FLAGS_REPLY | FLAGS_ERROR,
                errno as u32,
                &[],
                &[],
            )
        }
    }

    /// Hands a reply the reader received to the request waiting for it; false if none waits
    /// for this id (the reply is dropped).
    pub fn deliver_reply(&self, header: MessageHeader, payload: &[u8]) -> bool {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.id != Some(header.id) || p.reply.is_some() {
            return false;
        }
        p.reply = Some((header, payload.to_vec()));
        self.replied.notify_all();
        true
    }

    /// Marks the connection closed: waiting requests fail.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _guard = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        self.replied.notify_all();
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }

    /// Sends a command to the peer and waits for its reply, which another thread (the
    /// connection's reader) receives and hands over with [`Self::deliver_reply`].
    pub fn request(&self, command: u16, parts: &[&[u8]]) -> Result<Vec<u8>, VfioUserError> {
        let _one = self
            .request_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return Err(VfioUserError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            *p = Pending {
                id: Some(id),
                reply: None,
            };
        }
        let name = crate::message::command_name(command);
        if self.reader_is_me() {
            // Its reply could only come through this very thread.
            return Err(VfioUserError::io(
                format!(
                    "{name} from the connection's own thread (a device doing DMA by messages inside a register access)"
                ),
                io::Error::from_raw_os_error(libc::EDEADLK),
            ));
        }
        if let Err(e) = self.send(id, command, FLAGS_COMMAND, 0, parts, &[]) {
            // Part of the message may be on the socket: the stream cannot be followed.
            self.close();
            return Err(VfioUserError::io(format!("sending {name}"), e));
        }
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some((header, payload)) = p.reply.take() {
                p.id = None;
                if let Some(errno) = header.error() {
                    return Err(VfioUserError::Remote {
                        command: name,
                        errno,
                    });
                }
                return Ok(payload);
            }
            let now = Instant::now();
            if self.closed.load(Ordering::Acquire) || now >= deadline {
                p.id = None;
                return Err(if now >= deadline {
                    VfioUserError::io(
                        format!("waiting for the reply to {name}"),
                        io::Error::from_raw_os_error(libc::ETIMEDOUT),
                    )
                } else {
                    VfioUserError::Closed
                });
            }
            p = self
                .replied
                .wait_timeout(p, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn reader_is_me(&self) -> bool {
        self.reader.get() == Some(&std::thread::current().id())
    }

    /// The peer's `max_data_xfer_size`.
    pub fn peer_max_xfer(&self) -> u64 {
        self.peer_max_xfer.load(Ordering::Relaxed)
    }
}
