//! A VFIO PCI device as a [`devfd_device::Device`]: its description built from what the
//! kernel reports, accesses at each region's VFIO offset, interrupts from eventfds, reset.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use devfd_device::{Device, DeviceError, Interrupts};
use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::*;
use devfd_format::{Bus, Location, PciId};
use vfio_bindings::bindings::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_IRQ_INFO_AUTOMASKED,
    VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_UNMASK,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
};

use crate::caps::{REGION_INFO_LEN, RegionInfo, parse_region_info};
use crate::dma::DmaWindow;
use crate::eventfds::EventfdInterrupts;
use crate::open::Container;
use crate::{VfioError, ioctl};

/// VFIO's PCI region and irq indices.
pub const CONFIG_REGION: u32 = 7;
const ROM_REGION: u32 = 6;
const INTX: u32 = 0;
const MSI: u32 = 1;
const MSIX: u32 = 2;
const ERR: u32 = 3;
const REQ: u32 = 4;

/// First file offset after the description: descriptions of VFIO devices are far smaller.
const REGIONS_START: u64 = 0x10000;

/// One irq index as the kernel describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelIrq {
    /// VFIO irq index.
    pub index: u32,
    /// `VFIO_IRQ_INFO_*`.
    pub flags: u32,
    /// Vectors (0: absent).
    pub count: u32,
}

/// Everything the kernel reported about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    /// PCI address.
    pub bdf: String,
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// `num_regions` of DEVICE_GET_INFO.
    pub num_regions: u32,
    /// `num_irqs` of DEVICE_GET_INFO.
    pub num_irqs: u32,
    /// Every region index the kernel answered (size 0 included).
    pub regions: Vec<RegionInfo>,
    /// Region indices answered `EINVAL` (not present).
    pub absent_regions: Vec<u32>,
    /// Every irq index the kernel answered (count 0 included).
    pub irqs: Vec<KernelIrq>,
}

/// Asks the kernel about a device: DEVICE_GET_INFO, every GET_REGION_INFO (with the argsz
/// retry and the whole capability chain) and every GET_IRQ_INFO. `EINVAL` for an index means
/// the index is absent.
pub fn query(device: BorrowedFd<'_>, bdf: &str) -> Result<KernelInfo, VfioError> {
    let info = ioctl::device_get_info(device).map_err(|source| VfioError::Ioctl {
        call: "VFIO_DEVICE_GET_INFO",
        what: bdf.into(),
        source,
    })?;
    if info.flags & VFIO_DEVICE_FLAGS_PCI == 0 {
        return Err(VfioError::NotPci(bdf.into()));
    }
    let mut regions = Vec::new();
    let mut absent_regions = Vec::new();
    for index in 0..info.num_regions.min(64) {
        match region_info(device, index)? {
            Some(r) => regions.push(r),
            None => absent_regions.push(index),
        }
    }
    let mut irqs = Vec::new();
    for index in 0..info.num_irqs.min(64) {
        match ioctl::device_get_irq_info(device, index) {
            Ok(i) => irqs.push(KernelIrq {
                index,
                flags: i.flags,
                count: i.count,
            }),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(source) => {
                return Err(VfioError::Ioctl {
                    call: "VFIO_DEVICE_GET_IRQ_INFO",
                    what: format!("irq {index}"),
                    source,
                });
            }
        }
    }
    Ok(KernelInfo {
        bdf: bdf.into(),
        flags: info.flags,
        num_regions: info.num_regions,
        num_irqs: info.num_irqs,
        regions,
        absent_regions,
        irqs,
    })
}

/// One region's info; `None` if the kernel says the index is absent.
fn region_info(device: BorrowedFd<'_>, index: u32) -> Result<Option<RegionInfo>, VfioError> {
    let mut words = REGION_INFO_LEN / 8;
    // The kernel raises argsz when the capabilities do not fit: grow and ask again.
    for _ in 0..4 {
        let mut buf = vec![0u64; words];
        let argsz = (words * 8) as u32;
        buf[0] = u64::from(argsz);
        buf[1] = u64::from(index);
        match ioctl::device_get_region_info(device, &mut buf) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
            Err(source) => {
                return Err(VfioError::Ioctl {
                    call: "VFIO_DEVICE_GET_REGION_INFO",
                    what: format!("region {index}"),
                    source,
                });
            }
        }
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
        let wanted = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if wanted > bytes.len() {
            words = wanted.div_ceil(8).min(1 << 16);
            continue;
        }
        return parse_region_info(&bytes)
            .map(Some)
            .map_err(|source| VfioError::RegionInfo { index, source });
    }
    Err(VfioError::RegionInfo {
        index,
        source: crate::caps::CapError::TooMany,
    })
}

