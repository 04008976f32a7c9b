//! libdevfd: the C ABI of devfd. `include/devfd.h` is generated from this file by cbindgen.
//!
//! A C user-space driver parses or opens a device, walks the flat resource table (SPEC.md
//! appendix A) as an array of fixed-size [`devfd_resource`] entries, finds regions by PCI BAR,
//! config space or device-tree path, and accesses them. Every entry point validates its
//! pointers, catches panics (none cross the boundary) and returns 0 or a negative errno.
#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Duration;

use devfd_client::{ClientError, DeviceFile, Mapping};
use devfd_format::wire::FLAT_LOC_DMA;
use devfd_format::{Description, FlatEntry, parse};

/// Version of this libdevfd (and of devfd.h): major.
pub const DEVFD_VERSION_MAJOR: u32 = 0;
/// Version: minor.
pub const DEVFD_VERSION_MINOR: u32 = 3;
/// Version: patch.
pub const DEVFD_VERSION_PATCH: u32 = 0;
/// The version as one number, `major << 16 | minor << 8 | patch`, usable in `#if`; compare
/// it with devfd_version() to detect a header/library mismatch.
pub const DEVFD_VERSION: u32 = 0x000300;

/// Success.
pub const DEVFD_OK: c_int = 0;
/// Bus code of a PCI device (devfd_desc_bus()): `'P'`.
pub const DEVFD_BUS_PCI: c_int = 80;
/// Bus code of a device-tree platform device: `'T'`.
pub const DEVFD_BUS_PLATFORM: c_int = 84;
/// `devfd_resource.kind`: a region.
pub const DEVFD_RESOURCE_REGION: u32 = 1;
/// `devfd_resource.kind`: an interrupt.
pub const DEVFD_RESOURCE_INTERRUPT: u32 = 2;
/// Region flag: readable.
pub const DEVFD_REGION_READ: u32 = 1;
/// Region flag: writable.
pub const DEVFD_REGION_WRITE: u32 = 2;
/// Region flag: mmap-capable (memory-like: any length and alignment).
pub const DEVFD_REGION_MMAP: u32 = 4;
/// Interrupt flag: level-triggered.
pub const DEVFD_IRQ_LEVEL: u32 = 1;
/// Interrupt flag: maskable.
pub const DEVFD_IRQ_MASKABLE: u32 = 2;
/// Interrupt flag: masks itself when it fires, until unmasked (acknowledged).
pub const DEVFD_IRQ_AUTOMASKED: u32 = 4;
/// `devfd_resource.irq_kind`: PCI INTx.
pub const DEVFD_IRQ_KIND_INTX: u32 = 1;
/// `devfd_resource.irq_kind`: PCI MSI.
pub const DEVFD_IRQ_KIND_MSI: u32 = 2;
/// `devfd_resource.irq_kind`: PCI MSI-X.
pub const DEVFD_IRQ_KIND_MSIX: u32 = 3;
/// `devfd_resource.irq_kind`: a wired platform interrupt (device-tree `interrupts`).
pub const DEVFD_IRQ_KIND_WIRED: u32 = 4;
/// `devfd_resource.irq_kind`: error reporting (e.g. PCI AER).
pub const DEVFD_IRQ_KIND_ERROR: u32 = 5;
/// `devfd_resource.irq_kind`: device request (release the device).
pub const DEVFD_IRQ_KIND_REQUEST: u32 = 6;
/// devfd_irq_status() bit: an event arrived while masked and is held.
pub const DEVFD_IRQ_STATUS_PENDING: u32 = 1;
/// devfd_irq_status() bit: an automasked vector fired and awaits devfd_irq_unmask().
pub const DEVFD_IRQ_STATUS_UNACKED: u32 = 2;
/// devfd_irq_status() bit: the level-triggered source is asserted.
pub const DEVFD_IRQ_STATUS_ASSERTED: u32 = 4;
/// `devfd_resource.location`: nothing bus-specific.
pub const DEVFD_LOC_NONE: u32 = 0;
/// `devfd_resource.location`: PCI BAR `location_index`.
pub const DEVFD_LOC_PCI_BAR: u32 = 1;
/// `devfd_resource.location`: PCI configuration space.
pub const DEVFD_LOC_PCI_CONFIG: u32 = 2;
/// `devfd_resource.location`: PCI expansion ROM.
pub const DEVFD_LOC_PCI_ROM: u32 = 3;
/// `devfd_resource.location`: device-tree node property entry `location_index`.
pub const DEVFD_LOC_DT: u32 = 4;
/// Location: a DMA window (format 1.2): `dma_address` is its bus address.
pub const DEVFD_LOC_DMA: u32 = 5;
/// `devfd_resource.location_flags` of a PCI BAR: an I/O BAR.
pub const DEVFD_BAR_IO: u32 = 1;
/// `devfd_resource.location_flags` of a PCI BAR: a 64-bit memory BAR.
pub const DEVFD_BAR_MEM64: u32 = 2;
/// `devfd_resource.location_flags` of a PCI BAR: prefetchable.
pub const DEVFD_BAR_PREFETCHABLE: u32 = 4;
/// `devfd_resource.location_flags` of a DT location: the node's `reg` property.
pub const DEVFD_DT_PROP_REG: u32 = 1;
/// `devfd_resource.location_flags` of a DT location: the node's `ranges` property.
pub const DEVFD_DT_PROP_RANGES: u32 = 2;
/// `devfd_resource.location_flags` of a DT location: the node's `interrupts` property.
pub const DEVFD_DT_PROP_INTERRUPTS: u32 = 3;
/// `devfd_resource.access_widths` bit: 1-byte accesses accepted.
pub const DEVFD_ACCESS_8: u32 = 1;
/// `devfd_resource.access_widths` bit: 2-byte accesses accepted.
pub const DEVFD_ACCESS_16: u32 = 2;
/// `devfd_resource.access_widths` bit: 4-byte accesses accepted.
pub const DEVFD_ACCESS_32: u32 = 4;
/// `devfd_resource.access_widths` bit: 8-byte accesses accepted.
pub const DEVFD_ACCESS_64: u32 = 8;

