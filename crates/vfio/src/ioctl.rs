//! Every raw VFIO system call devfd makes, each with its `// SAFETY:` argument. Callers pass
//! owned descriptors and properly sized, initialised buffers; nothing here interprets what the
//! kernel returns beyond the return code.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use vfio_bindings::bindings::vfio::{
    VFIO_BASE, VFIO_TYPE, vfio_device_info, vfio_group_status, vfio_iommu_type1_dma_map,
    vfio_iommu_type1_dma_unmap, vfio_irq_info,
};

/// `_IO(VFIO_TYPE, VFIO_BASE + n)`: VFIO encodes every ioctl without direction or size.
const fn vfio_io(n: u32) -> libc::c_ulong {
    ((VFIO_TYPE as libc::c_ulong) << 8) | (VFIO_BASE + n) as libc::c_ulong
}

const GET_API_VERSION: libc::c_ulong = vfio_io(0);
const CHECK_EXTENSION: libc::c_ulong = vfio_io(1);
const SET_IOMMU: libc::c_ulong = vfio_io(2);
const GROUP_GET_STATUS: libc::c_ulong = vfio_io(3);
const GROUP_SET_CONTAINER: libc::c_ulong = vfio_io(4);
const GROUP_GET_DEVICE_FD: libc::c_ulong = vfio_io(6);
const DEVICE_GET_INFO: libc::c_ulong = vfio_io(7);
const DEVICE_GET_REGION_INFO: libc::c_ulong = vfio_io(8);
const DEVICE_GET_IRQ_INFO: libc::c_ulong = vfio_io(9);
const DEVICE_SET_IRQS: libc::c_ulong = vfio_io(10);
const DEVICE_RESET: libc::c_ulong = vfio_io(11);
const IOMMU_GET_INFO: libc::c_ulong = vfio_io(12);
const IOMMU_MAP_DMA: libc::c_ulong = vfio_io(13);
const IOMMU_UNMAP_DMA: libc::c_ulong = vfio_io(14);

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `VFIO_GET_API_VERSION` on a container.
pub(crate) fn get_api_version(container: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: this ioctl takes no argument and only reads the descriptor.
    check(unsafe { libc::ioctl(container.as_raw_fd(), GET_API_VERSION) })
}

/// `VFIO_CHECK_EXTENSION`: whether the container supports `extension` (an IOMMU type).
pub(crate) fn check_extension(container: BorrowedFd<'_>, extension: u32) -> io::Result<bool> {
    // SAFETY: the argument is passed by value; the kernel reads no memory of ours.
    check(unsafe {
        libc::ioctl(
            container.as_raw_fd(),
            CHECK_EXTENSION,
            extension as libc::c_ulong,
        )
    })
    .map(|r| r > 0)
}

/// `VFIO_SET_IOMMU` on a container with a group attached.
pub(crate) fn set_iommu(container: BorrowedFd<'_>, iommu: u32) -> io::Result<()> {
    // SAFETY: the argument is passed by value.
    check(unsafe { libc::ioctl(container.as_raw_fd(), SET_IOMMU, iommu as libc::c_ulong) })
        .map(drop)
}

/// `VFIO_GROUP_GET_STATUS`: the group's flags.
pub(crate) fn group_get_status(group: BorrowedFd<'_>) -> io::Result<u32> {
    let mut status = vfio_group_status {
        argsz: size_of::<vfio_group_status>() as u32,
        flags: 0,
    };
    // SAFETY: `status` is a valid, writable vfio_group_status whose argsz says its size.
    check(unsafe { libc::ioctl(group.as_raw_fd(), GROUP_GET_STATUS, &mut status) })?;
    Ok(status.flags)
}

/// `VFIO_GROUP_SET_CONTAINER`.
pub(crate) fn group_set_container(
    group: BorrowedFd<'_>,
    container: BorrowedFd<'_>,
) -> io::Result<()> {
    let fd: libc::c_int = container.as_raw_fd();
    // SAFETY: the kernel reads one int (the container fd) from a live local.
    check(unsafe { libc::ioctl(group.as_raw_fd(), GROUP_SET_CONTAINER, &fd) }).map(drop)
}

/// `VFIO_GROUP_GET_DEVICE_FD` for the device named `name` (its PCI address).
pub(crate) fn group_get_device_fd(
    group: BorrowedFd<'_>,
    name: &std::ffi::CStr,
) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call; the kernel only reads it.
    let fd = check(unsafe { libc::ioctl(group.as_raw_fd(), GROUP_GET_DEVICE_FD, name.as_ptr()) })?;
    // SAFETY: a successful call returns a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `VFIO_DEVICE_GET_INFO`.
pub(crate) fn device_get_info(device: BorrowedFd<'_>) -> io::Result<vfio_device_info> {
    let mut info = vfio_device_info {
        argsz: size_of::<vfio_device_info>() as u32,
        flags: 0,
        num_regions: 0,
        num_irqs: 0,
        cap_offset: 0,
        pad: 0,
    };
    // SAFETY: `info` is a valid, writable vfio_device_info whose argsz says its size.
    check(unsafe { libc::ioctl(device.as_raw_fd(), DEVICE_GET_INFO, &mut info) })?;
    Ok(info)
}

