//! [`DeviceFile`]: an open device file, its description, and register, bulk and interrupt
//! access through `pread`/`pwrite`/`poll` (SPEC.md §6).

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use devfd_format::{Description, Location};

use crate::discover::read_description_bytes;
use crate::info::{AsInterrupt, AsRegion, IrqInfo, RegionInfo};
use crate::{ClientError, Op, sys};

/// Largest transfer of one bulk `pread`/`pwrite`: FUSE's largest request.
pub const MAX_CHUNK: usize = 1 << 20;

/// Widest access [`DeviceFile::read_bulk`] makes to a register-like region.
const REGISTER_BULK_WIDTH: usize = 4;

/// Sleeps of [`DeviceFile::wait_interrupt`] when `poll` cannot block (see there).
const IDLE_SLEEP_MIN: Duration = Duration::from_millis(1);
const IDLE_SLEEP_MAX: Duration = Duration::from_millis(20);

/// Mask word values (SPEC.md §6.3).
const MASKED: u32 = 1;
const UNMASKED: u32 = 0;
/// Offset of the mask word in a vector's control block.
const MASK_WORD: u64 = 8;

/// An open devfd device file (or any file holding a description) with its validated
/// description.
///
/// On a file that no server answers (a description blob), lookups work as usual and
/// accesses at region or control-window offsets get whatever the file has there: usually
/// end of file, reported as [`ClientError::Short`]. Writes to such a file land in the file.
pub struct DeviceFile {
    file: File,
    path: PathBuf,
    writable: bool,
    bytes: Box<[u8]>,
    regions: Box<[RegionInfo]>,
    interrupts: Box<[IrqInfo]>,
}

impl fmt::Debug for DeviceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceFile")
            .field("path", &self.path)
            .field("writable", &self.writable)
            .field("desc_len", &self.bytes.len())
            .field("regions", &self.regions)
            .field("interrupts", &self.interrupts)
            .finish_non_exhaustive()
    }
}

impl DeviceFile {
    /// Opens a device file read-write, or read-only if write access is refused, and reads
    /// its description (at most two reads, SPEC.md §2.3).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => Self::from_file(file, path, true),
            Err(e) if is_access_denied(&e) => Self::open_read_only(path),
            Err(source) => Err(ClientError::Open {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Opens a device file read-only and reads its description.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| ClientError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::from_file(file, path, false)
    }

    /// Takes over a device file that is open already (a broker passed the fd, or the caller
    /// opened it with flags of its own), reads and validates its description. The path for
    /// `D.rN` files is taken from `/proc/self/fd`. On failure the fd is closed.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Result<Self, ClientError> {
        use std::os::fd::{AsFd, AsRawFd};
        let link = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let path = std::fs::read_link(&link).unwrap_or(link);
        let mode = sys::access_mode(fd.as_fd()).map_err(|source| ClientError::Open {
            path: path.clone(),
            source,
        })?;
        Self::from_file(File::from(fd), &path, mode == libc::O_RDWR)
    }

