//! Decoding untrusted messages: the header, and every command a client sends, into typed
//! values that borrow the payload. Nothing here trusts a length, count or offset: each is
//! checked against the bytes that arrived, and every error names the command, the field and
//! its byte offset in the message. This is what the `vfio_user_message` fuzz target drives.

use zerocopy::{FromBytes, Immutable, KnownLayout};

use crate::error::ProtocolError;
use crate::wire::*;

/// A checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Message id.
    pub id: u16,
    /// Command number.
    pub command: u16,
    /// Whole message size (16 or more).
    pub size: u32,
    /// Flags.
    pub flags: u32,
    /// Error field.
    pub error: u32,
}

impl MessageHeader {
    /// Checks a header's size and flags; `max` is the largest message accepted.
    pub fn parse(bytes: &[u8; HEADER_LEN], max: usize) -> Result<Self, ProtocolError> {
        let header = Self::unchecked(bytes);
        if (header.size as usize) < HEADER_LEN || header.size as usize > max {
            return Err(ProtocolError::BadSize {
                size: header.size,
                max,
            });
        }
        if header.flags & !FLAGS_KNOWN != 0 || header.flags & FLAGS_TYPE_MASK > FLAGS_REPLY {
            return Err(ProtocolError::BadFlags {
                flags: header.flags,
            });
        }
        Ok(header)
    }

    /// The fields of a header, unchecked (for error messages about a bad one).
    pub fn unchecked(bytes: &[u8; HEADER_LEN]) -> Self {
        let h = Header::read_from_bytes(bytes).unwrap_or_default();
        MessageHeader {
            id: h.id.get(),
            command: h.command.get(),
            size: h.size.get(),
            flags: h.flags.get(),
            error: h.error.get(),
        }
    }

    /// Payload length (size minus the header).
    pub fn payload_len(&self) -> usize {
        (self.size as usize).saturating_sub(HEADER_LEN)
    }

    /// Whether it is a reply.
    pub fn is_reply(&self) -> bool {
        self.flags & FLAGS_TYPE_MASK == FLAGS_REPLY
    }

    /// Whether the sender asked for no reply.
    pub fn no_reply(&self) -> bool {
        self.flags & FLAGS_NO_REPLY != 0
    }

    /// The errno of an error reply (`Some(0)` if the errno field is 0).
    pub fn error(&self) -> Option<i32> {
        (self.flags & FLAGS_ERROR != 0).then_some(self.error as i32)
    }
}

/// The name of a command, for messages and logs.
pub fn command_name(command: u16) -> &'static str {
    match command {
        CMD_VERSION => "VERSION",
        CMD_DMA_MAP => "DMA_MAP",
        CMD_DMA_UNMAP => "DMA_UNMAP",
        CMD_DEVICE_GET_INFO => "DEVICE_GET_INFO",
        CMD_DEVICE_GET_REGION_INFO => "DEVICE_GET_REGION_INFO",
        CMD_DEVICE_GET_REGION_IO_FDS => "DEVICE_GET_REGION_IO_FDS",
        CMD_DEVICE_GET_IRQ_INFO => "DEVICE_GET_IRQ_INFO",
        CMD_DEVICE_SET_IRQS => "DEVICE_SET_IRQS",
        CMD_REGION_READ => "REGION_READ",
        CMD_REGION_WRITE => "REGION_WRITE",
        CMD_DMA_READ => "DMA_READ",
        CMD_DMA_WRITE => "DMA_WRITE",
        CMD_DEVICE_RESET => "DEVICE_RESET",
        CMD_DIRTY_PAGES => "DIRTY_PAGES",
        CMD_REGION_WRITE_MULTI => "REGION_WRITE_MULTI",
        CMD_DEVICE_FEATURE => "DEVICE_FEATURE",
        CMD_MIG_DATA_READ => "MIG_DATA_READ",
        CMD_MIG_DATA_WRITE => "MIG_DATA_WRITE",
        _ => "unknown command",
    }
}

