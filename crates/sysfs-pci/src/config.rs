//! PCI configuration space as untrusted bytes (PCI Local Bus 3.0 §6, PCIe 6.0 §7): the
//! header, the capability list at 0x40–0xff and the extended capability list at
//! 0x100–0xfff.
//!
//! Nothing here trusts the bytes. Every read is bounds-checked and reports where the data
//! ended; every capability pointer is checked before it is followed: 0 ends the list, a
//! pointer into the header, one that is not a multiple of 4, one that comes back to a
//! capability already visited (a loop), or a capability that runs past the end of its space
//! is an error located at the pointer's byte and naming the capability it is in. The walks
//! are bounded by the number of dword slots (48 standard, 960 extended), so no input makes
//! them hang.

use crate::error::{CapId, ConfigError, ConfigErrorKind};

/// Bytes of the standard header every function has (type 0, 1 or 2).
pub const HEADER_LEN: usize = 0x40;
/// Size of a conventional configuration space, and where the extended space starts.
pub const CONFIG_SPACE_LEN: usize = 0x100;
/// Size of a PCI Express (extended) configuration space.
pub const EXTENDED_CONFIG_SPACE_LEN: usize = 0x1000;

const VENDOR_ID: usize = 0x00;
const DEVICE_ID: usize = 0x02;
const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const REVISION_ID: usize = 0x08;
const CLASS_CODE: usize = 0x09;
const HEADER_TYPE: usize = 0x0e;
const BAR0: usize = 0x10;
const CARDBUS_CAPABILITY_LIST: usize = 0x14;
const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
const SUBSYSTEM_ID: usize = 0x2e;
const ROM_ADDRESS: usize = 0x30;
const CAPABILITY_LIST: usize = 0x34;
const BRIDGE_ROM_ADDRESS: usize = 0x38;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;
const CARDBUS_SUBSYSTEM_VENDOR_ID: usize = 0x40;

/// Status register bit: the capability pointer is valid.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// Header type 0: an ordinary function.
pub const HEADER_TYPE_NORMAL: u8 = 0;
/// Header type 1: a PCI-to-PCI bridge.
pub const HEADER_TYPE_BRIDGE: u8 = 1;
/// Header type 2: a CardBus bridge.
pub const HEADER_TYPE_CARDBUS: u8 = 2;

/// Capability ID: power management.
pub const CAP_PM: u8 = 0x01;
/// Capability ID: MSI.
pub const CAP_MSI: u8 = 0x05;
/// Capability ID: bridge subsystem vendor/device ID.
pub const CAP_SSVID: u8 = 0x0d;
/// Capability ID: PCI Express.
pub const CAP_EXP: u8 = 0x10;
/// Capability ID: MSI-X.
pub const CAP_MSIX: u8 = 0x11;

/// The header fields devfd uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Command register.
    pub command: u16,
    /// Status register.
    pub status: u16,
    /// Revision ID.
    pub revision: u8,
    /// Class code: base << 16 | sub-class << 8 | programming interface.
    pub class: u32,
    /// Header type (bits 0–6 of byte 0x0e).
    pub header_type: u8,
    /// Bit 7 of the header type: a multi-function device.
    pub multifunction: bool,
    /// Subsystem vendor ID from the header (type 0; type 2 if present); 0 for bridges, whose
    /// subsystem IDs live in a capability.
    pub subsystem_vendor: u16,
    /// Subsystem ID (as `subsystem_vendor`).
    pub subsystem_device: u16,
    /// The BAR registers (0 beyond `bar_slots`).
    pub bar_registers: [u32; 6],
    /// How many BAR registers this header type has: 6, 2 (bridge), 1 (CardBus), 0 (unknown).
    pub bar_slots: u8,
    /// Expansion ROM base address register (0 if the header type has none).
    pub rom_register: u32,
    /// The capability pointer: `(offset of the pointer byte, its value)`, when the status
    /// register says the list exists and the header type has one.
    pub cap_pointer: Option<(usize, u8)>,
    /// Interrupt line register (what firmware routed; the kernel's `irq` is authoritative).
    pub interrupt_line: u8,
    /// Interrupt pin: 0 none, 1–4 INTA#–INTD#.
    pub interrupt_pin: u8,
}

fn truncated(at: usize, len: usize, cap: Option<CapId>) -> ConfigError {
    ConfigError {
        offset: at,
        cap,
        kind: ConfigErrorKind::Truncated { len },
    }
}