    fn from_file(file: File, path: &Path, writable: bool) -> Result<Self, ClientError> {
        // Read without validating, then validate once here (SPEC.md §2.3 reads, §7 checks).
        let bytes = read_description_bytes(&file)?;
        let d = devfd_format::parse(&bytes)?;
        let regions = d.regions().map(|r| RegionInfo::from_region(&r)).collect();
        let interrupts = d
            .interrupts()
            .map(|i| IrqInfo::from_interrupt(&i))
            .collect();
        Ok(DeviceFile {
            file,
            path: path.to_owned(),
            writable,
            bytes: bytes.into_boxed_slice(),
            regions,
            interrupts,
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is open for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// `desc_len`: the length of the description.
    pub fn desc_len(&self) -> usize {
        self.bytes.len()
    }

    /// The description's bytes, exactly `desc_len` of them.
    pub fn description_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The validated description, for everything the handles below do not carry.
    pub fn description(&self) -> Description<'_> {
        // The bytes passed `parse` in `from_file` and are immutable since; parsing is
        // deterministic, so this cannot fail.
        devfd_format::parse(&self.bytes).expect("description validated at open")
    }

    /// The regions, in file order.
    pub fn regions(&self) -> &[RegionInfo] {
        &self.regions
    }

    /// The interrupts, in file order.
    pub fn interrupts(&self) -> &[IrqInfo] {
        &self.interrupts
    }

    /// The region with this index.
    pub fn region(&self, index: u32) -> Option<RegionInfo> {
        self.regions.iter().find(|r| r.index == index).copied()
    }

    /// The interrupt with this index.
    pub fn interrupt(&self, index: u32) -> Option<IrqInfo> {
        self.interrupts.iter().find(|i| i.index == index).copied()
    }

    /// The region that is PCI BAR `bar` (not the upper half of a 64-bit BAR).
    pub fn pci_bar(&self, bar: u8) -> Option<RegionInfo> {
        self.find_region(|r| matches!(r.location, Location::PciBar { bar: b, .. } if b == bar))
    }

    /// The DMA windows (regions with a DMA_WINDOW bus address, SPEC.md §4.19): memory the
    /// device reaches by DMA, which a driver maps with [`Self::map`] and addresses with
    /// [`crate::Mapping::bus_address`].
    pub fn dma_windows(&self) -> impl Iterator<Item = RegionInfo> + '_ {
        self.regions()
            .iter()
            .copied()
            .filter(RegionInfo::is_dma_window)
    }

    /// The region that is PCI configuration space.
    pub fn pci_config(&self) -> Option<RegionInfo> {
        self.find_region(|r| r.location == Location::PciConfig)
    }

    /// The region that is the PCI expansion ROM.
    pub fn pci_rom(&self) -> Option<RegionInfo> {
        self.find_region(|r| r.location == Location::PciRom)
    }

    /// The region that is entry `index` of the `reg` (or `ranges`) property of DT node `path`.
    pub fn dt_region(&self, path: &str, index: u32) -> Option<RegionInfo> {
        let r = self.description().dt_region(path, index)?;
        self.region(r.index)
    }

    /// The interrupt that is entry `index` of the `interrupts` property of DT node `path`.
    pub fn dt_interrupt(&self, path: &str, index: u32) -> Option<IrqInfo> {
        let i = self.description().dt_interrupt(path, index)?;
        self.interrupt(i.index)
    }

    /// The label of region `index`.
    pub fn region_label(&self, index: u32) -> Option<&str> {
        self.description().region(index)?.label()
    }

    /// The device-tree node path of region `index`.
    pub fn region_dt_path(&self, index: u32) -> Option<&str> {
        Some(self.description().region(index)?.dt()?.path)
    }

    /// The label of interrupt `index`.
    pub fn interrupt_label(&self, index: u32) -> Option<&str> {
        self.description().interrupt(index)?.label()
    }

    /// The device-tree node path of interrupt `index`.
    pub fn interrupt_dt_path(&self, index: u32) -> Option<&str> {
        Some(self.description().interrupt(index)?.dt()?.path)
    }

    fn find_region(&self, f: impl Fn(&RegionInfo) -> bool) -> Option<RegionInfo> {
        self.regions.iter().find(|r| f(r)).copied()
    }

    /// Finds a region by name. Tried in this order, the first match wins:
    ///
    /// 1. a decimal region index: `"0"`, `"7"`;
    /// 2. `"bar0"` … `"bar5"`: the PCI BAR; `"rom"`, `"config"`: the PCI ROM, config space;
    /// 3. `"dt:N"`: the N-th region (from 0, in file order) among the regions that come from
    ///    the device tree (have DT_PATH + DT_INDEX);
    /// 4. a label (the first region in file order that has it).
    pub fn resolve_region(&self, name: &str) -> Result<RegionInfo, ClientError> {
        let structured = if let Some(i) = parse_decimal(name) {
            self.region(i)
        } else if let Some(bar) = name.strip_prefix("bar").and_then(parse_decimal) {
            u8::try_from(bar).ok().and_then(|b| self.pci_bar(b))
        } else if name == "rom" {
            self.pci_rom()
        } else if name == "config" {
            self.pci_config()
        } else if let Some(n) = name.strip_prefix("dt:").and_then(parse_decimal) {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            self.regions
                .iter()
                .filter(|r| r.dt.is_some())
                .nth(n)
                .copied()
        } else {
            None
        };
        structured
            .or_else(|| {
                let r = self
                    .description()
                    .regions()
                    .find(|r| r.label() == Some(name))?;
                self.region(r.index)
            })
            .ok_or_else(|| ClientError::UnknownName {
                what: "region",
                name: name.to_owned(),
            })
    }

    /// Finds an interrupt by name. Tried in this order, the first match wins:
    ///
    /// 1. a decimal interrupt index;
    /// 2. `"dt:N"`: the N-th interrupt (from 0, in file order) among those that come from
    ///    the device tree;
    /// 3. a kind name (`intx`, `msi`, `msix`, `wired`, `error`, `request`): the first
    ///    interrupt of that kind;
    /// 4. a label.
    pub fn resolve_interrupt(&self, name: &str) -> Result<IrqInfo, ClientError> {
        let structured = if let Some(i) = parse_decimal(name) {
            self.interrupt(i)
        } else if let Some(n) = name.strip_prefix("dt:").and_then(parse_decimal) {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            self.interrupts
                .iter()
                .filter(|i| i.dt.is_some())
                .nth(n)
                .copied()
        } else if let Some(kind) = devfd_format::irq_kind_from_name(name) {
            self.interrupts.iter().find(|i| i.kind == kind).copied()
        } else {
            None
        };
        structured
            .or_else(|| {
                let i = self
                    .description()
                    .interrupts()
                    .find(|i| i.label() == Some(name))?;
                self.interrupt(i.index)
            })
            .ok_or_else(|| ClientError::UnknownName {
                what: "interrupt",
                name: name.to_owned(),
            })
    }

    /// The path of the file through which region `index` is mapped when the device file
    /// itself cannot be (SPEC.md §6.5): `<path>.r<index>`.
    pub fn sibling_path(&self, index: u32) -> PathBuf {
        let mut p = OsString::from(self.path.as_os_str());
        p.push(format!(".r{index}"));
        PathBuf::from(p)
    }

    pub(crate) fn region_of(&self, region: &impl AsRegion) -> Result<RegionInfo, ClientError> {
        let index = region.region_index();
        self.region(index).ok_or(ClientError::NoSuchRegion(index))
    }

    /// Checks an access of `len` bytes at `offset` of `r` in SPEC.md §6.6 order (range,
    /// shape, permission) and returns its file offset.
    fn check_access(
        r: &RegionInfo,
        offset: u64,
        len: usize,
        op: Op,
        register: bool,
    ) -> Result<u64, ClientError> {
        let len64 = len as u64;
        let out_of_range = || ClientError::OutOfRange {
            region: r.index,
            offset,
            len: len64,
            size: r.size,
        };
        if offset.checked_add(len64).is_none_or(|end| end > r.size) {
            return Err(out_of_range());
        }
        if register && !r.mmappable() && !offset.is_multiple_of(len64) {
            return Err(ClientError::Misaligned {
                region: r.index,
                offset,
                width: len,
            });
        }
        if register && !r.accepts_width(len) {
            return Err(ClientError::WidthNotAccepted {
                region: r.index,
                offset,
                width: len,
                widths: r.access_widths,
            });
        }
        let allowed = match op {
            Op::Read => r.readable(),
            Op::Write => r.writable(),
            Op::Map | Op::Poll => true,
        };
        if !allowed {
            return Err(ClientError::NotPermitted {
                region: r.index,
                op,
            });
        }
        // Cannot overflow: the description guarantees offset + size <= 2^63.
        r.offset.checked_add(offset).ok_or_else(out_of_range)
    }

    fn read_word<const N: usize>(
        &self,
        region: impl AsRegion,
        offset: u64,
    ) -> Result<[u8; N], ClientError> {
        let r = self.region_of(&region)?;
        let at = Self::check_access(&r, offset, N, Op::Read, true)?;
        let mut buf = [0u8; N];
        self.pread_exact(&mut buf, at)?;
        Ok(buf)
    }

    fn write_word<const N: usize>(
        &self,
        region: impl AsRegion,
        offset: u64,
        value: [u8; N],
    ) -> Result<(), ClientError> {
        let r = self.region_of(&region)?;
        let at = Self::check_access(&r, offset, N, Op::Write, true)?;
        self.pwrite_exact(&value, at)
    }

    /// One `pread` of exactly `buf.len()` bytes: a device access is never split or repeated.
    fn pread_exact(&self, buf: &mut [u8], at: u64) -> Result<(), ClientError> {
        let n = self.pread(buf, at)?;
        if n < buf.len() {
            return Err(ClientError::Short {
                op: Op::Read,
                offset: at,
                len: buf.len(),
                done: n,
            });
        }
        Ok(())
    }

    /// One `pwrite` of exactly `buf.len()` bytes.
    fn pwrite_exact(&self, buf: &[u8], at: u64) -> Result<(), ClientError> {
        let n = self.pwrite(buf, at)?;
        if n < buf.len() {
            return Err(ClientError::Short {
                op: Op::Write,
                offset: at,
                len: buf.len(),
                done: n,
            });
        }
        Ok(())
    }

    /// One `pread`, retried only if a signal interrupted it before any transfer.
    fn pread(&self, buf: &mut [u8], at: u64) -> Result<usize, ClientError> {
        loop {
            match self.file.read_at(buf, at) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ClientError::Io {
                        op: Op::Read,
                        offset: at,
                        len: buf.len(),
                        source,
                    });
                }
                Ok(n) => return Ok(n),
            }
        }
    }

    /// One `pwrite`, retried only if a signal interrupted it before any transfer.
    fn pwrite(&self, buf: &[u8], at: u64) -> Result<usize, ClientError> {
        loop {
            match self.file.write_at(buf, at) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ClientError::Io {
                        op: Op::Write,
                        offset: at,
                        len: buf.len(),
                        source,
                    });
                }
                Ok(n) => return Ok(n),
            }
        }
    }
}