/// What a peer says it can do in VERSION (absent keys: the protocol's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `max_msg_fds` (default 1).
    pub max_msg_fds: u64,
    /// `max_data_xfer_size` (default 1 MiB).
    pub max_data_xfer_size: u64,
    /// `max_dma_maps` (default 65535).
    pub max_dma_maps: u64,
    /// `pgsizes` (default 4096).
    pub pgsizes: u64,
    /// `write_multiple` (default false).
    pub write_multiple: bool,
    /// `twin_socket.supported` (default false).
    pub twin_socket: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            max_msg_fds: 1,
            max_data_xfer_size: 1 << 20,
            max_dma_maps: 65535,
            pgsizes: 4096,
            write_multiple: false,
            twin_socket: false,
        }
    }
}

impl Capabilities {
    /// Parses VERSION's data: optional UTF-8 JSON, NUL-terminated (a missing NUL is
    /// tolerated). Unknown keys are ignored; a known key of the wrong type is an error.
    pub fn parse(data: &[u8]) -> Result<Self, ProtocolError> {
        let bad = |s: String| ProtocolError::Capabilities(s);
        let text = match data.iter().position(|&b| b == 0) {
            Some(nul)
                if data
                    .get(nul.saturating_add(1)..)
                    .is_some_and(|rest| rest.iter().any(|&b| b != 0)) =>
            {
                return Err(bad(format!(
                    "bytes after the terminating NUL at byte {}",
                    nul.saturating_add(20)
                )));
            }
            Some(nul) => data.get(..nul).unwrap_or_default(),
            None => data,
        };
        let mut caps = Capabilities::default();
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(caps);
        }
        let text = std::str::from_utf8(text).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let top = value
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        let Some(c) = top.get("capabilities") else {
            return Ok(caps);
        };
        let c = c
            .as_object()
            .ok_or_else(|| bad("\"capabilities\" is not an object".into()))?;
        let number = |key: &str, into: &mut u64| -> Result<(), ProtocolError> {
            if let Some(v) = c.get(key) {
                *into = v
                    .as_u64()
                    .ok_or_else(|| bad(format!("\"{key}\" is not a non-negative integer")))?;
            }
            Ok(())
        };
        number("max_msg_fds", &mut caps.max_msg_fds)?;
        number("max_data_xfer_size", &mut caps.max_data_xfer_size)?;
        number("max_dma_maps", &mut caps.max_dma_maps)?;
        number("pgsizes", &mut caps.pgsizes)?;
        if let Some(v) = c.get("write_multiple") {
            caps.write_multiple = v
                .as_bool()
                .ok_or_else(|| bad("\"write_multiple\" is not a boolean".into()))?;
        }
        if let Some(t) = c.get("twin_socket") {
            let t = t
                .as_object()
                .ok_or_else(|| bad("\"twin_socket\" is not an object".into()))?;
            if let Some(s) = t.get("supported") {
                caps.twin_socket = s
                    .as_bool()
                    .ok_or_else(|| bad("\"twin_socket.supported\" is not a boolean".into()))?;
            }
        }
        if caps.max_data_xfer_size == 0 {
            return Err(bad("\"max_data_xfer_size\" is 0".into()));
        }
        Ok(caps)
    }

    /// The JSON devfd sends (NUL-terminated): its own limits. `write_multiple` and
    /// `twin_socket` are left out (devfd accepts REGION_WRITE_MULTI without asking for it, and
    /// QEMU's client treats an advertised `write_multiple` as "queue every message"). Short,
    /// as QEMU takes a reply no longer than its own request.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = format!(
            "{{\"capabilities\":{{\"max_msg_fds\":{},\"max_data_xfer_size\":{},\"pgsizes\":{},\"max_dma_maps\":{}}}}}",
            self.max_msg_fds, self.max_data_xfer_size, self.pgsizes, self.max_dma_maps
        )
        .into_bytes();
        out.push(0);
        out
    }
}