/// `N` bytes at `at`, or the located error of data that ends before them.
fn bytes<const N: usize>(
    data: &[u8],
    at: usize,
    cap: Option<CapId>,
) -> Result<[u8; N], ConfigError> {
    at.checked_add(N)
        .and_then(|end| data.get(at..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| truncated(at, data.len(), cap))
}

fn byte(data: &[u8], at: usize, cap: Option<CapId>) -> Result<u8, ConfigError> {
    bytes::<1>(data, at, cap).map(|[b]| b)
}

fn word(data: &[u8], at: usize, cap: Option<CapId>) -> Result<u16, ConfigError> {
    bytes::<2>(data, at, cap).map(u16::from_le_bytes)
}

fn dword(data: &[u8], at: usize, cap: Option<CapId>) -> Result<u32, ConfigError> {
    bytes::<4>(data, at, cap).map(u32::from_le_bytes)
}

/// `at + n` for offsets inside configuration space (which never overflow).
fn plus(at: usize, n: usize) -> usize {
    at.saturating_add(n)
}

/// Configuration space to parse, read on demand: the parsers ask only for the bytes they
/// use (the header, then each capability), because every configuration read can be slow (a
/// VM exit, a bus transaction), and sysfs makes one per dword asked for.
pub trait ConfigRead {
    /// Fills `buf` with the bytes at `offset`, or fails with where the readable data ends
    /// (at or before `offset + buf.len()`; `buf` is then unspecified).
    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), usize>;
}

/// Configuration space held in memory (a dump, a test, the fuzzer); it ends where the slice
/// does.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl ConfigRead for Bytes<'_> {
    fn read_at(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), usize> {
        let src = offset
            .checked_add(buf.len())
            .and_then(|end| self.0.get(offset..end))
            .ok_or(self.0.len())?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Reads `buf.len()` bytes at `at`, or the located error of data that ends before them.
fn fetch(
    src: &mut dyn ConfigRead,
    at: usize,
    buf: &mut [u8],
    cap: Option<CapId>,
) -> Result<(), ConfigError> {
    src.read_at(at, buf).map_err(|end| truncated(at, end, cap))
}

/// Reads and parses the 64-byte header (one read of 64 bytes).
pub fn parse_header(src: &mut dyn ConfigRead) -> Result<Header, ConfigError> {
    let mut head = [0u8; HEADER_LEN];
    src.read_at(0, &mut head)
        .map_err(|end| truncated(end, end, None))?;
    let data = &head[..];
    let status = word(data, STATUS, None)?;
    let raw_type = byte(data, HEADER_TYPE, None)?;
    let header_type = raw_type & 0x7f;
    let class = u32::from_le_bytes([
        byte(data, CLASS_CODE, None)?,
        byte(data, plus(CLASS_CODE, 1), None)?,
        byte(data, plus(CLASS_CODE, 2), None)?,
        0,
    ]);
    let (bar_slots, rom_at, cap_at) = match header_type {
        HEADER_TYPE_NORMAL => (6u8, Some(ROM_ADDRESS), Some(CAPABILITY_LIST)),
        HEADER_TYPE_BRIDGE => (2, Some(BRIDGE_ROM_ADDRESS), Some(CAPABILITY_LIST)),
        HEADER_TYPE_CARDBUS => (1, None, Some(CARDBUS_CAPABILITY_LIST)),
        _ => (0, None, None),
    };
    let mut bar_registers = [0u32; 6];
    for (n, slot) in bar_registers
        .iter_mut()
        .enumerate()
        .take(usize::from(bar_slots))
    {
        *slot = dword(data, plus(BAR0, n.saturating_mul(4)), None)?;
    }
    let (subsystem_vendor, subsystem_device) = match header_type {
        HEADER_TYPE_NORMAL => (
            word(data, SUBSYSTEM_VENDOR_ID, None)?,
            word(data, SUBSYSTEM_ID, None)?,
        ),
        // A CardBus bridge keeps them past the 64-byte header; an unprivileged read of
        // sysfs does not reach them.
        HEADER_TYPE_CARDBUS => {
            let mut ids = [0u8; 4];
            match src.read_at(CARDBUS_SUBSYSTEM_VENDOR_ID, &mut ids) {
                Ok(()) => (
                    u16::from_le_bytes([ids[0], ids[1]]),
                    u16::from_le_bytes([ids[2], ids[3]]),
                ),
                Err(_) => (0, 0),
            }
        }
        _ => (0, 0),
    };
    let rom_register = match rom_at {
        Some(at) => dword(data, at, None)?,
        None => 0,
    };
    let cap_pointer = match cap_at {
        Some(at) if status & STATUS_CAP_LIST != 0 => Some((at, byte(data, at, None)?)),
        _ => None,
    };
    Ok(Header {
        vendor: word(data, VENDOR_ID, None)?,
        device: word(data, DEVICE_ID, None)?,
        command: word(data, COMMAND, None)?,
        status,
        revision: byte(data, REVISION_ID, None)?,
        class,
        header_type,
        multifunction: raw_type & 0x80 != 0,
        subsystem_vendor,
        subsystem_device,
        bar_registers,
        bar_slots,
        rom_register,
        cap_pointer,
        interrupt_line: byte(data, INTERRUPT_LINE, None)?,
        interrupt_pin: byte(data, INTERRUPT_PIN, None)?,
    })
}

/// One capability of either list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Where it starts in configuration space.
    pub offset: u16,
    /// Its ID (8 bits for the standard list, 16 for the extended one).
    pub id: u16,
    /// From the extended list (at 0x100 or above).
    pub extended: bool,
    /// Capability version (extended capabilities; 0 for standard ones).
    pub version: u8,
}