macro_rules! register_accessors {
    ($($ty:ty, $read:ident, $write:ident;)*) => {
        impl DeviceFile {
            $(
                #[doc = concat!(
                    "Reads a little-endian `", stringify!($ty), "` at `offset` of a region: ",
                    "one `pread` of exactly that width.\n\n",
                    "The access must lie inside the region ([`ClientError::OutOfRange`]), be ",
                    "naturally aligned in a register-like region ([`ClientError::Misaligned`]) ",
                    "and be allowed by its flags ([`ClientError::NotPermitted`]); these are ",
                    "checked before any syscall."
                )]
                pub fn $read(&self, region: impl AsRegion, offset: u64) -> Result<$ty, ClientError> {
                    self.read_word(region, offset).map(<$ty>::from_le_bytes)
                }

                #[doc = concat!(
                    "Writes a little-endian `", stringify!($ty), "` at `offset` of a region: ",
                    "one `pwrite` of exactly that width, with the checks of [`Self::",
                    stringify!($read), "`]."
                )]
                pub fn $write(
                    &self,
                    region: impl AsRegion,
                    offset: u64,
                    value: $ty,
                ) -> Result<(), ClientError> {
                    self.write_word(region, offset, value.to_le_bytes())
                }
            )*
        }
    };
}

register_accessors! {
    u8, read_u8, write_u8;
    u16, read_u16, write_u16;
    u32, read_u32, write_u32;
    u64, read_u64, write_u64;
}