/// A command from a client, decoded and checked for shape (not yet against the device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// VERSION.
    Version {
        /// Major version proposed.
        major: u16,
        /// Minor version proposed.
        minor: u16,
        /// Capabilities proposed.
        capabilities: Capabilities,
    },
    /// DMA_MAP (`with_fd`: a file descriptor came with it).
    DmaMap {
        /// Flags (`DMA_FLAG_*`).
        flags: u32,
        /// Offset in the fd.
        offset: u64,
        /// DMA address.
        address: u64,
        /// Size.
        size: u64,
        /// Whether an fd came with it.
        with_fd: bool,
    },
    /// DMA_UNMAP.
    DmaUnmap {
        /// The request, echoed in the reply.
        request: DmaUnmap,
        /// Every mapping.
        all: bool,
    },
    /// DEVICE_GET_INFO.
    GetInfo {
        /// Largest reply payload the client takes.
        argsz: u32,
    },
    /// DEVICE_GET_REGION_INFO.
    GetRegionInfo {
        /// Largest reply payload the client takes.
        argsz: u32,
        /// Region index.
        index: u32,
    },
    /// DEVICE_GET_REGION_IO_FDS.
    GetRegionIoFds {
        /// Largest reply payload the client takes.
        argsz: u32,
        /// Region index.
        index: u32,
    },
    /// DEVICE_GET_IRQ_INFO.
    GetIrqInfo {
        /// Largest reply payload the client takes.
        argsz: u32,
        /// Irq index.
        index: u32,
    },
    /// DEVICE_SET_IRQS.
    SetIrqs {
        /// One `IRQ_SET_DATA_*` bit.
        data: u32,
        /// One `IRQ_SET_ACTION_*` bit.
        action: u32,
        /// Irq index.
        index: u32,
        /// First vector.
        start: u32,
        /// Number of vectors.
        count: u32,
        /// With `IRQ_SET_DATA_BOOL`: one byte per vector.
        bools: &'a [u8],
    },
    /// REGION_READ.
    RegionRead {
        /// Offset in the region.
        offset: u64,
        /// Region index.
        region: u32,
        /// Bytes.
        count: u32,
    },
    /// REGION_WRITE.
    RegionWrite {
        /// Offset in the region.
        offset: u64,
        /// Region index.
        region: u32,
        /// The data (exactly `count` bytes).
        data: &'a [u8],
    },
    /// REGION_WRITE_MULTI.
    RegionWriteMulti {
        /// The writes.
        writes: &'a [WriteMultiEntry],
    },
    /// DEVICE_RESET.
    Reset,
    /// A command devfd answers "not supported" (dirty pages, features, migration data).
    NotSupported(u16),
}

fn head<'a, T: FromBytes + KnownLayout + Immutable>(
    command: &'static str,
    payload: &'a [u8],
) -> Result<(T, &'a [u8]), ProtocolError> {
    T::read_from_prefix(payload).map_err(|_| ProtocolError::Short {
        command,
        need: size_of::<T>(),
        got: payload.len(),
    })
}

fn no_fds(command: &'static str, fds: usize) -> Result<(), ProtocolError> {
    if fds != 0 {
        return Err(ProtocolError::Fds {
            command,
            got: fds,
            want: "none expected",
        });
    }
    Ok(())
}

/// The byte offset in the message of payload byte `at`.
const fn at(payload_offset: usize) -> usize {
    HEADER_LEN.saturating_add(payload_offset)
}

