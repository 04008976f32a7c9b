//! The server: a devfd [`Device`] served to vfio-user clients (QEMU's `vfio-user-pci`), one
//! client at a time per socket, each one's messages handled in order on one thread.
//!
//! A client's input never panics the server: every message is decoded by
//! [`crate::message::decode_command`] and every access checked against the device file's
//! address map ([`Layout::map`]) exactly as a device-file access is, so the device sees only
//! accesses it accepts. A malformed message gets an error reply; a header that cannot be
//! trusted, or a client that vanishes mid-message, ends the connection cleanly: its fds are
//! closed, its memory unmapped, its interrupts unrouted, and the next client is accepted.
//! The device keeps its state across clients, as the protocol asks.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, PoisonError};

use devfd_device::{Device, DmaSpace, Subscriber, Target};
use zerocopy::IntoBytes;

use crate::channel::{Channel, RecvError};
use crate::error::VfioUserError;
use crate::layout::{Layout, split_access};
use crate::memory::ClientMemory;
use crate::message::{Capabilities, Command, MessageHeader, command_name, decode_command};
use crate::sys;
use crate::wire::*;

/// A device served over vfio-user.
pub struct Server {
    device: Arc<dyn Device>,
    layout: Layout,
    stall_timeout: std::time::Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("device", &self.device.kind())
            .finish_non_exhaustive()
    }
}

/// How long a client may pause inside a message, or leave replies unread, before the server
/// drops it (between messages it may be idle for ever).
pub const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How a connection ended.
#[derive(Debug)]
pub enum ConnectionEnd {
    /// The client closed the socket between messages.
    Closed,
    /// The server ended it: the client broke the protocol so that its stream cannot be
    /// followed (a header's size, a message cut short, a wrong version).
    Dropped(String),
}

/// What the handler of one command answers.
enum Answer {
    /// Success; the reply payload is `Conn::out` (and the fd, if any).
    Ok(Option<RawFd>),
    /// An error reply with this errno.
    Err(i32),
    /// An error reply, then the connection ends.
    Fatal(i32, String),
}

impl Server {
    /// A server for `device`, which must be a PCI device with a configuration-space region.
    pub fn new(device: Arc<dyn Device>) -> Result<Self, VfioUserError> {
        let layout = Layout::new(device.description(), device.resettable())?;
        Ok(Server {
            device,
            layout,
            stall_timeout: STALL_TIMEOUT,
        })
    }

