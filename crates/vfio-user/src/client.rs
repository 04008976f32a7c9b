//! The client source: the device of any vfio-user server as a devfd [`Device`]
//! (`devfd serve --vfio-user-connect SOCKET`). Its description is built, as for a kernel VFIO
//! device, from the server's DEVICE_GET_INFO, every DEVICE_GET_REGION_INFO (capability chain
//! parsed as untrusted bytes) and DEVICE_GET_IRQ_INFO, and its configuration space; accesses
//! become REGION_READ/REGION_WRITE, and a region the server lets clients map whole (its fd at
//! offset 0) is an mmap region of the device file backed by that fd; interrupts arrive on eventfds registered with SET_IRQS;
//! an optional DMA window is a memfd given to the server with DMA_MAP.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use devfd_device::{Device, DeviceError, Interrupts};
use devfd_emu::{DEFAULT_BUS_ADDRESS, DmaMemory};
use devfd_vfio::{EventfdInterrupts, KernelInfo, KernelIrq, Mapped, parse_region_info};
use zerocopy::{FromBytes, IntoBytes};

use crate::channel::{Channel, RecvError};
use crate::error::{ProtocolError, VfioUserError};
use crate::message::{Capabilities, MessageHeader, command_name};
use crate::sys;
use crate::wire::*;

/// The devfd region index of the DMA window (as for kernel VFIO devices).
pub const DMA_REGION: u32 = devfd_vfio::DMA_REGION;

/// The socket and its buffers, used by one call at a time.
struct Conn {
    channel: Channel,
    next_id: u16,
    payload: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// The server's `max_data_xfer_size`.
    max_xfer: usize,
    /// The stream cannot be followed any more (a framing error, a reply out of turn, a
    /// timeout): every later call fails at once.
    broken: bool,
}

/// How long the client waits for a reply, or for a message to finish arriving.
pub const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most server-to-client requests (DMA_READ/DMA_WRITE) one call answers before the
/// server counts as broken.
const MAX_REQUESTS_PER_CALL: usize = 1 << 16;

impl Conn {
    /// Sends a command and waits for its reply, serving any DMA_READ/DMA_WRITE the server
    /// sends meanwhile from `dma`. The reply's payload is left in `self.payload`, its fds in
    /// `self.fds`.
    fn call(
        &mut self,
        command: u16,
        parts: &[&[u8]],
        fds: &[RawFd],
        dma: Option<&DmaMemory>,
    ) -> Result<(), VfioUserError> {
        let name = command_name(command);
        if self.broken {
            return Err(VfioUserError::Closed);
        }
        let result = self.call_once(name, command, parts, fds, dma);
        if let Err(e) = &result
            && !matches!(e, VfioUserError::Remote { .. })
        {
            self.broken = true;
        }
        result
    }