/// Decodes a client's command: `header` (already checked), its `payload` (exactly
/// `header.payload_len()` bytes) and the number of fds that came with it.
pub fn decode_command<'a>(
    header: &MessageHeader,
    payload: &'a [u8],
    fds: usize,
) -> Result<Command<'a>, ProtocolError> {
    if header.is_reply() {
        return Err(ProtocolError::WrongType {
            what: "a reply",
            expected: "command",
            id: header.id,
        });
    }
    let name = command_name(header.command);
    let field = |field, offset, value: u64, reason| ProtocolError::BadField {
        command: name,
        field,
        offset: at(offset),
        value,
        reason,
    };
    match header.command {
        CMD_VERSION => {
            no_fds(name, fds)?;
            let (v, rest) = head::<Version>(name, payload)?;
            Ok(Command::Version {
                major: v.major.get(),
                minor: v.minor.get(),
                capabilities: Capabilities::parse(rest)?,
            })
        }
        CMD_DMA_MAP => {
            let (m, _) = head::<DmaMap>(name, payload)?;
            if fds > 1 {
                return Err(ProtocolError::Fds {
                    command: name,
                    got: fds,
                    want: "at most one expected",
                });
            }
            let flags = m.flags.get();
            if flags & !(DMA_FLAG_READ | DMA_FLAG_WRITE) != 0 {
                return Err(field("flags", 4, flags.into(), "undefined bits"));
            }
            let (address, size) = (m.address.get(), m.size.get());
            if size == 0 {
                return Err(field("size", 24, 0, "an empty mapping"));
            }
            if address.checked_add(size).is_none() {
                return Err(field("size", 24, size, "the mapping runs past 2^64"));
            }
            for (f, off, v) in [("address", 16, address), ("size", 24, size)] {
                if v % DMA_PAGE_SIZE != 0 {
                    return Err(field(f, off, v, "not a multiple of the 4096-byte page"));
                }
            }
            let offset = m.offset.get();
            if fds == 1 && offset % DMA_PAGE_SIZE != 0 {
                return Err(field("offset", 8, offset, "not a multiple of the page"));
            }
            Ok(Command::DmaMap {
                flags,
                offset,
                address,
                size,
                with_fd: fds == 1,
            })
        }
        CMD_DMA_UNMAP => {
            no_fds(name, fds)?;
            let (u, _) = head::<DmaUnmap>(name, payload)?;
            let flags = u.flags.get();
            if flags & DMA_UNMAP_FLAG_GET_DIRTY_BITMAP != 0 {
                return Err(field(
                    "flags",
                    4,
                    flags.into(),
                    "dirty-page tracking is not supported",
                ));
            }
            if flags & !DMA_UNMAP_FLAG_ALL != 0 {
                return Err(field("flags", 4, flags.into(), "undefined bits"));
            }
            let all = flags & DMA_UNMAP_FLAG_ALL != 0;
            if all && (u.address.get() != 0 || u.size.get() != 0) {
                return Err(field(
                    "address",
                    8,
                    u.address.get(),
                    "must be 0 with UNMAP_ALL",
                ));
            }
            Ok(Command::DmaUnmap { request: u, all })
        }
        CMD_DEVICE_GET_INFO => {
            no_fds(name, fds)?;
            let (i, _) = head::<DeviceInfo>(name, payload)?;
            Ok(Command::GetInfo {
                argsz: i.argsz.get(),
            })
        }
        CMD_DEVICE_GET_REGION_INFO => {
            no_fds(name, fds)?;
            let (r, _) = head::<RegionInfo>(name, payload)?;
            Ok(Command::GetRegionInfo {
                argsz: r.argsz.get(),
                index: r.index.get(),
            })
        }
        CMD_DEVICE_GET_REGION_IO_FDS => {
            no_fds(name, fds)?;
            let (r, _) = head::<RegionIoFds>(name, payload)?;
            Ok(Command::GetRegionIoFds {
                argsz: r.argsz.get(),
                index: r.index.get(),
            })
        }
        CMD_DEVICE_GET_IRQ_INFO => {
            no_fds(name, fds)?;
            let (i, _) = head::<IrqInfo>(name, payload)?;
            Ok(Command::GetIrqInfo {
                argsz: i.argsz.get(),
                index: i.index.get(),
            })
        }
        CMD_DEVICE_SET_IRQS => decode_set_irqs(name, payload, fds),
        CMD_REGION_READ => {
            no_fds(name, fds)?;
            let (a, _) = head::<RegionAccess>(name, payload)?;
            let count = a.count.get();
            if count == 0 || count as usize > MAX_DATA_XFER {
                return Err(field(
                    "count",
                    12,
                    count.into(),
                    "must be 1 to max_data_xfer_size",
                ));
            }
            Ok(Command::RegionRead {
                offset: a.offset.get(),
                region: a.region.get(),
                count,
            })
        }
        CMD_REGION_WRITE => {
            no_fds(name, fds)?;
            let (a, data) = head::<RegionAccess>(name, payload)?;
            let count = a.count.get();
            if count == 0 || count as usize > MAX_DATA_XFER {
                return Err(field(
                    "count",
                    12,
                    count.into(),
                    "must be 1 to max_data_xfer_size",
                ));
            }
            if data.len() != count as usize {
                return Err(field(
                    "count",
                    12,
                    count.into(),
                    "differs from the data that came",
                ));
            }
            Ok(Command::RegionWrite {
                offset: a.offset.get(),
                region: a.region.get(),
                data,
            })
        }
        CMD_REGION_WRITE_MULTI => {
            no_fds(name, fds)?;
            let (n, rest) = head::<zerocopy::native_endian::U64>(name, payload)?;
            let n = n.get();
            let entries = <[WriteMultiEntry]>::ref_from_bytes(rest)
                .map_err(|_| field("wr_cnt", 0, n, "the writes that follow are not whole"))?;
            if entries.len() as u64 != n || n == 0 {
                return Err(field("wr_cnt", 0, n, "differs from the writes that came"));
            }
            for (i, e) in entries.iter().enumerate() {
                let count = e.count.get();
                if !(1..=8).contains(&count) {
                    return Err(field(
                        "count",
                        i.saturating_mul(24).saturating_add(20),
                        count.into(),
                        "must be 1 to 8",
                    ));
                }
            }
            Ok(Command::RegionWriteMulti { writes: entries })
        }
        CMD_DEVICE_RESET => {
            no_fds(name, fds)?;
            Ok(Command::Reset)
        }
        CMD_DIRTY_PAGES | CMD_DEVICE_FEATURE | CMD_MIG_DATA_READ | CMD_MIG_DATA_WRITE => {
            Ok(Command::NotSupported(header.command))
        }
        CMD_DMA_READ | CMD_DMA_WRITE => Err(ProtocolError::WrongType {
            what: "a server-to-client command",
            expected: "client command",
            id: header.id,
        }),
        other => Err(ProtocolError::UnknownCommand(other)),
    }
}