/// One entry of the flat resource table (SPEC.md appendix A), in native byte order.
///
/// Growth: set `argsz = sizeof(devfd_resource)` before passing one to a function that fills
/// it (as with VFIO's `argsz`). libdevfd fills the fields it knows, up to `argsz` bytes, and
/// sets `argsz` to the size it filled, so a program built against a newer header still works
/// with this library (fields past the returned `argsz` are not filled). An `argsz` below 64
/// fails with -EINVAL and fills nothing.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct devfd_resource {
    /// In: the size of the caller's struct. Out: the bytes libdevfd filled.
    pub argsz: u32,
    /// DEVFD_RESOURCE_REGION or DEVFD_RESOURCE_INTERRUPT.
    pub kind: u32,
    /// Region or interrupt index.
    pub index: u32,
    /// DEVFD_REGION_* or DEVFD_IRQ_* flags.
    pub flags: u32,
    /// DEVFD_LOC_*.
    pub location: u32,
    /// Interrupt: vectors. Region: sparse mmap areas (0: the whole region may be mapped);
    /// devfd_desc_mmap_area() gives them.
    pub count: u32,
    /// PCI BAR number, or the DT property entry.
    pub location_index: u32,
    /// DEVFD_IRQ_KIND_*; 0 for regions.
    pub irq_kind: u32,
    /// PCI BAR: DEVFD_BAR_* flags. DT location: DEVFD_DT_PROP_*.
    pub location_flags: u32,
    /// Pass to devfd_desc_string() for the device-tree path (0: none).
    pub dt_path_offset: u32,
    /// Pass to devfd_desc_string() for the label (0: none).
    pub label_offset: u32,
    /// Register-like region: the DEVFD_ACCESS_* widths it accepts (all four unless its
    /// description restricts them). Memory-like region (DEVFD_REGION_MMAP) and interrupt: 0.
    pub access_widths: u32,
    /// Region: offset in the device file. Interrupt: offset of its control window.
    pub offset: u64,
    /// Region: size. Interrupt: size of its control window (16 bytes per vector).
    pub size: u64,
    /// (libdevfd 0.3, `argsz` ≥ 72) A DMA window (DEVFD_LOC_DMA): the bus address at which
    /// the device reaches the region's first byte; 0 for every other resource.
    pub dma_address: u64,
}

/// The size of the first devfd_resource layout; the least `argsz` accepted.
const RESOURCE_V1_SIZE: u32 = 64;
/// The size of the layout with `dma_address` (libdevfd 0.3).
const RESOURCE_V2_SIZE: u32 = 72;
const _: () = assert!(std::mem::size_of::<devfd_resource>() == RESOURCE_V2_SIZE as usize);

/// PCI identity.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct devfd_pci_id {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem_device: u16,
    /// 24-bit class code.
    pub class_code: u32,
    /// Revision ID.
    pub revision: u8,
    /// Zero.
    pub reserved: [u8; 3],
}

/// Where and why devfd_desc_parse() rejected a description.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct devfd_parse_error {
    /// Byte offset of the problem in the description.
    pub offset: u64,
    /// Top-level record position, or -1.
    pub record: i32,
    /// Sub-record position within it, or -1.
    pub sub_record: i32,
    /// A NUL-terminated message, e.g. "byte 0x60, record 1 (REGION): rec_len is 0".
    pub message: [c_char; 160],
}

/// A validated description (opaque).
pub struct devfd_desc {
    bytes: Vec<u8>,
    /// The flat resource table, computed once so indexing it is O(1).
    flat: Vec<devfd_resource>,
}

/// An open device file (opaque).
pub struct devfd_device {
    file: DeviceFile,
    desc: devfd_desc,
    maps: Mutex<Vec<Mapping>>,
}

/// Runs an entry point that returns a value, turning a panic into `fallback`.
fn guard_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Runs an entry point, turning a panic into -ENOTRECOVERABLE.
fn guard(f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(-libc::ENOTRECOVERABLE)
}

fn client_errno(e: &ClientError) -> c_int {
    match e.errno() {
        Some(errno) => -errno,
        None => match e {
            ClientError::Format(_) | ClientError::Truncated { .. } => -libc::EBADMSG,
            ClientError::Short { .. } => -libc::EIO,
            _ => -libc::ENOENT,
        },
    }
}

impl devfd_desc {
    /// Keeps a copy of validated bytes and their flat table.
    fn new(d: &Description<'_>) -> Self {
        devfd_desc {
            bytes: d.as_bytes().to_vec(),
            flat: d.flat().map(to_resource).collect(),
        }
    }

    fn view(&self) -> Option<Description<'_>> {
        parse(&self.bytes).ok()
    }
}

fn to_resource(e: FlatEntry) -> devfd_resource {
    devfd_resource {
        argsz: RESOURCE_V1_SIZE,
        kind: e.kind,
        index: e.index,
        flags: e.flags,
        location: e.location,
        count: e.count,
        location_index: e.location_index,
        irq_kind: e.irq_kind,
        location_flags: e.location_flags,
        dt_path_offset: e.dt_path_offset,
        label_offset: e.label_offset,
        access_widths: e.access_widths,
        offset: e.offset,
        size: e.size,
        dma_address: if e.location == FLAT_LOC_DMA {
            u64::from(e.location_flags) << 32 | u64::from(e.location_index)
        } else {
            0
        },
    }
}