    fn call_once(
        &mut self,
        name: &'static str,
        command: u16,
        parts: &[&[u8]],
        fds: &[RawFd],
        dma: Option<&DmaMemory>,
    ) -> Result<(), VfioUserError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.channel
            .send(id, command, FLAGS_COMMAND, 0, parts, fds)
            .map_err(|e| VfioUserError::io(format!("sending {name}"), e))?;
        for _ in 0..=MAX_REQUESTS_PER_CALL {
            let header =
                match self
                    .channel
                    .recv(&mut self.payload, &mut self.fds, MAX_MESSAGE, false)
                {
                    Ok(h) => h,
                    Err(RecvError::Closed | RecvError::Truncated { .. }) => {
                        return Err(VfioUserError::Closed);
                    }
                    Err(RecvError::Stalled { .. }) => {
                        return Err(VfioUserError::io(
                            format!("waiting for the reply to {name}"),
                            std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                        ));
                    }
                    Err(RecvError::TooManyFds) => {
                        return Err(ProtocolError::BadReply {
                            command: name,
                            reason: "far more fds than any reply carries".into(),
                        }
                        .into());
                    }
                    Err(RecvError::Header(e, _)) => return Err(e.into()),
                    Err(RecvError::FdsTruncated(_)) => {
                        return Err(ProtocolError::BadReply {
                            command: name,
                            reason: "more fds than expected".into(),
                        }
                        .into());
                    }
                    Err(RecvError::Io(e)) => {
                        return Err(VfioUserError::io(
                            format!("waiting for the reply to {name}"),
                            e,
                        ));
                    }
                };
            if !header.is_reply() {
                self.serve_request(&header, dma)?;
                continue;
            }
            if header.id != id || header.command != command {
                return Err(ProtocolError::BadReply {
                    command: name,
                    reason: format!(
                        "a reply with id {} for {} arrived instead",
                        header.id,
                        command_name(header.command)
                    ),
                }
                .into());
            }
            if let Some(errno) = header.error() {
                return Err(VfioUserError::Remote {
                    command: name,
                    errno,
                });
            }
            return Ok(());
        }
        Err(ProtocolError::BadReply {
            command: name,
            reason: format!("{MAX_REQUESTS_PER_CALL} server requests and still no reply"),
        }
        .into())
    }

    /// Answers a server-to-client command (DMA_READ/DMA_WRITE into the DMA window).
    fn serve_request(
        &mut self,
        header: &MessageHeader,
        dma: Option<&DmaMemory>,
    ) -> Result<(), VfioUserError> {
        let io = |e| VfioUserError::io("replying to the server", e);
        let head = DmaAccess::read_from_prefix(&self.payload)
            .ok()
            .map(|(h, _)| h);
        let (Some(head), Some(dma)) = (head, dma) else {
            return self
                .channel
                .reply(header, libc::EINVAL, &[], &[])
                .map_err(io);
        };
        let (address, count) = (head.address.get(), head.count.get());
        let Ok(count) = usize::try_from(count) else {
            return self
                .channel
                .reply(header, libc::EINVAL, &[], &[])
                .map_err(io);
        };
        match header.command {
            CMD_DMA_READ if count <= MAX_DATA_XFER => {
                let mut buf = vec![0u8; count];
                match dma.read(address, &mut buf) {
                    Ok(()) => self.channel.reply(header, 0, &[head.as_bytes(), &buf], &[]),
                    Err(_) => self.channel.reply(header, libc::EFAULT, &[], &[]),
                }
            }
            CMD_DMA_WRITE => {
                let data = self.payload.get(16..).unwrap_or_default();
                if data.len() != count {
                    return self
                        .channel
                        .reply(header, libc::EINVAL, &[], &[])
                        .map_err(io);
                }
                match dma.write(address, data) {
                    Ok(()) => self.channel.reply(header, 0, &[head.as_bytes()], &[]),
                    Err(_) => self.channel.reply(header, libc::EFAULT, &[], &[]),
                }
            }
            _ => self.channel.reply(header, libc::EINVAL, &[], &[]),
        }
        .map_err(io)
    }

    /// A fixed-size reply payload.
    fn reply_as<T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable>(
        &self,
        command: u16,
    ) -> Result<T, VfioUserError> {
        T::read_from_prefix(&self.payload)
            .map(|(t, _)| t)
            .map_err(|_| {
                ProtocolError::BadReply {
                    command: command_name(command),
                    reason: format!(
                        "{} bytes of payload, needs {}",
                        self.payload.len(),
                        size_of::<T>()
                    ),
                }
                .into()
            })
    }
}