impl DeviceFile {
    /// Reads `buf.len()` bytes at `offset` of a region: in pieces of up to 1 MiB on a
    /// memory-like region; on a register-like one as the widest naturally aligned accesses the
    /// region accepts (up to 4 bytes each).
    ///
    /// The whole access is checked before anything reaches the device (range, flags, and on a
    /// register-like region that it splits into accepted widths): a failed check has no
    /// effect. An error from the device part-way is returned as is;
    /// [`Self::read_bulk_counted`] also says how many bytes were read before it.
    /// Zero bytes succeed at any offset.
    pub fn read_bulk(
        &self,
        region: impl AsRegion,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), ClientError> {
        self.read_bulk_counted(region, offset, buf, &mut 0)
    }

    /// [`Self::read_bulk`], storing in `done` the bytes transferred (also on failure).
    pub fn read_bulk_counted(
        &self,
        region: impl AsRegion,
        offset: u64,
        buf: &mut [u8],
        done: &mut usize,
    ) -> Result<(), ClientError> {
        *done = 0;
        let r = self.region_of(&region)?;
        if buf.is_empty() {
            return Ok(());
        }
        let at = Self::check_access(&r, offset, buf.len(), Op::Read, false)?;
        Self::check_pieces(&r, offset, buf.len())?;
        while let Some(rest) = buf.get_mut(*done..).filter(|b| !b.is_empty()) {
            let pos = at + *done as u64;
            let want = Self::piece(&r, offset + *done as u64, rest.len());
            let n = self.pread(&mut rest[..want], pos)?.min(want);
            // A register is accessed whole or not at all; memory may come in pieces.
            if n == 0 || (n < want && !r.mmappable()) {
                return Err(ClientError::Short {
                    op: Op::Read,
                    offset: at,
                    len: buf.len(),
                    done: *done,
                });
            }
            *done += n;
        }
        Ok(())
    }