/// Stores a resource through `out`, honouring the caller's `argsz` (see [`devfd_resource`]).
///
/// # Safety
/// `out` is NULL or valid for a read of its `argsz` field and a write of `argsz` bytes.
unsafe fn put_resource(out: *mut devfd_resource, value: devfd_resource) -> c_int {
    if out.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: non-NULL; the caller set argsz, the struct's first field.
    let argsz = unsafe { std::ptr::addr_of!((*out).argsz).read_unaligned() };
    if argsz < RESOURCE_V1_SIZE {
        return -libc::EINVAL;
    }
    // Fill the largest layout that fits the caller's struct, and say which.
    let filled = if argsz >= RESOURCE_V2_SIZE {
        RESOURCE_V2_SIZE
    } else {
        RESOURCE_V1_SIZE
    };
    let value = devfd_resource {
        argsz: filled,
        ..value
    };
    // SAFETY: `out` is valid for a write of argsz >= `filled` bytes, and `filled` bytes of
    // `value` are readable (it is a local of the full size).
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&raw const value).cast::<u8>(),
            out.cast::<u8>(),
            filled as usize,
        )
    };
    DEVFD_OK
}

/// Stores `value` through `out`, or fails -EINVAL if `out` is NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) -> c_int {
    if out.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: non-NULL and, by the caller's contract, valid for a write of T.
    unsafe { out.write(value) };
    DEVFD_OK
}

/// # Safety
/// `p` is NULL or points to a live `T` for `'a`.
unsafe fn borrow<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: the caller guarantees p is NULL or valid for 'a.
    unsafe { p.as_ref() }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A static, NUL-terminated description of a code returned by any devfd function.
#[unsafe(no_mangle)]
pub extern "C" fn devfd_strerror(code: c_int) -> *const c_char {
    guard_or(c"internal error in libdevfd".as_ptr(), || {
        strerror_text(code).as_ptr()
    })
}

fn strerror_text(code: c_int) -> &'static CStr {
    // i32::MIN has no negation; it is not a devfd code either.
    let text: &CStr = match code.checked_neg().unwrap_or(-1) {
        0 => c"success",
        // What devfd itself decides (SPEC.md 6.6 and the argument checks).
        libc::EINVAL => c"invalid argument: a NULL pointer, argsz too small, a width the region does not accept, a misaligned or misshaped access, or a bad value",
        libc::ENOENT => c"not found: no such file (open), or no such region, interrupt, vector, BAR or name (lookups)",
        libc::ENXIO => c"no such address: the offset is outside the region or window, or the range is not mappable there",
        libc::EPERM => c"not permitted: the region or interrupt flags forbid it, or it writes the description",
        libc::EIO => c"I/O error: the device failed the access",
        libc::ETIMEDOUT => c"timed out: no interrupt in time, or the device did not answer within the server's bound",
        libc::EBADMSG => c"not a valid devfd description",
        libc::ENOTRECOVERABLE => c"internal error in libdevfd",
        libc::ENOTCONN => c"the device server is gone (transport endpoint is not connected)",
        libc::ECONNABORTED => c"the device server aborted the connection",
        // What open(2), pread(2), pwrite(2), mmap(2) and poll(2) pass through.
        libc::EACCES => c"permission denied",
        libc::EBADF => c"bad file descriptor",
        libc::EISDIR => c"is a directory, not a device file",
        libc::ENOTDIR => c"a component of the path is not a directory",
        libc::ENAMETOOLONG => c"file name too long",
        libc::ELOOP => c"too many levels of symbolic links",
        libc::ENODEV => c"no such device, or the file cannot be mapped",
        libc::EBUSY => c"device or resource busy",
        libc::EINTR => c"interrupted by a signal",
        libc::EAGAIN => c"resource temporarily unavailable; try again",
        libc::ENOMEM => c"out of memory",
        libc::EMFILE => c"too many open files in this process",
        libc::ENFILE => c"too many open files in the system",
        libc::EFAULT => c"bad address",
        libc::EOVERFLOW => c"value too large: offset or size overflows",
        libc::EROFS => c"read-only file system",
        libc::ETXTBSY => c"text file busy",
        libc::EFBIG => c"file too large",
        libc::ENOSPC => c"no space left on device",
        libc::ESPIPE => c"not seekable: not a device file",
        libc::EEXIST => c"file exists",
        libc::ENOTSUP => c"operation not supported",
        libc::ENOSYS => c"function not implemented by the kernel",
        _ => c"unknown error (not a code libdevfd returns)",
    };
    text
}

/// The codes devfd_strerror() describes, for tests.
#[doc(hidden)]
pub const DOCUMENTED_CODES: &[c_int] = &[
    libc::EINVAL,
    libc::ENOENT,
    libc::ENXIO,
    libc::EPERM,
    libc::EIO,
    libc::ETIMEDOUT,
    libc::EBADMSG,
    libc::ENOTRECOVERABLE,
    libc::ENOTCONN,
    libc::ECONNABORTED,
    libc::EACCES,
    libc::EBADF,
    libc::EISDIR,
    libc::ENOTDIR,
    libc::ENAMETOOLONG,
    libc::ELOOP,
    libc::ENODEV,
    libc::EBUSY,
    libc::EINTR,
    libc::EAGAIN,
    libc::ENOMEM,
    libc::EMFILE,
    libc::ENFILE,
    libc::EFAULT,
    libc::EOVERFLOW,
    libc::EROFS,
    libc::ETXTBSY,
    libc::EFBIG,
    libc::ENOSPC,
    libc::ESPIPE,
    libc::EEXIST,
    libc::ENOTSUP,
    libc::ENOSYS,
];

/// DEVFD_VERSION of the library actually loaded (which may differ from the header's).
#[unsafe(no_mangle)]
pub extern "C" fn devfd_version() -> u32 {
    DEVFD_VERSION
}

// ---------------------------------------------------------------------------------------------
// Descriptions
// ---------------------------------------------------------------------------------------------