impl Capability {
    /// The capability's name, if devfd knows the ID.
    pub fn name(&self) -> Option<&'static str> {
        if self.extended {
            ext_cap_name(self.id)
        } else {
            u8::try_from(self.id).ok().and_then(cap_name)
        }
    }
}

/// The MSI capability (PCI Local Bus 3.0 §6.8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msi {
    /// Where the capability starts.
    pub offset: u16,
    /// Vectors the function can send: 1, 2, 4, 8, 16 or 32 (Multiple Message Capable).
    pub vectors: u8,
    /// MSI Enable.
    pub enabled: bool,
    /// 64-bit message addresses.
    pub is_64bit: bool,
    /// Per-vector masking.
    pub per_vector_mask: bool,
}

/// The MSI-X capability (PCI Local Bus 3.0 §6.8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiX {
    /// Where the capability starts.
    pub offset: u16,
    /// Entries in the vector table, 1–2048.
    pub table_size: u16,
    /// MSI-X Enable.
    pub enabled: bool,
    /// Function Mask.
    pub function_masked: bool,
    /// The BAR (BIR) holding the vector table.
    pub table_bar: u8,
    /// Offset of the table in that BAR.
    pub table_offset: u32,
    /// The BAR holding the pending-bit array.
    pub pba_bar: u8,
    /// Offset of the PBA in that BAR.
    pub pba_offset: u32,
}

/// What the capability walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Every capability, in list order.
    pub list: Vec<Capability>,
    /// The first MSI capability.
    pub msi: Option<Msi>,
    /// The first MSI-X capability.
    pub msix: Option<MsiX>,
    /// A PCI Express capability is present (so the extended list is meaningful).
    pub express: bool,
    /// A bridge's subsystem IDs from its SSVID capability.
    pub ssvid: Option<(u16, u16)>,
}

fn reserved(at: usize, cap: CapId, field: &'static str, value: u32) -> ConfigError {
    ConfigError {
        offset: at,
        cap: Some(cap),
        kind: ConfigErrorKind::Reserved { field, value },
    }
}

/// The longest capability body devfd decodes: a 64-bit MSI with per-vector masking.
const MAX_CAP_LEN: usize = 24;