/// Where a region of the device file goes in the VFIO device.
#[derive(Debug, Clone, Copy)]
pub struct Mapped {
    /// VFIO region index (= devfd region index).
    pub index: u32,
    /// The region's offset in the VFIO device fd (`offset` of its region info).
    pub vfio_offset: u64,
    /// Its size.
    pub size: u64,
}

/// Which interrupt mode the kernel has enabled (VFIO allows one of INTx, MSI, MSI-X).
const MODE_NONE: u8 = 0;
const MODE_INTX: u8 = 1;
const MODE_MSI: u8 = 2;
const MODE_MSIX: u8 = 3;

/// A VFIO PCI device served by devfd.
pub struct VfioDevice {
    info: KernelInfo,
    file: File,
    description: Vec<u8>,
    regions: Vec<Mapped>,
    irqs: EventfdInterrupts,
    mode: AtomicU8,
    /// The enable bits the driver last wrote: bit 0 MSI, bit 1 MSI-X.
    driver_msi: AtomicU8,
    /// Serializes interrupt mode changes and config writes that cause them.
    mode_lock: Mutex<()>,
    msi_cap: Option<u64>,
    msix_cap: Option<u64>,
    dma: Option<DmaWindow>,
    _container: Arc<Mutex<Container>>,
}

impl std::fmt::Debug for VfioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioDevice")
            .field("bdf", &self.info.bdf)
            .finish_non_exhaustive()
    }
}

/// Reads the function's configuration space (up to 256 bytes) through the config region.
fn read_config(file: &File, info: &KernelInfo) -> Result<Vec<u8>, VfioError> {
    let config = info
        .regions
        .iter()
        .find(|r| r.index == CONFIG_REGION)
        .ok_or_else(|| VfioError::NotPci(info.bdf.clone()))?;
    let mut buf = vec![0u8; config.size.min(256) as usize];
    file.read_exact_at(&mut buf, config.offset)
        .map_err(|source| VfioError::Config {
            bdf: info.bdf.clone(),
            source,
        })?;
    Ok(buf)
}