/// Validates `len` bytes at `buf` as a description (SPEC.md §7) and stores a new handle in
/// `*out` (NULL on any failure, when `out` is not NULL).
///
/// Returns 0; -EINVAL if `out` is NULL, or `buf` is NULL with `len` > 0; -EBADMSG if the bytes
/// are not a valid description (then `*err`, if `err` is not NULL, says where and why);
/// -ENOMEM.
///
/// # Safety
/// `buf` is valid for reads of `len` bytes; `out` is valid for a write; `err` is NULL or valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_parse(
    buf: *const u8,
    len: usize,
    out: *mut *mut devfd_desc,
    err: *mut devfd_parse_error,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { out.write(std::ptr::null_mut()) };
        if buf.is_null() && len != 0 {
            return -libc::EINVAL;
        }
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: non-NULL and valid for `len` bytes by the caller's contract.
            unsafe { std::slice::from_raw_parts(buf, len) }
        };
        match parse(bytes) {
            Ok(d) => {
                let handle = Box::new(devfd_desc::new(&d));
                // SAFETY: `out` is non-NULL and valid for a write.
                unsafe { put(out, Box::into_raw(handle)) }
            }
            Err(e) => {
                if !err.is_null() {
                    let mut message = [0 as c_char; 160];
                    let text = e.to_string();
                    for (dst, &src) in message.iter_mut().zip(text.as_bytes().iter().take(159)) {
                        *dst = src as c_char;
                    }
                    let record = e.record;
                    let value = devfd_parse_error {
                        offset: e.offset as u64,
                        record: record.map_or(-1, |r| i32::from(r.index)),
                        sub_record: record.and_then(|r| r.sub).map_or(-1, i32::from),
                        message,
                    };
                    // SAFETY: `err` is non-NULL and valid for a write.
                    unsafe { put(err, value) };
                }
                -libc::EBADMSG
            }
        }
    })
}

/// Frees a description from devfd_desc_parse(); NULL is ignored.
///
/// # Safety
/// `desc` is NULL or a handle from devfd_desc_parse() not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_free(desc: *mut devfd_desc) {
    if !desc.is_null() {
        // SAFETY: created by Box::into_raw in devfd_desc_parse and not freed before.
        drop(unsafe { Box::from_raw(desc) });
    }
}

/// The bus code (DEVFD_BUS_PCI, DEVFD_BUS_PLATFORM, or another capital letter), or -EINVAL.
///
/// # Safety
/// `desc` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_bus(desc: *const devfd_desc) -> c_int {
    guard(|| {
        // SAFETY: NULL or live, per the contract.
        let Some(d) = (unsafe { borrow(desc) }).and_then(devfd_desc::view) else {
            return -libc::EINVAL;
        };
        c_int::from(d.bus().code())
    })
}

/// Length in bytes of the description (0 for NULL).
///
/// # Safety
/// `desc` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_len(desc: *const devfd_desc) -> usize {
    guard_or(0, || {
        // SAFETY: NULL or live, per the contract.
        unsafe { borrow(desc) }.map_or(0, |d| d.bytes.len())
    })
}

/// Number of entries of the flat resource table: regions, then interrupts (0 for NULL).
///
/// # Safety
/// `desc` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_resource_count(desc: *const devfd_desc) -> usize {
    // SAFETY: NULL or live, per the contract.
    unsafe { borrow(desc) }.map_or(0, |d| d.flat.len())
}

/// Copies entry `i` of the flat resource table to `*out`; -ENOENT past the end.
///
/// # Safety
/// `desc` is NULL or a live handle; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_resource(
    desc: *const devfd_desc,
    i: usize,
    out: *mut devfd_resource,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live, per the contract.
        let Some(d) = (unsafe { borrow(desc) }) else {
            return -libc::EINVAL;
        };
        match d.flat.get(i) {
            // SAFETY: `out` is valid for a write, per the contract.
            Some(e) => unsafe { put_resource(out, *e) },
            None => -libc::ENOENT,
        }
    })
}

/// Shared body of the lookups: finds an entry with `pick` and stores it.
///
/// # Safety
/// As for the lookups: `desc` NULL or live, `out` valid for a write.
unsafe fn lookup(
    desc: *const devfd_desc,
    out: *mut devfd_resource,
    pick: impl FnOnce(&Description<'_>) -> Option<FlatEntry>,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live, per the contract.
        let Some(d) = (unsafe { borrow(desc) }).and_then(devfd_desc::view) else {
            return -libc::EINVAL;
        };
        match pick(&d) {
            // SAFETY: `out` is valid for a write, per the contract.
            Some(e) => unsafe { put_resource(out, to_resource(e)) },
            None => -libc::ENOENT,
        }
    })
}

/// The region with this index; -ENOENT if none.
///
/// # Safety
/// `desc` is NULL or a live handle; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_region(
    desc: *const devfd_desc,
    index: u32,
    out: *mut devfd_resource,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { lookup(desc, out, |d| d.region(index).map(|r| r.flat_entry())) }
}

/// The interrupt with this index; -ENOENT if none.
///
/// # Safety
/// `desc` is NULL or a live handle; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_interrupt(
    desc: *const devfd_desc,
    index: u32,
    out: *mut devfd_resource,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { lookup(desc, out, |d| d.interrupt(index).map(|i| i.flat_entry())) }
}

/// The region that is PCI BAR `bar` (0-5).
///
/// Returns 0; -EINVAL (`desc` or `out` NULL, `out->argsz` too small, or `bar` > 5); -ENOENT
/// if the device has no such BAR (or is not PCI).
///
/// # Safety
/// `desc` is NULL or a live handle; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_pci_bar(
    desc: *const devfd_desc,
    bar: u32,
    out: *mut devfd_resource,
) -> c_int {
    let Ok(bar) = u8::try_from(bar) else {
        return -libc::EINVAL;
    };
    if u32::from(bar) >= devfd_format::wire::PCI_BAR_COUNT {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe { lookup(desc, out, |d| d.pci_bar(bar).map(|r| r.flat_entry())) }
}

/// Area `n` of the mappable areas of region `region`: its offset within the region and its
/// size. A region with DEVFD_REGION_MMAP and no sparse areas (`count` 0 in its resource) has
/// one area, the whole region.
///
/// Returns 0; -EINVAL (a NULL argument); -ENOENT (no such region, a region that cannot be
/// mapped, or `n` past the last area).
///
/// # Safety
/// `desc` is NULL or a live handle; `offset` and `size` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_mmap_area(
    desc: *const devfd_desc,
    region: u32,
    n: u32,
    offset: *mut u64,
    size: *mut u64,
) -> c_int {
    guard(|| {
        if offset.is_null() || size.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: NULL or live, per the contract.
        let Some(d) = (unsafe { borrow(desc) }).and_then(devfd_desc::view) else {
            return -libc::EINVAL;
        };
        let Some(r) = d.region(region).filter(|r| r.mmappable()) else {
            return -libc::ENOENT;
        };
        let area = match r.sparse_areas() {
            Some(mut areas) => areas.nth(n as usize),
            None => (n == 0).then_some((0, r.size)),
        };
        match area {
            Some((o, len)) => {
                // SAFETY: both non-NULL and valid for writes, per the contract.
                unsafe {
                    put(offset, o);
                    put(size, len)
                }
            }
            None => -libc::ENOENT,
        }
    })
}