/// Walks the standard capability list (0x40–0xff), reading each capability once: its
/// header, and the whole body of the ones devfd decodes (MSI, MSI-X, SSVID, PCI Express).
///
/// Errors are located at the pointer byte that is bad (0x34, or a capability's next pointer
/// at +1) and name the capability holding it; a capability the data ends in is located at
/// its start (or the field that is cut), with where the data ends.
pub fn walk_capabilities(
    src: &mut dyn ConfigRead,
    header: &Header,
) -> Result<Capabilities, ConfigError> {
    let mut caps = Capabilities::default();
    let Some((mut at, mut pointer)) = header.cap_pointer else {
        return Ok(caps);
    };
    let mut owner: Option<CapId> = None;
    // One flag per dword of the 256-byte space: a pointer may visit each at most once.
    let mut visited = [false; CONFIG_SPACE_LEN / 4];
    while pointer != 0 {
        let p = usize::from(pointer);
        let fail = |kind| ConfigError {
            offset: at,
            cap: owner,
            kind,
        };
        let pointer16 = u16::from(pointer);
        if p % 4 != 0 {
            return Err(fail(ConfigErrorKind::Misaligned { pointer: pointer16 }));
        }
        if p < HEADER_LEN {
            return Err(fail(ConfigErrorKind::PointsIntoHeader {
                pointer: pointer16,
            }));
        }
        match visited.get_mut(p / 4) {
            Some(seen) if !*seen => *seen = true,
            _ => return Err(fail(ConfigErrorKind::Loop { pointer: pointer16 })),
        }
        let mut head = [0u8; 2];
        fetch(src, p, &mut head, owner)?;
        let [id, next] = head;
        let cap = CapId::Standard(id);
        let len = match id {
            CAP_MSI => {
                let mut control = [0u8; 2];
                fetch(src, plus(p, 2), &mut control, Some(cap))?;
                let control = u16::from_le_bytes(control);
                let mut len = 10usize;
                if control & (1 << 7) != 0 {
                    len = plus(len, 4);
                }
                if control & (1 << 8) != 0 {
                    len = plus(len, 10);
                }
                len
            }
            CAP_MSIX => 12,
            CAP_SSVID => 8,
            CAP_EXP => 4,
            _ => 2,
        };
        if plus(p, len) > CONFIG_SPACE_LEN {
            return Err(ConfigError {
                offset: p,
                cap: Some(cap),
                kind: ConfigErrorKind::PastEnd {
                    pointer: pointer16,
                    end: CONFIG_SPACE_LEN,
                },
            });
        }
        let mut body = [0u8; MAX_CAP_LEN];
        if len > 2 {
            let want = body.get_mut(..len).unwrap_or(&mut []);
            fetch(src, p, want, Some(cap))?;
        }
        match id {
            CAP_MSI if caps.msi.is_none() => caps.msi = Some(decode_msi(&body, p, cap)?),
            CAP_MSIX if caps.msix.is_none() => caps.msix = Some(decode_msix(&body, p, cap)?),
            CAP_SSVID if caps.ssvid.is_none() => {
                caps.ssvid = Some((word(&body, 4, Some(cap))?, word(&body, 6, Some(cap))?));
            }
            CAP_EXP => caps.express = true,
            _ => {}
        }
        caps.list.push(Capability {
            offset: pointer16,
            id: u16::from(id),
            extended: false,
            version: 0,
        });
        at = plus(p, 1);
        owner = Some(cap);
        pointer = next;
    }
    Ok(caps)
}

/// Decodes an MSI capability at `p` from its `body` (offsets relative to `p`).
fn decode_msi(body: &[u8], p: usize, cap: CapId) -> Result<Msi, ConfigError> {
    let control = word(body, 2, Some(cap))?;
    let mmc = (control >> 1) & 0x7;
    if mmc > 5 {
        return Err(reserved(
            plus(p, 2),
            cap,
            "MSI Multiple Message Capable",
            u32::from(mmc),
        ));
    }
    Ok(Msi {
        offset: u16::try_from(p).unwrap_or(u16::MAX),
        vectors: 1u8.checked_shl(u32::from(mmc)).unwrap_or(32),
        enabled: control & 1 != 0,
        is_64bit: control & (1 << 7) != 0,
        per_vector_mask: control & (1 << 8) != 0,
    })
}

/// Decodes an MSI-X capability at `p` from its `body`.
fn decode_msix(body: &[u8], p: usize, cap: CapId) -> Result<MsiX, ConfigError> {
    let control = word(body, 2, Some(cap))?;
    let table = dword(body, 4, Some(cap))?;
    let pba = dword(body, 8, Some(cap))?;
    for (at, value, field) in [
        (plus(p, 4), table, "MSI-X Table BIR"),
        (plus(p, 8), pba, "MSI-X PBA BIR"),
    ] {
        if value & 7 > 5 {
            return Err(reserved(at, cap, field, value & 7));
        }
    }
    Ok(MsiX {
        offset: u16::try_from(p).unwrap_or(u16::MAX),
        // 11 bits of N - 1: 1..=2048, never overflowing.
        table_size: (control & 0x7ff).saturating_add(1),
        enabled: control & (1 << 15) != 0,
        function_masked: control & (1 << 14) != 0,
        table_bar: (table & 7) as u8,
        table_offset: table & !7,
        pba_bar: (pba & 7) as u8,
        pba_offset: pba & !7,
    })
}