/// The offset of capability `id` in a type-0 configuration space, walking at most 48 links.
pub fn find_capability(config: &[u8], id: u8) -> Option<u64> {
    if config.get(6).is_none_or(|s| s & 0x10 == 0) {
        return None;
    }
    let mut at = *config.get(0x34)? & 0xfc;
    for _ in 0..48 {
        if at < 0x40 {
            return None;
        }
        let cap = *config.get(usize::from(at))?;
        if cap == id {
            return Some(u64::from(at));
        }
        at = *config.get(usize::from(at) + 1)? & 0xfc;
    }
    None
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The description of a VFIO device reported as `info` (by the kernel, or by a vfio-user
/// server), with `config` its configuration space, and `dma` a DMA window's region (placed
/// after the device's regions; its offset is set here); also where each region goes.
/// Regions listed in `mappable` are memory the presentation can map (REGION_MMAP: a
/// vfio-user server's fd for the whole region); the others are trapped.
pub fn describe(
    info: &KernelInfo,
    config: &[u8],
    dma: Option<RegionDesc>,
    mappable: &[u32],
) -> Result<(Vec<u8>, Vec<Mapped>), VfioError> {
    let mut d = DeviceDesc::new(Bus::Pci);
    // A short config space (it should be 256 bytes) reads as zeroes, never out of bounds.
    let u16_at = |at: usize| {
        config
            .get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    };
    d.pci_id = Some(PciId {
        vendor: u16_at(0),
        device: u16_at(2),
        subsystem_vendor: u16_at(0x2c),
        subsystem_device: u16_at(0x2e),
        class: u32_le(config, 8) >> 8,
        revision: config.get(8).copied().unwrap_or(0),
    });
    d.label = Some(format!("vfio {}", info.bdf));
    let mut cursor = REGIONS_START;
    let mut mapped = Vec::new();
    for r in info.regions.iter().filter(|r| r.size > 0) {
        let (location, label) = match r.index {
            bar @ 0..=5 => {
                let reg = u32_le(config, 0x10 + 4 * bar as usize);
                let flags = if reg & 1 != 0 {
                    BAR_IO
                } else {
                    let mut f = 0;
                    if (reg >> 1) & 3 == 2 {
                        f |= BAR_MEM64;
                    }
                    if reg & 8 != 0 {
                        f |= BAR_PREFETCH;
                    }
                    f
                };
                (
                    Location::PciBar {
                        bar: bar as u8,
                        flags,
                    },
                    format!("bar{bar}"),
                )
            }
            ROM_REGION => (Location::PciRom, "rom".into()),
            CONFIG_REGION => (Location::PciConfig, "config".into()),
            8 => (Location::None, "vga".into()),
            n => (Location::None, format!("region {n}")),
        };
        let mut flags = 0;
        if r.flags & VFIO_REGION_INFO_FLAG_READ != 0 {
            flags |= REGION_READ;
        }
        if r.flags & VFIO_REGION_INFO_FLAG_WRITE != 0 {
            flags |= REGION_WRITE;
        }
        if mappable.contains(&r.index) {
            flags |= REGION_MMAP;
        }
        let offset = cursor.next_multiple_of(PAGE_SIZE);
        cursor = offset.saturating_add(r.size);
        // Otherwise trapped: a kernel VFIO device fd cannot back a FUSE passthrough, so its
        // mappable areas are reached through reads and writes here.
        d.regions.push(RegionDesc {
            index: r.index,
            offset,
            size: r.size,
            flags,
            location,
            dt: None,
            label: Some(label),
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        mapped.push(Mapped {
            index: r.index,
            vfio_offset: r.offset,
            size: r.size,
        });
    }
    if let Some(mut w) = dma {
        w.offset = cursor.next_multiple_of(PAGE_SIZE);
        cursor = w.offset.saturating_add(w.size);
        d.regions.push(w);
    }
    let mut control = cursor.next_multiple_of(PAGE_SIZE);
    for irq in info.irqs.iter().filter(|i| i.count > 0) {
        let (kind, mut flags, label) = match irq.index {
            INTX => (IRQ_KIND_INTX, IRQ_LEVEL | IRQ_MASKABLE, "intx"),
            MSI => (IRQ_KIND_MSI, IRQ_MASKABLE, "msi"),
            MSIX => (IRQ_KIND_MSIX, IRQ_MASKABLE, "msix"),
            ERR => (IRQ_KIND_ERROR, IRQ_MASKABLE, "err"),
            REQ => (IRQ_KIND_REQUEST, IRQ_MASKABLE, "req"),
            _ => continue,
        };
        if irq.index == INTX && irq.flags & VFIO_IRQ_INFO_AUTOMASKED != 0 {
            flags |= IRQ_AUTOMASKED;
        }
        let count = match kind {
            IRQ_KIND_INTX => 1,
            IRQ_KIND_MSI => irq.count.min(32),
            _ => irq.count.min(MAX_VECTORS),
        };
        d.interrupts.push(InterruptDesc {
            index: irq.index,
            count,
            kind,
            flags,
            control_offset: control,
            dt: None,
            label: Some(label.into()),
        });
        control = control.saturating_add(IRQ_CONTROL_STRIDE * u64::from(count));
    }
    // The device file offers a reset only where the kernel can reset the function.
    if info.flags & VFIO_DEVICE_FLAGS_RESET != 0 {
        d.reset = Some(control.next_multiple_of(PAGE_SIZE));
    }
    Ok((d.build()?, mapped))
}

/// Registers `eventfd` as the trigger of INTx of a VFIO device opened without devfd (a
/// baseline for measurements).
pub fn raw_trigger_intx(device: BorrowedFd<'_>, eventfd: BorrowedFd<'_>) -> std::io::Result<()> {
    set_irqs(
        device,
        INTX,
        VFIO_IRQ_SET_ACTION_TRIGGER,
        0,
        1,
        Some(&[eventfd.as_raw_fd()]),
    )
}

/// Unmasks (acknowledges) INTx of a VFIO device opened without devfd.
pub fn raw_unmask_intx(device: BorrowedFd<'_>) -> std::io::Result<()> {
    set_irqs(device, INTX, VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, None)
}

/// `VFIO_DEVICE_SET_IRQS`: `action` with eventfds (`fds`), or with no data.
fn set_irqs(
    device: BorrowedFd<'_>,
    index: u32,
    action: u32,
    start: u32,
    count: u32,
    fds: Option<&[i32]>,
) -> std::io::Result<()> {
    let data = if fds.is_some() {
        VFIO_IRQ_SET_DATA_EVENTFD
    } else {
        VFIO_IRQ_SET_DATA_NONE
    };
    let mut buf: Vec<u32> = vec![0, data | action, index, start, count];
    if let Some(fds) = fds {
        buf.extend(fds.iter().map(|&fd| fd as u32));
    }
    buf[0] = (buf.len() * 4) as u32;
    ioctl::device_set_irqs(device, &buf)
}

impl VfioDevice {
    /// Opens the function at `bdf` (bound to vfio-pci) in `container`, describes it, registers
    /// its interrupts' eventfds and, with `dma_size`, gives it a DMA window of that many bytes.
    pub fn open(
        container: &Arc<Mutex<Container>>,
        bdf: &str,
        dma_size: Option<u64>,
    ) -> Result<Self, VfioError> {
        let fd = container
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open_device(bdf)?;
        let file = File::from(fd);
        let info = query(file.as_fd(), bdf)?;
        let config = read_config(&file, &info)?;
        let dma = match dma_size {
            Some(size) => Some(DmaWindow::new(container, size)?),
            None => None,
        };
        let (description, regions) =
            describe(&info, &config, dma.as_ref().map(|w| w.region_desc(0)), &[])?;
        let parsed = devfd_format::parse(&description)?;
        let irqs = EventfdInterrupts::new(&parsed, format!("vfio-irq-{bdf}"))
            .map_err(VfioError::Thread)?;
        let device = VfioDevice {
            msi_cap: find_capability(&config, 0x05),
            msix_cap: find_capability(&config, 0x11),
            info,
            file,
            description,
            regions,
            irqs,
            mode: AtomicU8::new(MODE_NONE),
            driver_msi: AtomicU8::new(0),
            mode_lock: Mutex::new(()),
            dma,
            _container: container.clone(),
        };
        // ERR and REQ are independent of the mode; INTx is on until the driver enables MSI.
        for index in [ERR, REQ] {
            device.trigger(index);
        }
        device.switch_mode(MODE_INTX);
        Ok(device)
    }

    /// The VFIO device descriptor (for measurements against the device file).
    pub fn device_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// What the kernel reported.
    pub fn kernel_info(&self) -> &KernelInfo {
        &self.info
    }

    /// The DMA window, if the device has one.
    pub fn dma(&self) -> Option<&DmaWindow> {
        self.dma.as_ref()
    }

    fn fds_of(&self, index: u32) -> Vec<i32> {
        self.irqs.fds_of(index)
    }

    /// Registers the eventfds of irq `index` (all its vectors); false if it has none or the
    /// kernel refused.
    fn trigger(&self, index: u32) -> bool {
        let fds = self.fds_of(index);
        if fds.is_empty() {
            return false;
        }
        let count = fds.len() as u32;
        match set_irqs(
            self.file.as_fd(),
            index,
            VFIO_IRQ_SET_ACTION_TRIGGER,
            0,
            count,
            Some(&fds),
        ) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("{}: enabling irq {index}: {e}", self.info.bdf);
                false
            }
        }
    }

    fn disable(&self, index: u32) {
        if !self.fds_of(index).is_empty() {
            let _ = set_irqs(
                self.file.as_fd(),
                index,
                VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
                0,
                None,
            );
        }
    }

    /// Makes `mode` the kernel's interrupt mode: VFIO enables one of INTx, MSI and MSI-X.
    fn switch_mode(&self, mode: u8) {
        let old = self.mode.load(Ordering::Acquire);
        if old == mode {
            return;
        }
        let index_of = |m| match m {
            MODE_INTX => Some(INTX),
            MODE_MSI => Some(MSI),
            MODE_MSIX => Some(MSIX),
            _ => None,
        };
        if let Some(i) = index_of(old) {
            self.disable(i);
        }
        let on = index_of(mode).is_some_and(|i| self.trigger(i));
        self.mode
            .store(if on { mode } else { MODE_NONE }, Ordering::Release);
    }

    /// After a config write: follows the driver's MSI / MSI-X enable bits, as a VMM does.
    /// vfio-pci virtualizes those bits (a write does not enable MSI, SET_IRQS does, and reads
    /// show what SET_IRQS did), so they are taken from the bytes the driver wrote.
    fn follow_config(&self, offset: u64, data: &[u8]) {
        let written = |at: u64| -> Option<u8> {
            let i = usize::try_from(at.checked_sub(offset)?).ok()?;
            data.get(i).copied()
        };
        let mut msi = self.driver_msi.load(Ordering::Acquire);
        if let Some(b) = self.msi_cap.and_then(|c| written(c + 2)) {
            msi = (msi & !1) | (b & 1);
        }
        if let Some(b) = self.msix_cap.and_then(|c| written(c + 3)) {
            msi = (msi & !2) | ((b >> 6) & 2);
        }
        self.driver_msi.store(msi, Ordering::Release);
        let mode = if msi & 2 != 0 {
            MODE_MSIX
        } else if msi & 1 != 0 {
            MODE_MSI
        } else {
            MODE_INTX
        };
        self.switch_mode(mode);
    }

    fn mapped(&self, region: u32, offset: u64, len: usize) -> Result<u64, DeviceError> {
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
        r.vfio_offset
            .checked_add(offset)
            .ok_or(DeviceError::Unsupported)
    }
}

impl Device for VfioDevice {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        if let Some(w) = self.dma.as_ref().filter(|w| w.index() == region) {
            return w.read(offset, data);
        }
        let at = self.mapped(region, offset, data.len())?;
        self.file.read_exact_at(data, at).map_err(|e| {
            log::debug!("{}: read region {region} +{offset:#x}: {e}", self.info.bdf);
            DeviceError::Failed
        })
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        if let Some(w) = self.dma.as_ref().filter(|w| w.index() == region) {
            return w.write(offset, data);
        }
        let at = self.mapped(region, offset, data.len())?;
        let _guard = (region == CONFIG_REGION).then(|| {
            self.mode_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        });
        self.file.write_all_at(data, at).map_err(|e| {
            log::debug!("{}: write region {region} +{offset:#x}: {e}", self.info.bdf);
            DeviceError::Failed
        })?;
        if region == CONFIG_REGION {
            self.follow_config(offset, data);
        }
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        self.irqs.interrupts()
    }

    fn set_irq_mask(&self, index: u32, vector: u32, masked: bool) -> Option<()> {
        // INTx is masked by the kernel (automasked on delivery): unmasking acknowledges it
        // there too, or it would never fire again. Other vectors are masked here.
        if index == INTX && self.mode.load(Ordering::Acquire) == MODE_INTX {
            let action = if masked {
                VFIO_IRQ_SET_ACTION_MASK
            } else {
                VFIO_IRQ_SET_ACTION_UNMASK
            };
            if let Err(e) = set_irqs(self.file.as_fd(), INTX, action, 0, 1, None) {
                log::warn!("{}: INTx mask {masked}: {e}", self.info.bdf);
            }
        }
        self.irqs.interrupts().set_masked(index, vector, masked)
    }

    fn reset(&self) {
        let _guard = self
            .mode_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.info.flags & VFIO_DEVICE_FLAGS_RESET != 0
            && let Err(e) = ioctl::device_reset(self.file.as_fd())
        {
            log::warn!("{}: VFIO_DEVICE_RESET: {e}", self.info.bdf);
        }
        // A reset function has MSI and MSI-X disabled: back to INTx, all vectors idle.
        self.driver_msi.store(0, Ordering::Release);
        self.switch_mode(MODE_INTX);
        self.irqs.interrupts().reset();
    }

    fn shared_memory(&self, region: u32) -> Option<BorrowedFd<'_>> {
        self.dma
            .as_ref()
            .filter(|w| w.index() == region)
            .map(DmaWindow::memory_fd)
    }

    fn kind(&self) -> &str {
        "vfio"
    }
}