    /// Writes `buf` at `offset` of a region, split and checked as [`Self::read_bulk`] does.
    pub fn write_bulk(
        &self,
        region: impl AsRegion,
        offset: u64,
        buf: &[u8],
    ) -> Result<(), ClientError> {
        self.write_bulk_counted(region, offset, buf, &mut 0)
    }

    /// [`Self::write_bulk`], storing in `done` the bytes that reached the device (also on
    /// failure).
    pub fn write_bulk_counted(
        &self,
        region: impl AsRegion,
        offset: u64,
        buf: &[u8],
        done: &mut usize,
    ) -> Result<(), ClientError> {
        *done = 0;
        let r = self.region_of(&region)?;
        if buf.is_empty() {
            return Ok(());
        }
        let at = Self::check_access(&r, offset, buf.len(), Op::Write, false)?;
        Self::check_pieces(&r, offset, buf.len())?;
        while let Some(rest) = buf.get(*done..).filter(|b| !b.is_empty()) {
            let pos = at + *done as u64;
            let want = Self::piece(&r, offset + *done as u64, rest.len());
            let n = self.pwrite(&rest[..want], pos)?.min(want);
            if n == 0 || (n < want && !r.mmappable()) {
                return Err(ClientError::Short {
                    op: Op::Write,
                    offset: at,
                    len: buf.len(),
                    done: *done,
                });
            }
            *done += n;
        }
        Ok(())
    }

    /// The length of the next piece of a bulk access at region offset `offset`.
    fn piece(r: &RegionInfo, offset: u64, left: usize) -> usize {
        if r.mmappable() {
            left.min(MAX_CHUNK)
        } else {
            register_width(offset, left, r.access_widths).unwrap_or(left)
        }
    }