/// Walks the extended capability list from 0x100 up to `end` (the configuration space
/// size, 4096), reading one 4-byte header per capability.
///
/// A header of 0 or all ones ends the list (no extended capabilities, or a function that
/// is gone), as it does for Linux and lspci. Next pointers are checked as in
/// [`walk_capabilities`], against 0x100 and `end`; errors are located at the pointer's byte
/// (+2 of the header).
pub fn walk_extended(src: &mut dyn ConfigRead, end: usize) -> Result<Vec<Capability>, ConfigError> {
    let mut list = Vec::new();
    if end < plus(CONFIG_SPACE_LEN, 4) {
        return Ok(list);
    }
    // One flag per dword of the extended space: each may be visited at most once.
    let mut visited = [false; (EXTENDED_CONFIG_SPACE_LEN - CONFIG_SPACE_LEN) / 4];
    let mut pos = CONFIG_SPACE_LEN;
    loop {
        if let Some(seen) = visited.get_mut(pos.saturating_sub(CONFIG_SPACE_LEN) / 4) {
            *seen = true;
        }
        let mut raw = [0u8; 4];
        fetch(src, pos, &mut raw, None)?;
        let header = u32::from_le_bytes(raw);
        if header == 0 || header == u32::MAX {
            break;
        }
        let id = (header & 0xffff) as u16;
        let cap = CapId::Extended(id);
        list.push(Capability {
            offset: u16::try_from(pos).unwrap_or(u16::MAX),
            id,
            extended: true,
            version: ((header >> 16) & 0xf) as u8,
        });
        let next = (header >> 20) as u16;
        if next == 0 {
            break;
        }
        let fail = |kind| ConfigError {
            offset: plus(pos, 2),
            cap: Some(cap),
            kind,
        };
        let n = usize::from(next);
        if n % 4 != 0 {
            return Err(fail(ConfigErrorKind::Misaligned { pointer: next }));
        }
        if n < CONFIG_SPACE_LEN {
            return Err(fail(ConfigErrorKind::PointsIntoHeader { pointer: next }));
        }
        if plus(n, 4) > end {
            return Err(fail(ConfigErrorKind::PastEnd { pointer: next, end }));
        }
        match visited.get(n.saturating_sub(CONFIG_SPACE_LEN) / 4) {
            Some(false) => {}
            _ => return Err(fail(ConfigErrorKind::Loop { pointer: next })),
        }
        pos = n;
    }
    Ok(list)
}

/// The name of a standard capability ID (as lspci and the PCI Code and ID Assignment
/// specification name them).
pub fn cap_name(id: u8) -> Option<&'static str> {
    Some(match id {
        0x01 => "Power Management",
        0x02 => "AGP",
        0x03 => "Vital Product Data",
        0x04 => "Slot Identification",
        0x05 => "MSI",
        0x06 => "CompactPCI Hot Swap",
        0x07 => "PCI-X",
        0x08 => "HyperTransport",
        0x09 => "Vendor Specific",
        0x0a => "Debug Port",
        0x0b => "CompactPCI Central Resource Control",
        0x0c => "PCI Hot-Plug",
        0x0d => "Subsystem ID",
        0x0e => "AGP 8x",
        0x0f => "Secure Device",
        0x10 => "PCI Express",
        0x11 => "MSI-X",
        0x12 => "SATA",
        0x13 => "Advanced Features",
        0x14 => "Enhanced Allocation",
        0x15 => "Flattening Portal Bridge",
        _ => return None,
    })
}