/// The `n`-th DMA window (0 first, in file order; format 1.2): memory the device reaches by
/// DMA at `out->dma_address` (set `out->argsz` ≥ 72 to receive it). Map it with devfd_map()
/// and translate with devfd_dma_bus_address(). -ENOENT if there are not `n + 1` windows.
///
/// # Safety
/// `desc` is NULL or a live handle; `out` is valid for a write of its `argsz` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_dma_window(
    desc: *const devfd_desc,
    n: u32,
    out: *mut devfd_resource,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        lookup(desc, out, |d| {
            d.regions()
                .filter(|r| r.dma_address().is_some())
                .nth(n as usize)
                .map(|r| r.flat_entry())
        })
    }
}

/// A copy of `window`, if it is a DMA window filled with the 0.3 layout; else -EINVAL.
///
/// # Safety
/// `window` is NULL or valid for a read of a devfd_resource.
unsafe fn dma_window_of(window: *const devfd_resource) -> Result<devfd_resource, c_int> {
    if window.is_null() {
        return Err(-libc::EINVAL);
    }
    // SAFETY: non-NULL and, by contract, a filled devfd_resource.
    let w = unsafe { window.read_unaligned() };
    if w.argsz < RESOURCE_V2_SIZE || w.location != DEVFD_LOC_DMA {
        return Err(-libc::EINVAL);
    }
    Ok(w)
}

/// The bus address the device reaches byte `offset` of DMA window `window` at: what a driver
/// programs into the device's DMA registers for the buffer at that offset of its mapping.
/// Returns 0; -EINVAL (`window` or `bus` NULL, or not a DMA window); -ENXIO (`offset` ≥ the
/// window's size).
///
/// # Safety
/// `window` is NULL or a devfd_resource filled with `argsz` ≥ 72; `bus` is NULL or valid for
/// a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_dma_bus_address(
    window: *const devfd_resource,
    offset: u64,
    bus: *mut u64,
) -> c_int {
    if bus.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    let w = match unsafe { dma_window_of(window) } {
        Ok(w) => w,
        Err(e) => return e,
    };
    match (offset < w.size)
        .then(|| w.dma_address.checked_add(offset))
        .flatten()
    {
        // SAFETY: non-NULL, valid for a write by contract.
        Some(address) => unsafe { put(bus, address) },
        None => -libc::ENXIO,
    }
}

/// The offset in DMA window `window` of bus address `bus` (the inverse of
/// devfd_dma_bus_address(), for addresses a device reports). Returns 0; -EINVAL as there;
/// -ENXIO if the window does not hold `bus`.
///
/// # Safety
/// As devfd_dma_bus_address(); `offset` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_dma_offset(
    window: *const devfd_resource,
    bus: u64,
    offset: *mut u64,
) -> c_int {
    if offset.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    let w = match unsafe { dma_window_of(window) } {
        Ok(w) => w,
        Err(e) => return e,
    };
    match bus.checked_sub(w.dma_address).filter(|o| *o < w.size) {
        // SAFETY: non-NULL, valid for a write by contract.
        Some(o) => unsafe { put(offset, o) },
        None => -libc::ENXIO,
    }
}

/// The region that is PCI configuration space; -ENOENT if none.
///
/// # Safety
/// `desc` is NULL or a live handle; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_pci_config(
    desc: *const devfd_desc,
    out: *mut devfd_resource,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { lookup(desc, out, |d| d.pci_config().map(|r| r.flat_entry())) }
}

/// The region that is entry `index` of the `reg` property of device-tree node `path`.
///
/// # Safety
/// `desc` is NULL or a live handle; `path` is NULL or a NUL-terminated string; `out` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_dt_region(
    desc: *const devfd_desc,
    path: *const c_char,
    index: u32,
    out: *mut devfd_resource,
) -> c_int {
    if path.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: non-NULL and NUL-terminated, per the contract.
    let Ok(path) = unsafe { CStr::from_ptr(path) }.to_str() else {
        return -libc::ENOENT;
    };
    // SAFETY: forwarded contract.
    unsafe {
        lookup(desc, out, |d| {
            d.dt_region(path, index).map(|r| r.flat_entry())
        })
    }
}

/// PCI identity of the device; -ENOENT if it is not a PCI device.
///
/// # Safety
/// `desc` is NULL or a live handle; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_pci_id(
    desc: *const devfd_desc,
    out: *mut devfd_pci_id,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live, per the contract.
        let Some(d) = (unsafe { borrow(desc) }).and_then(devfd_desc::view) else {
            return -libc::EINVAL;
        };
        let Some(id) = d.pci_id() else {
            return -libc::ENOENT;
        };
        let value = devfd_pci_id {
            vendor: id.vendor,
            device: id.device,
            subsystem_vendor: id.subsystem_vendor,
            subsystem_device: id.subsystem_device,
            class_code: id.class,
            revision: id.revision,
            reserved: [0; 3],
        };
        // SAFETY: `out` is valid for a write, per the contract.
        unsafe { put(out, value) }
    })
}