impl Drop for VfioDevice {
    fn drop(&mut self) {
        for index in [INTX, MSI, MSIX, ERR, REQ] {
            self.disable(index);
        }
        // The interrupt thread stops when `irqs` is dropped, after this.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::RegionInfo;

    /// What the kernel reports for QEMU's edu (TESTBEDS.md §3).
    fn edu_info() -> KernelInfo {
        let region = |index, size, offset, flags| RegionInfo {
            index,
            flags,
            size,
            offset,
            caps: Vec::new(),
        };
        let mut regions = vec![region(0, 1 << 20, 0, 7)];
        for i in 1..=6 {
            regions.push(region(i, 0, u64::from(i) << 40, 0));
        }
        regions.push(region(7, 256, 7 << 40, 3));
        KernelInfo {
            bdf: "0000:00:03.0".into(),
            flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
            num_regions: 9,
            num_irqs: 5,
            regions,
            absent_regions: vec![8],
            irqs: vec![
                KernelIrq {
                    index: 0,
                    flags: 7,
                    count: 1,
                },
                KernelIrq {
                    index: 1,
                    flags: 9,
                    count: 1,
                },
                KernelIrq {
                    index: 2,
                    flags: 9,
                    count: 0,
                },
                KernelIrq {
                    index: 4,
                    flags: 9,
                    count: 1,
                },
            ],
        }
    }

    fn edu_config() -> Vec<u8> {
        let mut c = vec![0u8; 256];
        c[0..4].copy_from_slice(&0x11e8_1234u32.to_le_bytes());
        c[6] = 0x10;
        c[8] = 0x10;
        c[9..12].copy_from_slice(&[0x00, 0xff, 0x00]);
        c[0x10..0x14].copy_from_slice(&0xfea0_0000u32.to_le_bytes());
        c[0x34] = 0x40;
        c[0x40] = 0x05;
        c
    }

    #[test]
    fn edu_is_described_as_the_kernel_reports_it() {
        let (desc, mapped) = describe(&edu_info(), &edu_config(), None, &[]).unwrap();
        let d = devfd_format::parse(&desc).unwrap();
        let id = d.pci_id().unwrap();
        assert_eq!((id.vendor, id.device, id.class), (0x1234, 0x11e8, 0x00ff00));
        let regions: Vec<_> = d.regions().map(|r| (r.index, r.size, r.flags)).collect();
        assert_eq!(
            regions,
            [
                (0, 1 << 20, REGION_READ | REGION_WRITE),
                (7, 256, REGION_READ | REGION_WRITE)
            ]
        );
        assert_eq!(mapped[1].vfio_offset, 7 << 40);
        let irqs: Vec<_> = d
            .interrupts()
            .map(|i| (i.index, i.kind, i.count, i.flags))
            .collect();
        assert_eq!(
            irqs,
            [
                (
                    0,
                    IRQ_KIND_INTX,
                    1,
                    IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED
                ),
                (1, IRQ_KIND_MSI, 1, IRQ_MASKABLE),
                (4, IRQ_KIND_REQUEST, 1, IRQ_MASKABLE),
            ]
        );
        assert_eq!(find_capability(&edu_config(), 0x05), Some(0x40));
        // The kernel says it can reset this one: the device file has a reset word.
        assert!(d.device().reset_offset().is_some());
        let mut no_reset = edu_info();
        no_reset.flags = VFIO_DEVICE_FLAGS_PCI;
        let (desc, _) = describe(&no_reset, &edu_config(), None, &[]).unwrap();
        assert_eq!(
            devfd_format::parse(&desc).unwrap().device().reset_offset(),
            None
        );
        assert_eq!(find_capability(&edu_config(), 0x11), None);
    }

    #[test]
    fn a_capability_list_that_loops_ends() {
        let mut c = edu_config();
        c[0x41] = 0x40;
        assert_eq!(find_capability(&c, 0x11), None);
        c[0x34] = 0x10;
        assert_eq!(find_capability(&c, 0x05), None);
    }
}