/// The name of an extended capability ID.
pub fn ext_cap_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x0001 => "Advanced Error Reporting",
        0x0002 => "Virtual Channel",
        0x0003 => "Device Serial Number",
        0x0004 => "Power Budgeting",
        0x0005 => "Root Complex Link Declaration",
        0x0006 => "Root Complex Internal Link Control",
        0x0007 => "Root Complex Event Collector Endpoint Association",
        0x0008 => "Multi-Function Virtual Channel",
        0x0009 => "Virtual Channel (MFVC)",
        0x000a => "Root Complex Register Block",
        0x000b => "Vendor Specific",
        0x000c => "Configuration Access Correlation",
        0x000d => "Access Control Services",
        0x000e => "Alternative Routing-ID Interpretation",
        0x000f => "Address Translation Services",
        0x0010 => "Single Root I/O Virtualization",
        0x0011 => "Multi-Root I/O Virtualization",
        0x0012 => "Multicast",
        0x0013 => "Page Request",
        0x0015 => "Resizable BAR",
        0x0016 => "Dynamic Power Allocation",
        0x0017 => "TPH Requester",
        0x0018 => "Latency Tolerance Reporting",
        0x0019 => "Secondary PCI Express",
        0x001a => "Protocol Multiplexing",
        0x001b => "Process Address Space ID",
        0x001d => "Downstream Port Containment",
        0x001e => "L1 PM Substates",
        0x001f => "Precision Time Measurement",
        0x0023 => "Designated Vendor-Specific",
        0x0024 => "VF Resizable BAR",
        0x0025 => "Data Link Feature",
        0x0026 => "Physical Layer 16.0 GT/s",
        0x0027 => "Lane Margining at the Receiver",
        0x002a => "Physical Layer 32.0 GT/s",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A type-0 header with the capability list bit and pointer `first`.
    fn space(first: u8) -> Vec<u8> {
        let mut c = vec![0u8; 256];
        c[0..4].copy_from_slice(&[0x86, 0x80, 0x34, 0x12]);
        c[6] = STATUS_CAP_LIST as u8;
        c[8] = 0x02;
        c[9..12].copy_from_slice(&[0x00, 0x00, 0x02]);
        c[0x2c..0x30].copy_from_slice(&[0xf4, 0x1a, 0x01, 0x00]);
        c[0x34] = first;
        c
    }

    fn walk(c: &[u8]) -> Result<Capabilities, ConfigError> {
        walk_capabilities(&mut Bytes(c), &parse_header(&mut Bytes(c)).unwrap())
    }

    fn header(c: &[u8]) -> Result<Header, ConfigError> {
        parse_header(&mut Bytes(c))
    }

    fn kind(e: ConfigError) -> ConfigErrorKind {
        e.kind
    }

    #[test]
    fn header_fields() {
        let mut c = space(0);
        c[0x10..0x14].copy_from_slice(&0xfebf_0000u32.to_le_bytes());
        c[0x3d] = 1;
        c[0x3c] = 11;
        c[0x0e] = 0x80;
        let h = header(&c).unwrap();
        assert_eq!((h.vendor, h.device, h.revision), (0x8086, 0x1234, 2));
        assert_eq!(h.class, 0x02_0000);
        assert_eq!((h.subsystem_vendor, h.subsystem_device), (0x1af4, 1));
        assert_eq!(h.bar_registers[0], 0xfebf_0000);
        assert_eq!((h.interrupt_pin, h.interrupt_line), (1, 11));
        assert!(h.multifunction);
        assert_eq!(h.cap_pointer, Some((0x34, 0)));
        // Without the status bit there is no list, whatever 0x34 holds.
        c[6] = 0;
        c[0x34] = 0x11;
        assert_eq!(header(&c).unwrap().cap_pointer, None);
        assert!(walk(&c).unwrap().list.is_empty());
    }

    #[test]
    fn header_shorter_than_64_bytes_is_truncated() {
        let c = space(0);
        for len in [0, 1, 12, 63] {
            let e = header(&c[..len]).unwrap_err();
            assert_eq!(e.offset, len);
            assert_eq!(kind(e), ConfigErrorKind::Truncated { len });
        }
    }

    #[test]
    fn msi_and_msix_are_decoded() {
        let mut c = space(0x40);
        // MSI at 0x40: 8 vectors (MMC 3), 64-bit, per-vector masking, enabled.
        c[0x40..0x44].copy_from_slice(&[CAP_MSI, 0x60, 0x87, 0x01]);
        // MSI-X at 0x60: 5 entries, table in BAR 0 at 0x8000, PBA in BAR 2 at 0x48000.
        c[0x60..0x64].copy_from_slice(&[CAP_MSIX, 0x70, 0x04, 0x80]);
        c[0x64..0x68].copy_from_slice(&0x8000u32.to_le_bytes());
        c[0x68..0x6c].copy_from_slice(&0x0004_8002u32.to_le_bytes());
        // PCI Express at 0x70, last.
        c[0x70..0x72].copy_from_slice(&[CAP_EXP, 0x00]);
        let caps = walk(&c).unwrap();
        let ids: Vec<_> = caps.list.iter().map(|c| (c.offset, c.id)).collect();
        assert_eq!(ids, [(0x40, 5), (0x60, 0x11), (0x70, 0x10)]);
        assert_eq!(
            caps.msi,
            Some(Msi {
                offset: 0x40,
                vectors: 8,
                enabled: true,
                is_64bit: true,
                per_vector_mask: true
            })
        );
        assert_eq!(
            caps.msix,
            Some(MsiX {
                offset: 0x60,
                table_size: 5,
                enabled: true,
                function_masked: false,
                table_bar: 0,
                table_offset: 0x8000,
                pba_bar: 2,
                pba_offset: 0x48000
            })
        );
        assert!(caps.express);
        assert_eq!(caps.list[1].name(), Some("MSI-X"));
    }

    #[test]
    fn a_loop_is_rejected_at_the_pointer_that_closes_it() {
        let mut c = space(0x40);
        c[0x40..0x42].copy_from_slice(&[CAP_PM, 0x50]);
        c[0x50..0x52].copy_from_slice(&[0x09, 0x40]);
        let e = walk(&c).unwrap_err();
        assert_eq!(e.offset, 0x51);
        assert_eq!(e.cap, Some(CapId::Standard(0x09)));
        assert_eq!(e.kind, ConfigErrorKind::Loop { pointer: 0x40 });
        // A capability pointing at itself.
        c[0x41] = 0x40;
        let e = walk(&c).unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (0x41, ConfigErrorKind::Loop { pointer: 0x40 })
        );
        assert!(
            e.to_string().contains("capability 0x01 (Power Management)"),
            "{e}"
        );
    }

    #[test]
    fn a_pointer_into_the_header_is_rejected() {
        let c = space(0x20);
        let e = walk(&c).unwrap_err();
        assert_eq!(e.offset, 0x34);
        assert_eq!(e.cap, None);
        assert_eq!(e.kind, ConfigErrorKind::PointsIntoHeader { pointer: 0x20 });
        let mut c = space(0x40);
        c[0x40..0x42].copy_from_slice(&[CAP_PM, 0x3c]);
        let e = walk(&c).unwrap_err();
        assert_eq!((e.offset, e.cap), (0x41, Some(CapId::Standard(CAP_PM))));
        assert_eq!(e.kind, ConfigErrorKind::PointsIntoHeader { pointer: 0x3c });
        assert!(e.to_string().contains("below 0x40"), "{e}");
    }

    #[test]
    fn a_misaligned_pointer_is_rejected() {
        let e = walk(&space(0x41)).unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (0x34, ConfigErrorKind::Misaligned { pointer: 0x41 })
        );
        let mut c = space(0x40);
        c[0x40..0x42].copy_from_slice(&[CAP_PM, 0xfe]);
        let e = walk(&c).unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (0x41, ConfigErrorKind::Misaligned { pointer: 0xfe })
        );
    }

    #[test]
    fn a_truncated_config_file_is_rejected_where_it_ends() {
        let mut c = space(0x80);
        c[0x80..0x82].copy_from_slice(&[CAP_PM, 0x00]);
        // The capability lies beyond the data: the file ends at 0x70.
        let e = walk(&c[..0x70]).unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (0x80, ConfigErrorKind::Truncated { len: 0x70 })
        );
        // An MSI-X capability cut in the middle.
        let mut c = space(0x40);
        c[0x40..0x42].copy_from_slice(&[CAP_MSIX, 0x00]);
        let e = walk(&c[..0x46]).unwrap_err();
        assert_eq!(e.cap, Some(CapId::Standard(CAP_MSIX)));
        assert_eq!(
            (e.offset, e.kind),
            (0x40, ConfigErrorKind::Truncated { len: 0x46 })
        );
        // What a process without CAP_SYS_ADMIN reads: 64 bytes. The message says so.
        let e = walk(&space(0x40)[..64]).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Truncated { len: 64 });
        assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}");
    }

    #[test]
    fn a_capability_past_the_end_of_the_space_is_rejected() {
        // MSI-X (12 bytes) at 0xf8 would end at 0x104.
        let mut c = space(0xf8);
        c[0xf8..0xfa].copy_from_slice(&[CAP_MSIX, 0x00]);
        let e = walk(&c).unwrap_err();
        assert_eq!(e.offset, 0xf8);
        assert_eq!(
            e.kind,
            ConfigErrorKind::PastEnd {
                pointer: 0xf8,
                end: 0x100
            }
        );
        // A 64-bit maskable MSI (24 bytes) at 0xf0.
        let mut c = space(0xf0);
        c[0xf0..0xf4].copy_from_slice(&[CAP_MSI, 0x00, 0x80, 0x01]);
        assert!(matches!(
            walk(&c).unwrap_err().kind,
            ConfigErrorKind::PastEnd { pointer: 0xf0, .. }
        ));
    }

    #[test]
    fn reserved_encodings_are_rejected() {
        let mut c = space(0x40);
        c[0x40..0x44].copy_from_slice(&[CAP_MSI, 0x00, 0x0c, 0x00]); // MMC = 6
        let e = walk(&c).unwrap_err();
        assert_eq!(e.offset, 0x42);
        assert!(matches!(e.kind, ConfigErrorKind::Reserved { value: 6, .. }));
        let mut c = space(0x40);
        c[0x40..0x42].copy_from_slice(&[CAP_MSIX, 0x00]);
        c[0x48] = 7; // PBA BIR 7
        let e = walk(&c).unwrap_err();
        assert_eq!(e.offset, 0x48);
        assert!(matches!(e.kind, ConfigErrorKind::Reserved { value: 7, .. }));
    }

    #[test]
    fn the_longest_possible_list_ends() {
        // 48 capabilities chained through every dword slot: accepted, and the walk ends.
        let mut c = space(0x40);
        for p in (0x40..0x100).step_by(4) {
            c[p] = 0x09;
            c[p + 1] = if p == 0xfc { 0 } else { (p + 4) as u8 };
        }
        assert_eq!(walk(&c).unwrap().list.len(), 48);
        // The same chain closed into a ring is a loop, found after 48 steps.
        c[0xfd] = 0x40;
        assert_eq!(walk(&c).unwrap_err().offset, 0xfd);
    }

    fn ext(c: &mut [u8], at: usize, id: u16, next: u16) {
        let header = u32::from(id) | 1 << 16 | u32::from(next) << 20;
        c[at..at + 4].copy_from_slice(&header.to_le_bytes());
    }

    fn walk_ext(c: &[u8]) -> Result<Vec<Capability>, ConfigError> {
        walk_extended(&mut Bytes(c), c.len())
    }

    #[test]
    fn extended_list() {
        let mut c = vec![0u8; 4096];
        assert!(walk_ext(&c).unwrap().is_empty(), "0 at 0x100: none");
        c[0x100..0x104].fill(0xff);
        assert!(walk_ext(&c).unwrap().is_empty(), "all ones: none");
        ext(&mut c, 0x100, 0x0001, 0x148);
        ext(&mut c, 0x148, 0x000e, 0x158);
        ext(&mut c, 0x158, 0x0010, 0);
        let list = walk_ext(&c).unwrap();
        let got: Vec<_> = list.iter().map(|c| (c.offset, c.id, c.version)).collect();
        assert_eq!(got, [(0x100, 1, 1), (0x148, 0xe, 1), (0x158, 0x10, 1)]);
        assert_eq!(list[0].name(), Some("Advanced Error Reporting"));
        assert!(
            walk_ext(&c[..256]).unwrap().is_empty(),
            "a 256-byte space has none"
        );
    }

    #[test]
    fn extended_damage_is_located() {
        let mut c = vec![0u8; 4096];
        ext(&mut c, 0x100, 0x0001, 0x148);
        ext(&mut c, 0x148, 0x000e, 0x100);
        let e = walk_ext(&c).unwrap_err();
        assert_eq!((e.offset, e.cap), (0x14a, Some(CapId::Extended(0xe))));
        assert_eq!(e.kind, ConfigErrorKind::Loop { pointer: 0x100 });
        ext(&mut c, 0x148, 0x000e, 0x148);
        assert_eq!(
            walk_ext(&c).unwrap_err().kind,
            ConfigErrorKind::Loop { pointer: 0x148 }
        );
        ext(&mut c, 0x148, 0x000e, 0x0fc);
        let e = walk_ext(&c).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::PointsIntoHeader { pointer: 0xfc });
        assert!(e.to_string().contains("below 0x100"), "{e}");
        ext(&mut c, 0x148, 0x000e, 0x14a);
        assert_eq!(
            walk_ext(&c).unwrap_err().kind,
            ConfigErrorKind::Misaligned { pointer: 0x14a }
        );
        ext(&mut c, 0x148, 0x000e, 0x200);
        let e = walk_ext(&c[..0x200]).unwrap_err();
        assert_eq!(
            e.kind,
            ConfigErrorKind::PastEnd {
                pointer: 0x200,
                end: 0x200
            }
        );
        // A reader that runs dry (a failing pread) is a truncation at that header.
        ext(&mut c, 0x148, 0x000e, 0x400);
        let e = walk_extended(&mut Bytes(&c[..0x400]), 4096).unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (0x400, ConfigErrorKind::Truncated { len: 0x400 })
        );
    }

    #[test]
    fn the_longest_extended_list_ends() {
        let mut c = vec![0u8; 4096];
        for p in (0x100..0x1000).step_by(4) {
            ext(
                &mut c,
                p,
                0x000b,
                if p == 0xffc { 0 } else { (p + 4) as u16 },
            );
        }
        assert_eq!(walk_ext(&c).unwrap().len(), 960);
        ext(&mut c, 0xffc, 0x000b, 0x100);
        assert_eq!(walk_ext(&c).unwrap_err().offset, 0xffe);
    }

    #[test]
    fn bridge_subsystem_comes_from_ssvid() {
        let mut c = space(0x40);
        c[0x0e] = HEADER_TYPE_BRIDGE;
        c[0x40..0x48].copy_from_slice(&[CAP_SSVID, 0, 0, 0, 0xf4, 0x1a, 0x00, 0x11]);
        let h = header(&c).unwrap();
        assert_eq!((h.bar_slots, h.subsystem_vendor), (2, 0));
        assert_eq!(walk(&c).unwrap().ssvid, Some((0x1af4, 0x1100)));
    }
}