/// The NUL-terminated string at byte `offset` of the description (a `dt_path_offset` or
/// `label_offset` of a resource), or NULL if `offset` is 0 or not a string. Valid as long as
/// `desc`.
///
/// # Safety
/// `desc` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_string(desc: *const devfd_desc, offset: u32) -> *const c_char {
    guard_or(std::ptr::null(), || {
        // SAFETY: NULL or live, per the contract.
        let Some(handle) = (unsafe { borrow(desc) }) else {
            return std::ptr::null();
        };
        // Only the string offsets the flat table reports are strings.
        let known = offset != 0
            && handle
                .flat
                .iter()
                .any(|e| e.dt_path_offset == offset || e.label_offset == offset);
        match handle.bytes.get(offset as usize..) {
            Some(tail) if known => tail.as_ptr().cast(),
            _ => std::ptr::null(),
        }
    })
}

/// The `n`-th device-tree `compatible` string, or NULL. Valid as long as `desc`.
///
/// # Safety
/// `desc` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_desc_compatible(desc: *const devfd_desc, n: usize) -> *const c_char {
    guard_or(std::ptr::null(), || {
        // SAFETY: NULL or live, per the contract.
        let Some(handle) = (unsafe { borrow(desc) }) else {
            return std::ptr::null();
        };
        let Some(d) = handle.view() else {
            return std::ptr::null();
        };
        // Each entry is NUL-terminated inside the description, so point into it.
        d.device()
            .compatible()
            .nth(n)
            .map_or(std::ptr::null(), |s| s.as_ptr().cast())
    })
}

// ---------------------------------------------------------------------------------------------
// Device files
// ---------------------------------------------------------------------------------------------

/// Opens a device file (or a description file) read-write, discovers its description with
/// at most two reads, validates it once, and stores a new handle in `*out` (NULL on any
/// failure, when `out` is not NULL).
///
/// Returns 0; -EINVAL (`path` or `out` NULL); -EBADMSG (not a valid description, or shorter
/// than its `desc_len`); -ENOMEM; or what open(2) and pread(2) fail with: -ENOENT, -EACCES,
/// -EISDIR, -ENOTDIR, -ENAMETOOLONG, -ELOOP, -ENODEV, -ENXIO, -EBUSY, -EINTR, -EAGAIN,
/// -EMFILE, -ENFILE, -EROFS, -ENOTCONN (server gone), -ECONNABORTED, -EIO.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_open(path: *const c_char, out: *mut *mut devfd_device) -> c_int {
    guard(|| {
        if out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { out.write(std::ptr::null_mut()) };
        if path.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: non-NULL and NUL-terminated, per the contract.
        let path = unsafe { CStr::from_ptr(path) };
        let path = std::path::Path::new(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path.to_bytes()),
        );
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { store_device(out, DeviceFile::open(path)) }
    })
}

/// Stores a new handle for an opened device file in `*out`, or returns the open's error.
///
/// # Safety
/// `out` is non-NULL and valid for a write.
unsafe fn store_device(
    out: *mut *mut devfd_device,
    opened: Result<DeviceFile, ClientError>,
) -> c_int {
    match opened {
        Ok(file) => {
            let desc = devfd_desc::new(&file.description());
            let handle = Box::new(devfd_device {
                file,
                desc,
                maps: Mutex::new(Vec::new()),
            });
            // SAFETY: `out` is non-NULL and valid for a write, per the contract.
            unsafe { put(out, Box::into_raw(handle)) }
        }
        Err(e) => client_errno(&e),
    }
}

/// Like devfd_open(), for a device file that is open already (`fd`, opened read-write or
/// read-only, for example passed by a broker). On success the handle owns `fd` (devfd_close()
/// closes it); on failure `fd` is closed too and `*out` is NULL.
///
/// Returns 0; -EINVAL (`out` NULL); -EBADF (`fd` is not an open descriptor); -EBADMSG (not a
/// valid description); or what pread(2) fails with (-EISDIR, -ESPIPE, -ENOTCONN, -EIO, …).
///
/// # Safety
/// `fd` is an open descriptor owned by the caller, not used by it after the call; `out` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_open_fd(fd: c_int, out: *mut *mut devfd_device) -> c_int {
    guard(|| {
        if out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: fcntl(F_GETFD) only asks whether `fd` is open.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return -libc::EBADF;
        }
        // SAFETY: `fd` is open and, per the contract, ours from now on.
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: `out` is non-NULL and valid for a write.
        unsafe { store_device(out, DeviceFile::from_fd(owned)) }
    })
}

/// Closes a device (unmapping everything devfd_map() mapped); NULL is ignored.
///
/// # Safety
/// `dev` is NULL or a handle from devfd_open() not yet closed, and no other thread uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_close(dev: *mut devfd_device) {
    if !dev.is_null() {
        // SAFETY: created by Box::into_raw in devfd_open and not freed before.
        drop(unsafe { Box::from_raw(dev) });
    }
}

/// The device's description, borrowed until devfd_close().
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_device_desc(dev: *const devfd_device) -> *const devfd_desc {
    // SAFETY: NULL or live, per the contract.
    unsafe { borrow(dev) }.map_or(std::ptr::null(), |d| &d.desc as *const devfd_desc)
}

/// A file descriptor to poll(2)/epoll for POLLPRI (an interrupt is pending), or -EINVAL.
/// Owned by the device: do not close it.
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_fd(dev: *const devfd_device) -> c_int {
    // SAFETY: NULL or live, per the contract.
    unsafe { borrow(dev) }.map_or(-libc::EINVAL, |d| d.file.as_raw_fd())
}

/// # Safety
/// `dev` is NULL or a live handle.
unsafe fn with_device(dev: *const devfd_device, f: impl FnOnce(&devfd_device) -> c_int) -> c_int {
    guard(|| {
        // SAFETY: NULL or live, per the contract.
        match unsafe { borrow(dev) } {
            Some(d) => f(d),
            None => -libc::EINVAL,
        }
    })
}

// The eight register accessors below are written out rather than generated by a macro:
// cbindgen reads the source without expanding macros, so generated functions would be
// missing from devfd.h.