/// `VFIO_DEVICE_GET_REGION_INFO` into `buf`, whose first bytes are a vfio_region_info with
/// `argsz` = `buf.len()` and `index` set. The kernel may raise `argsz` above the buffer's
/// length to ask for room for capabilities; the caller then retries with a larger buffer.
pub(crate) fn device_get_region_info(device: BorrowedFd<'_>, buf: &mut [u64]) -> io::Result<()> {
    if size_of_val(buf) < size_of::<vfio_bindings::bindings::vfio::vfio_region_info>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `buf` is 8-byte aligned, writable and at least as large as vfio_region_info;
    // its argsz (set by the caller to its length) bounds what the kernel writes.
    check(unsafe { libc::ioctl(device.as_raw_fd(), DEVICE_GET_REGION_INFO, buf.as_mut_ptr()) })
        .map(drop)
}

/// `VFIO_DEVICE_GET_IRQ_INFO` for irq index `index`.
pub(crate) fn device_get_irq_info(device: BorrowedFd<'_>, index: u32) -> io::Result<vfio_irq_info> {
    let mut info = vfio_irq_info {
        argsz: size_of::<vfio_irq_info>() as u32,
        flags: 0,
        index,
        count: 0,
    };
    // SAFETY: `info` is a valid, writable vfio_irq_info whose argsz says its size.
    check(unsafe { libc::ioctl(device.as_raw_fd(), DEVICE_GET_IRQ_INFO, &mut info) })?;
    Ok(info)
}

/// `VFIO_DEVICE_SET_IRQS` with `buf`: a vfio_irq_set header (argsz = `buf.len()`) followed
/// by its data (eventfds as `i32`s, bools as bytes, or nothing).
pub(crate) fn device_set_irqs(device: BorrowedFd<'_>, buf: &[u32]) -> io::Result<()> {
    if size_of_val(buf) < size_of::<vfio_bindings::bindings::vfio::vfio_irq_set>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `buf` is 4-byte aligned and holds a vfio_irq_set whose argsz is its length;
    // the kernel only reads it.
    check(unsafe { libc::ioctl(device.as_raw_fd(), DEVICE_SET_IRQS, buf.as_ptr()) }).map(drop)
}

/// `VFIO_DEVICE_RESET`.
pub(crate) fn device_reset(device: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: this ioctl takes no argument.
    check(unsafe { libc::ioctl(device.as_raw_fd(), DEVICE_RESET) }).map(drop)
}

/// `VFIO_IOMMU_GET_INFO` into `buf` (a vfio_iommu_type1_info with `argsz` = `buf.len()`,
/// then room for capabilities); as [`device_get_region_info`], argsz may come back larger.
pub(crate) fn iommu_get_info(container: BorrowedFd<'_>, buf: &mut [u64]) -> io::Result<()> {
    if size_of_val(buf) < size_of::<vfio_bindings::bindings::vfio::vfio_iommu_type1_info>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `buf` is aligned, writable and at least a vfio_iommu_type1_info; its argsz
    // bounds what the kernel writes.
    check(unsafe { libc::ioctl(container.as_raw_fd(), IOMMU_GET_INFO, buf.as_mut_ptr()) }).map(drop)
}

/// `VFIO_IOMMU_MAP_DMA`: maps `size` bytes of this process at `vaddr` to `iova`.
///
/// The caller keeps `[vaddr, vaddr + size)` mapped until [`iommu_unmap_dma`]: the kernel pins
/// those pages and the device may write them at any time.
pub(crate) fn iommu_map_dma(
    container: BorrowedFd<'_>,
    vaddr: u64,
    iova: u64,
    size: u64,
    flags: u32,
) -> io::Result<()> {
    let map = vfio_iommu_type1_dma_map {
        argsz: size_of::<vfio_iommu_type1_dma_map>() as u32,
        flags,
        vaddr,
        iova,
        size,
    };
    // SAFETY: `map` is a valid vfio_iommu_type1_dma_map the kernel only reads; the memory it
    // names is the caller's live mapping (see above).
    check(unsafe { libc::ioctl(container.as_raw_fd(), IOMMU_MAP_DMA, &map) }).map(drop)
}

/// `VFIO_IOMMU_UNMAP_DMA` of `[iova, iova + size)`.
pub(crate) fn iommu_unmap_dma(container: BorrowedFd<'_>, iova: u64, size: u64) -> io::Result<()> {
    let mut unmap = vfio_iommu_type1_dma_unmap {
        argsz: size_of::<vfio_iommu_type1_dma_unmap>() as u32,
        flags: 0,
        iova,
        size,
        data: Default::default(),
    };
    // SAFETY: `unmap` is a valid, writable vfio_iommu_type1_dma_unmap (the kernel writes back
    // the size unmapped).
    check(unsafe { libc::ioctl(container.as_raw_fd(), IOMMU_UNMAP_DMA, &mut unmap) }).map(drop)
}

/// A new non-blocking, close-on-exec eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd's counter (a non-blocking eventfd never blocks on it).
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live local.
    unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), 8) };
}

/// Reads and clears an eventfd's counter; 0 if it was not signalled.
pub(crate) fn eventfd_take(fd: BorrowedFd<'_>) -> u64 {
    let mut value = 0u64;
    // SAFETY: reads 8 bytes into a live local u64.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut value).cast(), 8) };
    if n == 8 { value } else { 0 }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes; the indices of the ready ones.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<usize>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfds.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Vec::new())
        } else {
            Err(e)
        };
    }
    Ok(pfds
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents & libc::POLLIN != 0)
        .map(|(i, _)| i)
        .collect())
}