fn decode_set_irqs<'a>(
    name: &'static str,
    payload: &'a [u8],
    fds: usize,
) -> Result<Command<'a>, ProtocolError> {
    let field = |field, offset, value: u64, reason| ProtocolError::BadField {
        command: name,
        field,
        offset: at(offset),
        value,
        reason,
    };
    let (s, rest) = head::<IrqSet>(name, payload)?;
    let flags = s.flags.get();
    let (data, action) = (flags & IRQ_SET_DATA_MASK, flags & IRQ_SET_ACTION_MASK_BITS);
    if flags & !(IRQ_SET_DATA_MASK | IRQ_SET_ACTION_MASK_BITS) != 0 {
        return Err(field("flags", 4, flags.into(), "undefined bits"));
    }
    if data.count_ones() != 1 || action.count_ones() != 1 {
        return Err(field(
            "flags",
            4,
            flags.into(),
            "needs exactly one DATA and one ACTION flag",
        ));
    }
    let (start, count) = (s.start.get(), s.count.get());
    if start.checked_add(count).is_none() {
        return Err(field("count", 16, count.into(), "start + count overflows"));
    }
    let bools = match data {
        IRQ_SET_DATA_BOOL => {
            no_fds(name, fds)?;
            if rest.len() != count as usize {
                return Err(field(
                    "count",
                    16,
                    count.into(),
                    "differs from the bool bytes that came",
                ));
            }
            rest
        }
        IRQ_SET_DATA_EVENTFD => {
            // No fds de-assigns; otherwise one per vector.
            if fds != 0 && fds != count as usize {
                return Err(ProtocolError::Fds {
                    command: name,
                    got: fds,
                    want: "one per vector (count), or none to de-assign",
                });
            }
            &[]
        }
        _ => {
            no_fds(name, fds)?;
            &[]
        }
    };
    Ok(Command::SetIrqs {
        data,
        action,
        index: s.index.get(),
        start,
        count,
        bools,
    })
}

#[cfg(test)]
mod tests;