    /// One line about what clients see: identity, regions with sizes, interrupts.
    pub fn summary(&self) -> String {
        let id = devfd_format::parse(self.device.description())
            .ok()
            .and_then(|d| d.pci_id())
            .map(|id| format!("{:04x}:{:04x}", id.vendor, id.device))
            .unwrap_or_default();
        let regions: Vec<String> = self
            .layout
            .regions
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| format!("region {i} {:#x}", r.size)))
            .collect();
        let names = ["intx", "msi", "msix", "err", "req"];
        let irqs: Vec<String> = self
            .layout
            .irqs
            .iter()
            .zip(names)
            .filter_map(|(s, n)| s.map(|s| format!("{n}×{}", s.count)))
            .collect();
        format!("{id}, {}; irqs {}", regions.join(", "), irqs.join(" "))
    }

    /// Sets how long a client may pause inside a message, or stop reading replies, before
    /// it is dropped (default [`STALL_TIMEOUT`]).
    pub fn set_stall_timeout(&mut self, timeout: std::time::Duration) {
        self.stall_timeout = timeout;
    }

    /// How the device looks over vfio-user.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Accepts clients on `listener` one after another, forever; a failed connection is
    /// logged and the next client accepted.
    pub fn serve(&self, listener: &UnixListener) -> Result<(), VfioUserError> {
        loop {
            let (stream, _) = listener
                .accept()
                .map_err(|e| VfioUserError::io("accepting a vfio-user client", e))?;
            match self.serve_connection(stream) {
                Ok(ConnectionEnd::Closed) => log::info!("vfio-user: client disconnected"),
                Ok(ConnectionEnd::Dropped(why)) => {
                    log::warn!("vfio-user: dropped a client: {why}")
                }
                Err(e) => log::warn!("vfio-user: connection failed: {e}"),
            }
        }
    }

    /// Serves one connected client until it leaves, then releases everything it gave.
    pub fn serve_connection(&self, stream: UnixStream) -> Result<ConnectionEnd, VfioUserError> {
        let channel = Arc::new(Channel::new(stream));
        channel
            .set_stall_timeout(self.stall_timeout)
            .map_err(|e| VfioUserError::io("setting the socket's receive timeout", e))?;
        let memory = Arc::new(ClientMemory::new(channel.clone()));
        let routes = Arc::new(IrqRoutes::new(
            &self.layout,
            self.device.interrupts().subscribe(),
        ));
        {
            let (routes, device) = (routes.clone(), self.device.clone());
            self.device
                .interrupts()
                .set_waker(move || routes.deliver(&*device));
        }
        self.device
            .set_dma_space(Some(memory.clone() as Arc<dyn DmaSpace>));
        let mut conn = Conn {
            server: self,
            channel: channel.clone(),
            memory: memory.clone(),
            routes: routes.clone(),
            negotiated: false,
            payload: Vec::with_capacity(MAX_MESSAGE),
            out: Vec::with_capacity(MAX_MESSAGE),
            fds: Vec::with_capacity(MAX_MSG_FDS),
            pieces: Vec::with_capacity(64),
            targets: Vec::with_capacity(64),
        };
        let end = conn.run();
        // The client is gone: what it gave goes with it (the device keeps its state).
        channel.close();
        self.device.interrupts().set_waker(|| {});
        self.device.set_dma_space(None);
        routes.clear();
        memory.unmap_all();
        end
    }
}

/// Where each vector's events go: the client's eventfds, by VFIO irq index and vector.
struct IrqRoutes {
    /// (VFIO index, devfd index, vectors) of every irq the device has.
    irqs: Vec<(u32, u32, u32)>,
    fds: Mutex<Vec<Vec<Option<OwnedFd>>>>,
    subscriber: Arc<Subscriber>,
}

impl IrqRoutes {
    fn new(layout: &Layout, subscriber: Arc<Subscriber>) -> Self {
        let irqs: Vec<(u32, u32, u32)> = layout
            .irqs
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i as u32, s.devfd_index, s.count)))
            .collect();
        let fds = layout
            .irqs
            .iter()
            .map(|s| {
                std::iter::repeat_with(|| None)
                    .take(s.map_or(0, |s| s.count as usize))
                    .collect()
            })
            .collect();
        IrqRoutes {
            irqs,
            fds: Mutex::new(fds),
            subscriber,
        }
    }

    /// Signals the eventfd of every vector with new events. INTx is level-triggered and
    /// automasked, as VFIO's is: it stays masked until the client unmasks it.
    fn deliver(&self, device: &dyn Device) {
        let fds = self.fds.lock().unwrap_or_else(PoisonError::into_inner);
        for &(vfio, devfd, count) in &self.irqs {
            for vector in 0..count {
                if self.subscriber.take(devfd, vector).unwrap_or(0) == 0 {
                    continue;
                }
                let fd = fds.get(vfio as usize).and_then(|v| v.get(vector as usize));
                if let Some(Some(fd)) = fd {
                    // Masked before the client hears of it: its UNMASK, which may come at
                    // once, must land after the automask, never before.
                    if vfio == PCI_INTX_IRQ {
                        device.set_irq_mask(devfd, 0, true);
                    }
                    if let Err(e) = sys::eventfd_signal(fd.as_fd()) {
                        log::warn!("vfio-user: signalling irq {vfio} vector {vector}: {e}");
                    }
                }
            }
        }
    }

    /// Routes vectors `start..start + fds.len()` of VFIO irq `vfio` to `fds` (`None`s
    /// de-assign). Events counted before are dropped: nobody was listening.
    fn set(&self, vfio: u32, devfd: u32, start: u32, fds: impl Iterator<Item = Option<OwnedFd>>) {
        let mut all = self.fds.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(vectors) = all.get_mut(vfio as usize) else {
            return;
        };
        for (i, fd) in fds.enumerate() {
            let vector = start.saturating_add(i as u32);
            if let Some(slot) = vectors.get_mut(vector as usize) {
                let _ = self.subscriber.take(devfd, vector);
                *slot = fd;
            }
        }
    }

    /// Whether any vector of VFIO irq `vfio` has an eventfd.
    fn routed(&self, vfio: u32) -> bool {
        let all = self.fds.lock().unwrap_or_else(PoisonError::into_inner);
        all.get(vfio as usize)
            .is_some_and(|v| v.iter().any(Option::is_some))
    }

    fn clear(&self) {
        let mut all = self.fds.lock().unwrap_or_else(PoisonError::into_inner);
        for v in all.iter_mut() {
            v.iter_mut().for_each(|fd| *fd = None);
        }
    }
}