/// Reads the 8-bit register at `offset` in region `region` into `*value`.
///
/// # Safety
/// `dev` is NULL or a live handle; `value` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_read8(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: *mut u8,
) -> c_int {
    // Check before touching the device: a read may have side effects (read-to-clear).
    if value.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .read_u8(region, offset)
                .map_or_else(|e| client_errno(&e), |v| put(value, v))
        })
    }
}

/// Writes the 8-bit register at `offset` in region `region`.
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_write8(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: u8,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .write_u8(region, offset, value)
                .map_or_else(|e| client_errno(&e), |()| DEVFD_OK)
        })
    }
}

/// Reads the 16-bit register at `offset` in region `region` into `*value`.
///
/// # Safety
/// `dev` is NULL or a live handle; `value` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_read16(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: *mut u16,
) -> c_int {
    // Check before touching the device: a read may have side effects (read-to-clear).
    if value.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .read_u16(region, offset)
                .map_or_else(|e| client_errno(&e), |v| put(value, v))
        })
    }
}

/// Writes the 16-bit register at `offset` in region `region`.
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_write16(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: u16,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .write_u16(region, offset, value)
                .map_or_else(|e| client_errno(&e), |()| DEVFD_OK)
        })
    }
}

/// Reads the 32-bit register at `offset` in region `region` into `*value`.
///
/// # Safety
/// `dev` is NULL or a live handle; `value` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_read32(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: *mut u32,
) -> c_int {
    // Check before touching the device: a read may have side effects (read-to-clear).
    if value.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .read_u32(region, offset)
                .map_or_else(|e| client_errno(&e), |v| put(value, v))
        })
    }
}

/// Writes the 32-bit register at `offset` in region `region`.
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_write32(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: u32,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .write_u32(region, offset, value)
                .map_or_else(|e| client_errno(&e), |()| DEVFD_OK)
        })
    }
}

/// Reads the 64-bit register at `offset` in region `region` into `*value`.
///
/// # Safety
/// `dev` is NULL or a live handle; `value` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_read64(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: *mut u64,
) -> c_int {
    // Check before touching the device: a read may have side effects (read-to-clear).
    if value.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .read_u64(region, offset)
                .map_or_else(|e| client_errno(&e), |v| put(value, v))
        })
    }
}

/// Writes the 64-bit register at `offset` in region `region`.
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_write64(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    value: u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .write_u64(region, offset, value)
                .map_or_else(|e| client_errno(&e), |()| DEVFD_OK)
        })
    }
}

/// Reads `len` bytes at `offset` of region `region` into `buf`: any length on a memory-like
/// region; on a register-like one, split into the widest naturally aligned accesses (up to
/// 4 bytes) the region accepts.
///
/// The whole access is checked first, so these failures have no effect on the device:
/// -EINVAL (NULL `dev`, NULL `buf` with `len` > 0, or a register access that cannot be split
/// into accepted widths), -ENOENT (no such region), -ENXIO (runs past the region's end),
/// -EPERM (the region is not readable). `len` 0 succeeds with no effect. An error from the
/// device part-way through (-EIO, -ETIMEDOUT, -ENOTCONN, -EINTR) is returned after earlier
/// pieces were transferred: devfd_read_counted() says how many bytes.
///
/// # Safety
/// `dev` is NULL or a live handle; `buf` is valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_read(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    buf: *mut c_void,
    len: usize,
) -> c_int {
    // SAFETY: forwarded contract; `done` may be NULL.
    unsafe { devfd_read_counted(dev, region, offset, buf, len, std::ptr::null_mut()) }
}

/// devfd_read(), also storing in `*done` (if not NULL) the bytes read, on success and failure.
///
/// # Safety
/// As devfd_read(); `done` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_read_counted(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    buf: *mut c_void,
    len: usize,
    done: *mut usize,
) -> c_int {
    if !done.is_null() {
        // SAFETY: non-NULL and valid for a write, per the contract.
        unsafe { done.write(0) };
    }
    if buf.is_null() && len != 0 {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            let dst: &mut [u8] = if len == 0 {
                &mut []
            } else {
                // SAFETY: non-NULL and valid for `len` bytes, per the contract.
                std::slice::from_raw_parts_mut(buf.cast(), len)
            };
            let mut n = 0;
            let rc = match d.file.read_bulk_counted(region, offset, dst, &mut n) {
                Ok(()) => DEVFD_OK,
                Err(e) => client_errno(&e),
            };
            if !done.is_null() {
                done.write(n);
            }
            rc
        })
    }
}

/// Writes `len` bytes from `buf` at `offset` of region `region`, split and checked as
/// devfd_read() does: -EINVAL, -ENOENT, -ENXIO and -EPERM (not writable) have no effect;
/// `len` 0 succeeds with no effect; a device error part-way is returned after earlier pieces
/// reached the device (devfd_write_counted() says how many bytes).
///
/// # Safety
/// `dev` is NULL or a live handle; `buf` is valid for reads of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_write(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    buf: *const c_void,
    len: usize,
) -> c_int {
    // SAFETY: forwarded contract; `done` may be NULL.
    unsafe { devfd_write_counted(dev, region, offset, buf, len, std::ptr::null_mut()) }
}

/// devfd_write(), also storing in `*done` (if not NULL) the bytes that reached the device.
///
/// # Safety
/// As devfd_write(); `done` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_write_counted(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    buf: *const c_void,
    len: usize,
    done: *mut usize,
) -> c_int {
    if !done.is_null() {
        // SAFETY: non-NULL and valid for a write, per the contract.
        unsafe { done.write(0) };
    }
    if buf.is_null() && len != 0 {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            let src: &[u8] = if len == 0 {
                &[]
            } else {
                // SAFETY: non-NULL and valid for `len` bytes, per the contract.
                std::slice::from_raw_parts(buf.cast(), len)
            };
            let mut n = 0;
            let rc = match d.file.write_bulk_counted(region, offset, src, &mut n) {
                Ok(()) => DEVFD_OK,
                Err(e) => client_errno(&e),
            };
            if !done.is_null() {
                done.write(n);
            }
            rc
        })
    }
}