    /// Fails a register-like bulk access that cannot be split into accepted widths, before
    /// any piece of it reaches the device.
    fn check_pieces(r: &RegionInfo, offset: u64, len: usize) -> Result<(), ClientError> {
        if r.mmappable() {
            return Ok(());
        }
        let mut at = offset;
        let mut left = len;
        while left > 0 {
            let Some(w) = register_width(at, left, r.access_widths) else {
                return Err(ClientError::WidthNotAccepted {
                    region: r.index,
                    offset: at,
                    width: left.min(REGISTER_BULK_WIDTH),
                    widths: r.access_widths,
                });
            };
            at += w as u64;
            left -= w;
        }
        Ok(())
    }
}

/// The widest naturally aligned register access at region offset `offset` of at most
/// [`REGISTER_BULK_WIDTH`] and `left` bytes among `widths` (`WIDTH_*` bits); `None` if none.
fn register_width(offset: u64, left: usize, widths: u8) -> Option<usize> {
    [REGISTER_BULK_WIDTH, 2, 1].into_iter().find(|&w| {
        w <= left && offset.is_multiple_of(w as u64) && widths & (1u8 << w.trailing_zeros()) != 0
    })
}

impl DeviceFile {
    fn irq_of(&self, irq: &impl AsInterrupt) -> Result<IrqInfo, ClientError> {
        let index = irq.interrupt_index();
        self.interrupt(index)
            .ok_or(ClientError::NoSuchInterrupt(index))
    }

    /// File offset of the control block of `vector` of `irq`.
    fn vector_block(irq: &IrqInfo, vector: u32) -> Result<u64, ClientError> {
        irq.vector_offset(vector).ok_or(ClientError::NoSuchVector {
            interrupt: irq.index,
            vector,
            count: irq.count,
        })
    }

    /// Reads and resets the event counter of one vector (SPEC.md §6.3): the events since
    /// this open file last read it.
    pub fn interrupt_count(&self, irq: impl AsInterrupt, vector: u32) -> Result<u64, ClientError> {
        let irq = self.irq_of(&irq)?;
        let at = Self::vector_block(&irq, vector)?;
        let mut buf = [0u8; 8];
        self.pread_exact(&mut buf, at)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Whether the device has a reset word (a RESET sub-record, SPEC.md §4.20).
    pub fn can_reset(&self) -> bool {
        self.description().device().reset_offset().is_some()
    }

    /// Resets the device to its power-on state: writes 1 to its reset word (SPEC.md §4.20).
    /// Fails with [`ClientError::NoReset`] if the device has none.
    pub fn reset(&self) -> Result<(), ClientError> {
        let at = self
            .description()
            .device()
            .reset_offset()
            .ok_or(ClientError::NoReset)?;
        let one = 1u64.to_le_bytes();
        match self.pwrite(&one, at)? {
            8 => Ok(()),
            n => Err(ClientError::Io {
                op: Op::Write,
                offset: at,
                len: 8,
                source: io::Error::other(format!("short write of {n} bytes")),
            }),
        }
    }

    /// Masks one vector: its events then set its pending bit instead of counting.
    pub fn mask(&self, irq: impl AsInterrupt, vector: u32) -> Result<(), ClientError> {
        self.write_mask(&irq, vector, MASKED)
    }

    /// Unmasks one vector, delivering a pending event (and acknowledging an automasked one).
    pub fn unmask(&self, irq: impl AsInterrupt, vector: u32) -> Result<(), ClientError> {
        self.write_mask(&irq, vector, UNMASKED)
    }

    /// Whether one vector is masked.
    pub fn is_masked(&self, irq: impl AsInterrupt, vector: u32) -> Result<bool, ClientError> {
        let irq = self.irq_of(&irq)?;
        let at = Self::vector_block(&irq, vector)? + MASK_WORD;
        let mut buf = [0u8; 4];
        self.pread_exact(&mut buf, at)?;
        Ok(u32::from_le_bytes(buf) != UNMASKED)
    }

    fn write_mask(
        &self,
        irq: &impl AsInterrupt,
        vector: u32,
        value: u32,
    ) -> Result<(), ClientError> {
        let irq = self.irq_of(irq)?;
        let at = Self::vector_block(&irq, vector)? + MASK_WORD;
        if !irq.maskable() {
            return Err(ClientError::NotMaskable(irq.index));
        }
        self.pwrite_exact(&value.to_le_bytes(), at)
    }

    /// Waits until some vector of `irq` has events, and returns how many there were.
    ///
    /// Each round reads (and so resets) the counters of all the interrupt's vectors; if their
    /// sum is non-zero, it is returned. Otherwise the file is polled for `POLLPRI` for the
    /// time left. After `timeout` without events, the result is [`ClientError::TimedOut`];
    /// without a timeout the wait has no end.
    ///
    /// `POLLPRI` means *some* vector of *some* interrupt has events for this open file. When
    /// `poll` wakes but this interrupt has none (another interrupt's counters are pending),
    /// `poll` cannot block again, so the wait sleeps between rounds instead (1 to 20 ms,
    /// doubling). To wait for several interrupts efficiently, drain all of them, or open the
    /// device file once per waiter: counters are per open file.
    ///
    /// On a plain file (a description without a server) there are no events: the control
    /// window reads as end of file or as whatever bytes are there, `poll` never reports
    /// `POLLPRI`, and the wait simply times out.
    pub fn wait_interrupt(
        &self,
        irq: impl AsInterrupt,
        timeout: Option<Duration>,
    ) -> Result<u64, ClientError> {
        let irq = self.irq_of(&irq)?;
        // A deadline too far to represent is no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut sleep = IDLE_SLEEP_MIN;
        let mut woke = false;
        loop {
            let events = self.drain_counters(&irq)?;
            if events > 0 {
                return Ok(events);
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(ClientError::TimedOut),
                },
                None => None,
            };
            if woke {
                // `poll` reported readiness that was not ours: it would return at once again.
                std::thread::sleep(left.map_or(sleep, |l| l.min(sleep)));
                sleep = (sleep * 2).min(IDLE_SLEEP_MAX);
                woke = false;
                continue;
            }
            let revents = sys::poll(self.file.as_fd(), libc::POLLPRI, left).map_err(|source| {
                ClientError::Io {
                    op: Op::Poll,
                    offset: irq.control_offset,
                    len: 0,
                    source,
                }
            })?;
            woke = revents != 0;
        }
    }