/// A vfio-user server's device, as a devfd device.
pub struct Client {
    conn: Mutex<Conn>,
    info: KernelInfo,
    description: Vec<u8>,
    regions: Vec<Mapped>,
    irqs: EventfdInterrupts,
    dma: Option<DmaMemory>,
    /// The fds of regions the server lets clients map whole.
    memory: Vec<(u32, OwnedFd)>,
    label: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.label)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the vfio-user server at `socket`, negotiates, describes its device and
    /// registers eventfds for its interrupts; with `dma`, maps a DMA window of that many
    /// bytes for it (DMA_MAP with the memfd, at [`DEFAULT_BUS_ADDRESS`]).
    pub fn connect(socket: &Path, dma: Option<u64>) -> Result<Self, VfioUserError> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| VfioUserError::io(format!("connecting to {}", socket.display()), e))?;
        Self::over(stream, &socket.display().to_string(), dma)
    }

    /// As [`Self::connect`], over a connected socket; `label` names the server in messages.
    pub fn over(stream: UnixStream, label: &str, dma: Option<u64>) -> Result<Self, VfioUserError> {
        let channel = Channel::new(stream);
        channel
            .set_stall_timeout(REPLY_TIMEOUT)
            .map_err(|e| VfioUserError::io("setting the socket's timeouts", e))?;
        let mut conn = Conn {
            channel,
            next_id: 0,
            payload: Vec::with_capacity(4096),
            fds: Vec::new(),
            max_xfer: 1 << 20,
            broken: false,
        };
        // VERSION.
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
            minor: VERSION_MINOR.into(),
        };
        conn.call(CMD_VERSION, &[v.as_bytes(), &ours.to_json()], &[], None)?;
        let reply: Version = conn.reply_as(CMD_VERSION)?;
        if reply.major.get() != VERSION_MAJOR || reply.minor.get() > VERSION_MINOR {
            return Err(VfioUserError::Version {
                major: reply.major.get(),
                minor: reply.minor.get(),
            });
        }
        let theirs = Capabilities::parse(conn.payload.get(4..).unwrap_or_default())?;
        conn.max_xfer = usize::try_from(theirs.max_data_xfer_size)
            .unwrap_or(MAX_DATA_XFER)
            .clamp(8, MAX_DATA_XFER);
        // The most fds the server takes in one message (the protocol's default is 1).
        let max_fds = usize::try_from(theirs.max_msg_fds)
            .unwrap_or(MAX_MSG_FDS)
            .clamp(1, MAX_MSG_FDS);
        // DEVICE_GET_INFO.
        let req = DeviceInfo {
            argsz: (size_of::<DeviceInfo>() as u32).into(),
            ..Default::default()
        };
        conn.call(CMD_DEVICE_GET_INFO, &[req.as_bytes()], &[], None)?;
        let di: DeviceInfo = conn.reply_as(CMD_DEVICE_GET_INFO)?;
        if di.flags.get() & DEVICE_FLAGS_PCI == 0 {
            return Err(VfioUserError::Unservable(format!(
                "{label}: the server's device is not PCI (flags {:#x})",
                di.flags.get()
            )));
        }
        let mut info = KernelInfo {
            bdf: label.to_owned(),
            flags: di.flags.get(),
            num_regions: di.num_regions.get(),
            num_irqs: di.num_irqs.get(),
            regions: Vec::new(),
            absent_regions: Vec::new(),
            irqs: Vec::new(),
        };
        // Regions the server lets us map whole (its fd at offset 0, no sparse areas) are
        // mapped by the device file's clients (REGION_MMAP, D.rN); the rest are trapped.
        let mut memory: Vec<(u32, OwnedFd)> = Vec::new();
        for index in 0..info.num_regions.min(PCI_NUM_REGIONS) {
            match region_info(&mut conn, index) {
                Ok((r, fd)) => {
                    if let Some(fd) = fd
                        && r.offset == 0
                        && r.size > 0
                        && r.sparse_areas().is_none()
                        && whole_and_sealed(fd.as_fd(), r.size)
                    {
                        memory.push((index, fd));
                    }
                    info.regions.push(r);
                }
                Err(VfioUserError::Remote { .. }) => info.absent_regions.push(index),
                Err(e) => return Err(e),
            }
        }
        for index in 0..info.num_irqs.min(PCI_NUM_IRQS) {
            let req = IrqInfo {
                argsz: (size_of::<IrqInfo>() as u32).into(),
                index: index.into(),
                ..Default::default()
            };
            match conn.call(CMD_DEVICE_GET_IRQ_INFO, &[req.as_bytes()], &[], None) {
                Ok(()) => {
                    let i: IrqInfo = conn.reply_as(CMD_DEVICE_GET_IRQ_INFO)?;
                    info.irqs.push(KernelIrq {
                        index,
                        flags: i.flags.get(),
                        count: i.count.get(),
                    });
                }
                Err(VfioUserError::Remote { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // The configuration space, for the PCI identity and BAR types.
        let config_size = info
            .regions
            .iter()
            .find(|r| r.index == PCI_CONFIG_REGION)
            .map(|r| r.size.min(256))
            .ok_or_else(|| {
                VfioUserError::Unservable(format!(
                    "{label}: the server's device has no config region"
                ))
            })?;
        let mut config = vec![0u8; config_size as usize];
        region_read(&mut conn, PCI_CONFIG_REGION, 0, &mut config, None)?;
        let dma = match dma {
            Some(size) => Some(
                DmaMemory::new(size, DEFAULT_BUS_ADDRESS)
                    .map_err(|e| VfioUserError::Unservable(format!("the DMA window: {e}")))?,
            ),
            None => None,
        };
        let (description, regions) = devfd_vfio::describe(
            &info,
            &config,
            dma.as_ref().map(|w| w.region_desc(DMA_REGION, 0)),
            &memory.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        )
        .map_err(|e| VfioUserError::Unservable(format!("{label}: {e}")))?;
        if let Some(w) = &dma {
            let map = DmaMap {
                argsz: (size_of::<DmaMap>() as u32).into(),
                flags: (DMA_FLAG_READ | DMA_FLAG_WRITE).into(),
                offset: 0.into(),
                address: w.bus_address().into(),
                size: w.size().into(),
            };
            let fd = w.memory_fd().as_raw_fd();
            conn.call(CMD_DMA_MAP, &[map.as_bytes()], &[fd], None)?;
        }
        let parsed = devfd_format::parse(&description)?;
        let irqs = EventfdInterrupts::new(&parsed, "vfio-user-irq".into())
            .map_err(|e| VfioUserError::io("setting up the interrupts' eventfds", e))?;
        // Every irq index gets its eventfds now; the server signals whichever the device
        // uses (a device in MSI mode does not raise INTx).
        for index in [
            PCI_INTX_IRQ,
            PCI_MSI_IRQ,
            PCI_MSIX_IRQ,
            PCI_ERR_IRQ,
            PCI_REQ_IRQ,
        ] {
            let fds = irqs.fds_of(index);
            for (chunk_start, chunk) in fds.chunks(max_fds).enumerate() {
                let set = IrqSet {
                    argsz: (size_of::<IrqSet>() as u32).into(),
                    flags: (IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).into(),
                    index: index.into(),
                    start: ((chunk_start * max_fds) as u32).into(),
                    count: (chunk.len() as u32).into(),
                };
                if let Err(e) = conn.call(CMD_DEVICE_SET_IRQS, &[set.as_bytes()], chunk, None) {
                    log::warn!("{label}: registering eventfds of irq {index}: {e}");
                }
            }
        }
        Ok(Client {
            conn: Mutex::new(conn),
            info,
            description,
            regions,
            irqs,
            dma,
            memory,
            label: label.to_owned(),
        })
    }

    /// What the server reported, in the form the kernel VFIO source uses.
    pub fn server_info(&self) -> &KernelInfo {
        &self.info
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checked(&self, region: u32, offset: u64, len: usize) -> Result<(), DeviceError> {
        let r = self
            .regions
            .iter()
            .find(|r| r.index == region)
            .ok_or(DeviceError::Unsupported)?;
        let end = offset
            .checked_add(len as u64)
            .ok_or(DeviceError::Unsupported)?;
        if end > r.size {
            return Err(DeviceError::Unsupported);
        }
        Ok(())
    }

    fn set_irqs(&self, index: u32, action: u32) {
        let set = IrqSet {
            argsz: (size_of::<IrqSet>() as u32).into(),
            flags: (IRQ_SET_DATA_NONE | action).into(),
            index: index.into(),
            start: 0.into(),
            count: 1.into(),
        };
        let dma = self.dma.as_ref();
        if let Err(e) = self
            .lock()
            .call(CMD_DEVICE_SET_IRQS, &[set.as_bytes()], &[], dma)
        {
            log::warn!("{}: SET_IRQS {index} {action:#x}: {e}", self.label);
        }
    }
}

/// The largest region size accepted from a server (256 TiB): far above any device's, and
/// small enough that a description's offsets cannot overflow.
const MAX_REGION_SIZE: u64 = 1 << 48;

/// Whether a server's region fd can back the device file's mapping: a memfd of at least
/// `size` bytes, sealed against shrinking (a mapping of a file that shrinks faults with
/// SIGBUS in every process that maps it).
fn whole_and_sealed(fd: BorrowedFd<'_>, size: u64) -> bool {
    let Ok(file) = fd.try_clone_to_owned().map(std::fs::File::from) else {
        return false;
    };
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.len() >= size)
        && sys::sealed_against_shrinking(fd)
}

/// One region's info, growing argsz once when the capabilities do not fit, and the fd that
/// came with it if the server lets the client map the region.
fn region_info(
    conn: &mut Conn,
    index: u32,
) -> Result<(devfd_vfio::RegionInfo, Option<OwnedFd>), VfioUserError> {
    let mut argsz = size_of::<RegionInfo>() as u32;
    for _ in 0..2 {
        let req = RegionInfo {
            argsz: argsz.into(),
            index: index.into(),
            ..Default::default()
        };
        conn.call(CMD_DEVICE_GET_REGION_INFO, &[req.as_bytes()], &[], None)?;
        let fd = conn.fds.pop();
        conn.fds.clear();
        let head: RegionInfo = conn.reply_as(CMD_DEVICE_GET_REGION_INFO)?;
        let wanted = head.argsz.get();
        if wanted as usize > conn.payload.len() && wanted > argsz && wanted <= 1 << 16 {
            argsz = wanted;
            continue;
        }
        let info = parse_region_info(&conn.payload).map_err(|e| ProtocolError::BadReply {
            command: "DEVICE_GET_REGION_INFO",
            reason: format!("region {index}: {e}"),
        })?;
        // Sizes the description can place (a server may claim anything).
        if info.size > MAX_REGION_SIZE {
            return Err(ProtocolError::BadReply {
                command: "DEVICE_GET_REGION_INFO",
                reason: format!(
                    "region {index}: size {:#x} above {MAX_REGION_SIZE:#x}",
                    info.size
                ),
            }
            .into());
        }
        let fd = fd.filter(|_| info.flags & REGION_FLAG_MMAP != 0);
        return Ok((info, fd));
    }
    Err(ProtocolError::BadReply {
        command: "DEVICE_GET_REGION_INFO",
        reason: format!("region {index}: argsz keeps growing"),
    }
    .into())
}

/// REGION_READ of `buf.len()` bytes, in pieces of at most the server's transfer size.
fn region_read(
    conn: &mut Conn,
    region: u32,
    offset: u64,
    buf: &mut [u8],
    dma: Option<&DmaMemory>,
) -> Result<(), VfioUserError> {
    let max = conn.max_xfer;
    let mut done = 0usize;
    for chunk in buf.chunks_mut(max) {
        let req = RegionAccess {
            offset: (offset + done as u64).into(),
            region: region.into(),
            count: (chunk.len() as u32).into(),
        };
        conn.call(CMD_REGION_READ, &[req.as_bytes()], &[], dma)?;
        match conn.payload.get(16..) {
            Some(data) if data.len() == chunk.len() => chunk.copy_from_slice(data),
            _ => {
                return Err(ProtocolError::BadReply {
                    command: "REGION_READ",
                    reason: format!(
                        "{} bytes of data for a read of {}",
                        conn.payload.len().saturating_sub(16),
                        chunk.len()
                    ),
                }
                .into());
            }
        }
        done += chunk.len();
    }
    Ok(())
}

impl Device for Client {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        if let Some(w) = self.dma.as_ref().filter(|_| region == DMA_REGION) {
            return w
                .memory()
                .read_at(offset, data)
                .map_err(|_| DeviceError::Failed);
        }
        self.checked(region, offset, data.len())?;
        let dma = self.dma.as_ref();
        region_read(&mut self.lock(), region, offset, data, dma).map_err(|e| {
            log::debug!("{}: read region {region} +{offset:#x}: {e}", self.label);
            DeviceError::Failed
        })
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        if let Some(w) = self.dma.as_ref().filter(|_| region == DMA_REGION) {
            return w
                .memory()
                .write_at(offset, data)
                .map_err(|_| DeviceError::Failed);
        }
        self.checked(region, offset, data.len())?;
        let dma = self.dma.as_ref();
        let mut conn = self.lock();
        let max = conn.max_xfer;
        let mut done = 0usize;
        for chunk in data.chunks(max) {
            let req = RegionAccess {
                offset: (offset + done as u64).into(),
                region: region.into(),
                count: (chunk.len() as u32).into(),
            };
            conn.call(CMD_REGION_WRITE, &[req.as_bytes(), chunk], &[], dma)
                .map_err(|e| {
                    log::debug!("{}: write region {region} +{offset:#x}: {e}", self.label);
                    DeviceError::Failed
                })?;
            done += chunk.len();
        }
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        self.irqs.interrupts()
    }

    fn set_irq_mask(&self, index: u32, vector: u32, masked: bool) -> Option<()> {
        // The server's INTx is automasked: unmasking acknowledges it there, or it would never
        // fire again. Other vectors are masked here.
        if index == PCI_INTX_IRQ {
            let action = if masked {
                IRQ_SET_ACTION_MASK
            } else {
                IRQ_SET_ACTION_UNMASK
            };
            self.set_irqs(PCI_INTX_IRQ, action);
        }
        self.irqs.interrupts().set_masked(index, vector, masked)
    }

    fn reset(&self) {
        if self.info.flags & DEVICE_FLAGS_RESET != 0 {
            let dma = self.dma.as_ref();
            if let Err(e) = self.lock().call(CMD_DEVICE_RESET, &[], &[], dma) {
                log::warn!("{}: DEVICE_RESET: {e}", self.label);
            }
        }
        self.irqs.interrupts().reset();
    }

    fn shared_memory(&self, region: u32) -> Option<BorrowedFd<'_>> {
        if let Some((_, fd)) = self.memory.iter().find(|(i, _)| *i == region) {
            return Some(fd.as_fd());
        }
        self.dma
            .as_ref()
            .filter(|_| region == DMA_REGION)
            .map(DmaMemory::memory_fd)
    }

    fn kind(&self) -> &str {
        "vfio-user"
    }
}