/// Maps a whole mmap-capable region shared and coherent with the device; stores the address
/// and length. Unmapped by devfd_unmap() or devfd_close().
///
/// # Safety
/// `dev` is NULL or a live handle; `addr` and `len` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_map(
    dev: *const devfd_device,
    region: u32,
    addr: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    if addr.is_null() || len.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| match d.file.map(region) {
            Ok(m) => {
                put(addr, m.as_mut_ptr().cast());
                put(len, m.len());
                d.maps
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(m);
                DEVFD_OK
            }
            Err(e) => client_errno(&e),
        })
    }
}

/// Maps `len` bytes (rounded up to whole pages) at `offset` of region `region`, shared and
/// coherent with the device; stores the address. `offset` is a multiple of 4096 and the range
/// lies inside one mappable area (devfd_desc_mmap_area()). Unmapped by devfd_unmap() or
/// devfd_close().
///
/// Returns 0; -EINVAL (a NULL argument, or `offset` not page-aligned); -ENOENT (no such
/// region, or it is not mappable); -ENXIO (the range is not inside one area); -EACCES; -ENODEV
/// (the server cannot map it); -ENOMEM.
///
/// # Safety
/// `dev` is NULL or a live handle; `addr` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_map_range(
    dev: *const devfd_device,
    region: u32,
    offset: u64,
    len: usize,
    addr: *mut *mut c_void,
) -> c_int {
    if addr.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| match d.file.map_part(region, offset, len as u64) {
            Ok(m) => {
                put(addr, m.as_mut_ptr().cast());
                d.maps
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(m);
                DEVFD_OK
            }
            Err(e) => client_errno(&e),
        })
    }
}

/// Unmaps a mapping made by devfd_map() or devfd_map_range(); -ENOENT if `addr` is not one.
///
/// # Safety
/// `dev` is NULL or a live handle; nothing uses the mapping any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_unmap(dev: *const devfd_device, addr: *mut c_void) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            let mut maps = d
                .maps
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match maps
                .iter()
                .position(|m| m.as_ptr() == addr.cast_const().cast())
            {
                Some(i) => {
                    drop(maps.swap_remove(i));
                    DEVFD_OK
                }
                None => -libc::ENOENT,
            }
        })
    }
}

/// Waits up to `timeout_ms` (negative: forever) for interrupt `index` (POLLPRI on the file);
/// stores the number of events (summed over its vectors) in `*events`. Reading the counters
/// resets them to 0 for this handle only; it does not acknowledge anything: for a
/// DEVFD_IRQ_AUTOMASKED interrupt call devfd_irq_unmask() after servicing the device (see
/// the top of this header). An event that fired before the handle was opened and is still
/// outstanding is counted (1).
///
/// Returns 0; -EINVAL (NULL `dev`); -ENOENT (no such interrupt); -ETIMEDOUT (no event in
/// time); -EINTR; -ENOTCONN (server gone); -EIO.
///
/// # Safety
/// `dev` is NULL or a live handle; `events` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_wait_irq(
    dev: *const devfd_device,
    index: u32,
    timeout_ms: c_int,
    events: *mut u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
            match d.file.wait_interrupt(index, timeout) {
                Ok(n) if events.is_null() => {
                    let _ = n;
                    DEVFD_OK
                }
                Ok(n) => put(events, n),
                Err(e) => client_errno(&e),
            }
        })
    }
}

/// Reads (and resets) the event counter of one vector.
///
/// # Safety
/// `dev` is NULL or a live handle; `events` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_irq_count(
    dev: *const devfd_device,
    index: u32,
    vector: u32,
    events: *mut u64,
) -> c_int {
    // Check before touching the device: a read may have side effects (read-to-clear).
    if events.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| match d.file.interrupt_count(index, vector) {
            Ok(n) => put(events, n),
            Err(e) => client_errno(&e),
        })
    }
}

/// The status word of one vector (SPEC.md 6.3, a 1.1 server): DEVFD_IRQ_STATUS_PENDING,
/// DEVFD_IRQ_STATUS_UNACKED, DEVFD_IRQ_STATUS_ASSERTED bits, shared by all opens; a 1.0
/// server reports 0. Does not change any counter.
///
/// Returns 0; -EINVAL (a NULL argument); -ENOENT (no such interrupt or vector); -ENOTCONN,
/// -EIO, -ETIMEDOUT from the server.
///
/// # Safety
/// `dev` is NULL or a live handle; `status` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_irq_status(
    dev: *const devfd_device,
    index: u32,
    vector: u32,
    status: *mut u32,
) -> c_int {
    if status.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            let Some(block) = d
                .file
                .interrupt(index)
                .and_then(|i| i.vector_offset(vector))
            else {
                return -libc::ENOENT;
            };
            let mut word = [0u8; 4];
            match std::os::unix::fs::FileExt::read_exact_at(d.file.file(), &mut word, block + 12) {
                Ok(()) => put(status, u32::from_le_bytes(word)),
                Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
            }
        })
    }
}

/// Masks one vector of an interrupt.
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_irq_mask(
    dev: *const devfd_device,
    index: u32,
    vector: u32,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .mask(index, vector)
                .map_or_else(|e| client_errno(&e), |()| DEVFD_OK)
        })
    }
}

/// Resets the device to its power-on state through its reset word (format 1.2). Returns 0;
/// -ENOTSUP if the device has no reset word; -EIO if the device failed the reset;
/// -ETIMEDOUT; -EINVAL (`dev` NULL).
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_reset(dev: *const devfd_device) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .reset()
                .map_or_else(|e| client_errno(&e), |()| DEVFD_OK)
        })
    }
}

/// Unmasks (acknowledges) one vector of an interrupt.
///
/// # Safety
/// `dev` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn devfd_irq_unmask(
    dev: *const devfd_device,
    index: u32,
    vector: u32,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_device(dev, |d| {
            d.file
                .unmask(index, vector)
                .map_or_else(|e| client_errno(&e), |()| DEVFD_OK)
        })
    }
}