/// One client's connection.
struct Conn<'s> {
    server: &'s Server,
    channel: Arc<Channel>,
    memory: Arc<ClientMemory>,
    routes: Arc<IrqRoutes>,
    negotiated: bool,
    /// The message being handled (reused: no allocation per message).
    payload: Vec<u8>,
    /// The reply payload being built (reused).
    out: Vec<u8>,
    fds: Vec<OwnedFd>,
    pieces: Vec<(u64, usize)>,
    /// The device target of each piece.
    targets: Vec<(u32, u64)>,
}

impl Conn<'_> {
    fn run(&mut self) -> Result<ConnectionEnd, VfioUserError> {
        loop {
            let header =
                match self
                    .channel
                    .recv(&mut self.payload, &mut self.fds, MAX_MESSAGE, true)
                {
                    Ok(h) => h,
                    Err(RecvError::Closed) => return Ok(ConnectionEnd::Closed),
                    Err(RecvError::Truncated { got }) => {
                        return Ok(ConnectionEnd::Dropped(format!(
                            "the client closed the socket {got} bytes into a message"
                        )));
                    }
                    Err(RecvError::TooManyFds) => {
                        return Ok(ConnectionEnd::Dropped(
                            "more fds came with a message than any message takes".into(),
                        ));
                    }
                    Err(RecvError::Stalled { got }) => {
                        return Ok(ConnectionEnd::Dropped(format!(
                            "the client stopped {got} bytes into a message for {:?}",
                            self.server.stall_timeout
                        )));
                    }
                    Err(RecvError::Header(e, h)) => {
                        // The size cannot be trusted, so neither can anything after it.
                        let _ = self.channel.reply(&h, e.errno(), &[], &[]);
                        return Ok(ConnectionEnd::Dropped(format!("message id {}: {e}", h.id)));
                    }
                    Err(RecvError::FdsTruncated(h)) => {
                        log::warn!("vfio-user: message id {} came with too many fds", h.id);
                        self.reply(&h, Answer::Err(libc::EINVAL))?;
                        continue;
                    }
                    Err(RecvError::Io(e)) => {
                        return Err(VfioUserError::io("receiving from the client", e));
                    }
                };
            if header.is_reply() {
                // A reply to a DMA_READ/DMA_WRITE this server sent.
                if !self.channel.deliver_reply(header, &self.payload) {
                    log::warn!(
                        "vfio-user: a reply (id {}, {}) to no request of the server; dropped",
                        header.id,
                        command_name(header.command)
                    );
                }
                continue;
            }
            let answer = self.handle(&header);
            if let Answer::Fatal(_, why) = &answer {
                let why = why.clone();
                self.reply(&header, answer)?;
                return Ok(ConnectionEnd::Dropped(why));
            }
            self.reply(&header, answer)?;
        }
    }

    fn reply(&mut self, header: &MessageHeader, answer: Answer) -> Result<(), VfioUserError> {
        let result = match answer {
            // A command sent with No_reply gets none, error or not (QEMU's posted writes
            // expect nothing back; the error is logged here).
            Answer::Err(errno) | Answer::Fatal(errno, _) if header.no_reply() => {
                log::warn!(
                    "vfio-user: {} (id {}, no reply wanted) failed: errno {errno}",
                    command_name(header.command),
                    header.id
                );
                Ok(())
            }
            _ if header.no_reply() => Ok(()),
            Answer::Ok(fd) => {
                let fds: &[RawFd] = match &fd {
                    Some(fd) => std::slice::from_ref(fd),
                    None => &[],
                };
                self.channel.reply(header, 0, &[&self.out], fds)
            }
            Answer::Err(errno) | Answer::Fatal(errno, _) => {
                self.channel.reply(header, errno, &[], &[])
            }
        };
        // Fds that came with the message and were not taken are closed here.
        self.fds.clear();
        result.map_err(|e| VfioUserError::io("replying to the client", e))
    }

    fn handle(&mut self, header: &MessageHeader) -> Answer {
        self.out.clear();
        let payload = std::mem::take(&mut self.payload);
        let answer = match decode_command(header, &payload, self.fds.len()) {
            // Before VERSION only a (possibly retried) VERSION is acceptable.
            Err(e) if !self.negotiated && header.command != CMD_VERSION => Answer::Fatal(
                e.errno(),
                format!("message id {} before VERSION: {e}", header.id),
            ),
            Err(e) => {
                log::warn!("vfio-user: message id {}: {e}", header.id);
                Answer::Err(e.errno())
            }
            Ok(Command::Version {
                major,
                minor,
                capabilities,
            }) => self.version(major, minor, capabilities),
            Ok(_) if !self.negotiated => Answer::Fatal(
                libc::EINVAL,
                format!(
                    "{} before VERSION: the first message must be VERSION",
                    command_name(header.command)
                ),
            ),
            Ok(command) => self.command(command),
        };
        self.payload = payload;
        answer
    }

    fn version(&mut self, major: u16, minor: u16, caps: Capabilities) -> Answer {
        if self.negotiated {
            return Answer::Err(libc::EINVAL);
        }
        if major != VERSION_MAJOR {
            return Answer::Fatal(
                libc::ENOTSUP,
                format!("the client proposes vfio-user {major}.{minor}; devfd speaks 0.x"),
            );
        }
        // DMA by messages is chunked by the client's limit, and never above devfd's own
        // (whose replies devfd must still be able to receive).
        self.channel
            .set_peer_max_xfer(caps.max_data_xfer_size.min(MAX_DATA_XFER as u64));
        let ours = Capabilities {
            max_msg_fds: MAX_MSG_FDS as u64,
            max_data_xfer_size: MAX_DATA_XFER as u64,
            max_dma_maps: MAX_DMA_MAPS as u64,
            pgsizes: DMA_PAGE_SIZE,
            write_multiple: false,
            twin_socket: false,
        };
        let v = Version {
            major: VERSION_MAJOR.into(),
            minor: minor.min(VERSION_MINOR).into(),
        };
        self.out.extend_from_slice(v.as_bytes());
        self.out.extend_from_slice(&ours.to_json());
        self.negotiated = true;
        Answer::Ok(None)
    }

    fn command(&mut self, command: Command<'_>) -> Answer {
        let layout = &self.server.layout;
        match command {
            Command::Version { .. } => Answer::Err(libc::EINVAL),
            Command::DmaMap {
                flags,
                offset,
                address,
                size,
                with_fd,
            } => {
                let fd = if with_fd { self.fds.pop() } else { None };
                match self.memory.map(address, size, offset, flags, fd) {
                    Ok(()) => Answer::Ok(None),
                    Err(errno) => Answer::Err(errno),
                }
            }
            Command::DmaUnmap { request, all } => {
                if all {
                    self.memory.unmap_all();
                } else if let Err(errno) =
                    self.memory.unmap(request.address.get(), request.size.get())
                {
                    return Answer::Err(errno);
                }
                self.out.extend_from_slice(request.as_bytes());
                Answer::Ok(None)
            }
            Command::GetInfo { argsz } => {
                if (argsz as usize) < size_of::<DeviceInfo>() {
                    return Answer::Err(libc::EINVAL);
                }
                let mut flags = DEVICE_FLAGS_PCI;
                if layout.reset {
                    flags |= DEVICE_FLAGS_RESET;
                }
                let info = DeviceInfo {
                    argsz: (size_of::<DeviceInfo>() as u32).into(),
                    flags: flags.into(),
                    num_regions: PCI_NUM_REGIONS.into(),
                    num_irqs: PCI_NUM_IRQS.into(),
                };
                self.out.extend_from_slice(info.as_bytes());
                Answer::Ok(None)
            }
            Command::GetRegionInfo { argsz, index } => self.region_info(argsz, index),
            Command::GetRegionIoFds { argsz, index } => {
                if (argsz as usize) < size_of::<RegionIoFds>() || layout.region(index).is_err() {
                    return Answer::Err(libc::EINVAL);
                }
                // No ioeventfds: every access comes as a message.
                let r = RegionIoFds {
                    argsz: (size_of::<RegionIoFds>() as u32).into(),
                    flags: 0.into(),
                    index: index.into(),
                    count: 0.into(),
                };
                self.out.extend_from_slice(r.as_bytes());
                Answer::Ok(None)
            }
            Command::GetIrqInfo { argsz, index } => {
                if (argsz as usize) < size_of::<IrqInfo>() {
                    return Answer::Err(libc::EINVAL);
                }
                let Ok(slot) = layout.irq(index) else {
                    return Answer::Err(libc::EINVAL);
                };
                let mut flags = IRQ_INFO_EVENTFD;
                if slot.is_some_and(|s| s.maskable) || index == PCI_INTX_IRQ {
                    flags |= IRQ_INFO_MASKABLE;
                }
                match index {
                    PCI_INTX_IRQ => flags |= IRQ_INFO_AUTOMASKED,
                    PCI_MSI_IRQ | PCI_MSIX_IRQ => flags |= IRQ_INFO_NORESIZE,
                    _ => {}
                }
                let info = IrqInfo {
                    argsz: (size_of::<IrqInfo>() as u32).into(),
                    flags: flags.into(),
                    index: index.into(),
                    count: slot.map_or(0, |s| s.count).into(),
                };
                self.out.extend_from_slice(info.as_bytes());
                Answer::Ok(None)
            }
            Command::SetIrqs {
                data,
                action,
                index,
                start,
                count,
                bools,
            } => self.set_irqs(data, action, index, start, count, bools),
            Command::RegionRead {
                offset,
                region,
                count,
            } => {
                let head = RegionAccess {
                    offset: offset.into(),
                    region: region.into(),
                    count: count.into(),
                };
                self.out.extend_from_slice(head.as_bytes());
                self.out
                    .resize(size_of::<RegionAccess>() + count as usize, 0);
                let mut data = std::mem::take(&mut self.out);
                let result =
                    self.access(region, offset, data.get_mut(16..).unwrap_or_default(), None);
                self.out = data;
                match result {
                    Ok(()) => Answer::Ok(None),
                    Err(errno) => Answer::Err(errno),
                }
            }
            Command::RegionWrite {
                offset,
                region,
                data,
            } => {
                let head = RegionAccess {
                    offset: offset.into(),
                    region: region.into(),
                    count: (data.len() as u32).into(),
                };
                match self.access(region, offset, &mut [], Some(data)) {
                    Ok(()) => {
                        self.out.extend_from_slice(head.as_bytes());
                        Answer::Ok(None)
                    }
                    Err(errno) => Answer::Err(errno),
                }
            }
            Command::RegionWriteMulti { writes } => {
                // Every write is checked before any is made: a refused one leaves no effect.
                for w in writes {
                    let len = (w.count.get() as usize).min(8);
                    if let Err(errno) = self.plan(w.region.get(), w.offset.get(), len, true) {
                        return Answer::Err(errno);
                    }
                }
                for w in writes {
                    let n = (w.count.get() as usize).min(8);
                    let data = w.data.get(..n).unwrap_or_default();
                    if let Err(errno) =
                        self.access(w.region.get(), w.offset.get(), &mut [], Some(data))
                    {
                        return Answer::Err(errno);
                    }
                }
                self.out
                    .extend_from_slice(&(writes.len() as u64).to_ne_bytes());
                Answer::Ok(None)
            }
            Command::Reset => {
                if !layout.reset {
                    return Answer::Err(libc::ENOTSUP);
                }
                self.server.device.reset();
                Answer::Ok(None)
            }
            Command::NotSupported(_) => Answer::Err(libc::ENOTSUP),
        }
    }

    fn region_info(&mut self, argsz: u32, index: u32) -> Answer {
        const HEAD: usize = size_of::<RegionInfo>();
        if (argsz as usize) < HEAD {
            return Answer::Err(libc::EINVAL);
        }
        let Ok(slot) = self.server.layout.region(index) else {
            return Answer::Err(libc::EINVAL);
        };
        let mut info = RegionInfo {
            argsz: (HEAD as u32).into(),
            index: index.into(),
            ..Default::default()
        };
        let mut fd = None;
        let mut caps: Vec<u8> = Vec::new();
        if let Some(s) = slot {
            let mut flags = s.flags;
            info.size = s.size.into();
            if s.memory_like
                && let Some(memory) = self.server.device.shared_memory(s.devfd_index)
            {
                flags |= REGION_FLAG_MMAP;
                fd = Some(memory.as_raw_fd());
                if !s.sparse.is_empty() {
                    let cap = CapHeader {
                        id: CAP_SPARSE_MMAP.into(),
                        version: 1.into(),
                        next: 0.into(),
                    };
                    caps.extend_from_slice(cap.as_bytes());
                    let sparse = SparseMmap {
                        nr_areas: (s.sparse.len() as u32).into(),
                        reserved: 0.into(),
                    };
                    caps.extend_from_slice(sparse.as_bytes());
                    for &(offset, size) in &s.sparse {
                        let area = SparseArea {
                            offset: offset.into(),
                            size: size.into(),
                        };
                        caps.extend_from_slice(area.as_bytes());
                    }
                }
            }
            let needed = HEAD + caps.len();
            info.argsz = (needed as u32).into();
            if !caps.is_empty() {
                flags |= REGION_FLAG_CAPS;
                // The whole chain only if it fits; else the client asks again with argsz.
                if needed <= argsz as usize {
                    info.cap_offset = (HEAD as u32).into();
                } else {
                    caps.clear();
                }
            }
            info.flags = flags.into();
        }
        self.out.extend_from_slice(info.as_bytes());
        self.out.extend_from_slice(&caps);
        Answer::Ok(fd)
    }

    fn set_irqs(
        &mut self,
        data: u32,
        action: u32,
        index: u32,
        start: u32,
        count: u32,
        bools: &[u8],
    ) -> Answer {
        let device = &*self.server.device;
        let Ok(slot) = self.server.layout.irq(index) else {
            return Answer::Err(libc::EINVAL);
        };
        // DATA_NONE + TRIGGER with count 0: disable every vector of the index.
        if data == IRQ_SET_DATA_NONE && action == IRQ_SET_ACTION_TRIGGER && count == 0 {
            if let Some(s) = slot {
                self.routes.set(
                    index,
                    s.devfd_index,
                    0,
                    std::iter::repeat_with(|| None).take(s.count as usize),
                );
            }
            return Answer::Ok(None);
        }
        let Some(s) = slot.copied() else {
            return Answer::Err(libc::EINVAL);
        };
        if start.saturating_add(count) > s.count || count == 0 {
            return Answer::Err(libc::EINVAL);
        }
        let chosen =
            |i: u32| data != IRQ_SET_DATA_BOOL || bools.get(i as usize).is_some_and(|&b| b != 0);
        match (action, data) {
            (IRQ_SET_ACTION_TRIGGER, IRQ_SET_DATA_EVENTFD) => {
                // Only eventfds, made non-blocking: signalling one runs inside the device's
                // interrupt path and must never block it.
                if self
                    .fds
                    .iter()
                    .any(|fd| sys::adopt_eventfd(fd.as_fd()).is_err())
                {
                    return Answer::Err(libc::EINVAL);
                }
                let mut fds: Vec<Option<OwnedFd>> = self.fds.drain(..).map(Some).collect();
                if fds.is_empty() {
                    fds = std::iter::repeat_with(|| None)
                        .take(count as usize)
                        .collect();
                }
                let enabling = index == PCI_INTX_IRQ && !self.routes.routed(index);
                self.routes
                    .set(index, s.devfd_index, start, fds.into_iter());
                // As VFIO does, INTx is enabled unmasked: an automask left by an earlier
                // client or before a disable would hold it forever (QEMU without KVM
                // unmasks only after an interrupt it saw); a line still asserted fires on
                // the new eventfd at once.
                if enabling && self.routes.routed(index) {
                    device.set_irq_mask(s.devfd_index, 0, false);
                }
                Answer::Ok(None)
            }
            (IRQ_SET_ACTION_TRIGGER, _) => {
                for i in (0..count).filter(|&i| chosen(i)) {
                    device.interrupts().raise(s.devfd_index, start + i);
                }
                Answer::Ok(None)
            }
            (IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK, IRQ_SET_DATA_EVENTFD) => {
                // Mask/unmask notification eventfds (KVM's resample path): not offered.
                Answer::Err(libc::ENOTSUP)
            }
            (IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK, _) => {
                if !s.maskable && index != PCI_INTX_IRQ {
                    return Answer::Err(libc::EINVAL);
                }
                let masked = action == IRQ_SET_ACTION_MASK;
                for i in (0..count).filter(|&i| chosen(i)) {
                    device.set_irq_mask(s.devfd_index, start + i, masked);
                }
                Answer::Ok(None)
            }
            _ => Answer::Err(libc::EINVAL),
        }
    }

    /// Checks an access of `len` bytes at `offset` in VFIO region `region` as a device-file
    /// access is checked (range, flags, widths), and splits it into the widths the region
    /// accepts: `self.pieces` holds (offset from the start, length) and the result is each
    /// piece's device target (region index, offset), in `self.targets`.
    fn plan(&mut self, region: u32, offset: u64, len: usize, write: bool) -> Result<(), i32> {
        let layout = &self.server.layout;
        let slot = layout.region(region).ok().flatten().ok_or(libc::EINVAL)?;
        let end = offset.checked_add(len as u64).ok_or(libc::EINVAL)?;
        if end > slot.size {
            return Err(libc::EINVAL);
        }
        let file_offset = slot.file_offset.checked_add(offset).ok_or(libc::EINVAL)?;
        if slot.memory_like {
            self.pieces.clear();
            self.pieces.push((0, len));
        } else {
            split_access(file_offset, len, slot.widths, &mut self.pieces).ok_or(libc::EINVAL)?;
        }
        self.targets.clear();
        for &(rel, n) in &self.pieces {
            match layout.map.resolve(file_offset + rel, n, write) {
                Ok(Target::Region { index, offset }) => self.targets.push((index, offset)),
                Ok(_) => return Err(libc::EINVAL),
                Err(e) => return Err(e.errno()),
            }
        }
        Ok(())
    }

    /// Reads into `read` or writes `write` at `offset` in VFIO region `region`: the access
    /// is checked as a device-file access (range, flags, widths), split into the widths the
    /// region accepts, and each piece goes to the device. Returns the errno of a refusal.
    fn access(
        &mut self,
        region: u32,
        offset: u64,
        read: &mut [u8],
        write: Option<&[u8]>,
    ) -> Result<(), i32> {
        let len = write.map_or(read.len(), <[u8]>::len);
        self.plan(region, offset, len, write.is_some())?;
        let device = &*self.server.device;
        for (&(rel, n), &(index, offset)) in self.pieces.iter().zip(&self.targets) {
            let r = rel as usize;
            let result = match write {
                Some(data) => device.write(index, offset, data.get(r..r + n).unwrap_or_default()),
                None => match read.get_mut(r..r + n) {
                    Some(buf) => device.read(index, offset, buf),
                    None => return Err(libc::EINVAL),
                },
            };
            result.map_err(|e| devfd_device::AccessError::Device(e).errno())?;
        }
        Ok(())
    }
}