    /// Reads and sums the counters of all vectors of `irq`; end of file counts as 0 events.
    fn drain_counters(&self, irq: &IrqInfo) -> Result<u64, ClientError> {
        let mut sum = 0u64;
        for v in 0..irq.count {
            let at = Self::vector_block(irq, v)?;
            let mut buf = [0u8; 8];
            match self.pread(&mut buf, at)? {
                0 => {}
                8 => sum = sum.saturating_add(u64::from_le_bytes(buf)),
                done => {
                    return Err(ClientError::Short {
                        op: Op::Read,
                        offset: at,
                        len: 8,
                        done,
                    });
                }
            }
        }
        Ok(sum)
    }
}

impl AsFd for DeviceFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for DeviceFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Errors for which opening read-only may still work.
fn is_access_denied(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ETXTBSY)
    )
}

/// A decimal number of ASCII digits only (no sign, no spaces).
fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_widths() {
        assert_eq!(register_width(0, 256, 0xf), Some(4));
        assert_eq!(register_width(2, 256, 0xf), Some(2));
        assert_eq!(register_width(3, 256, 0xf), Some(1));
        assert_eq!(register_width(4, 3, 0xf), Some(2));
        assert_eq!(register_width(4, 1, 0xf), Some(1));
        // A 32-bit-only region (PL031): 6 bytes at 0 cannot be split; 8 bytes can.
        assert_eq!(register_width(4, 2, 0x4), None);
        assert_eq!(register_width(4, 4, 0x4), Some(4));
    }

    #[test]
    fn decimal() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("17"), Some(17));
        assert_eq!(parse_decimal("+1"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("99999999999"), None);
    }
}
