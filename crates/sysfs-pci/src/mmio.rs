//! A memory BAR mapped through its sysfs `resourceN` file, accessed with volatile loads and
//! stores of exactly the width a driver asks for. This is the crate's only module with
//! `unsafe` code: mapping, unmapping, and the volatile accesses.
//!
//! # Why the accesses are sound
//!
//! The mapping is device memory (or, in tests, a file's page cache), outside anything Rust
//! owns: no reference is ever made to it, every access is a `read_volatile`/`write_volatile`
//! of one naturally aligned 1-, 2-, 4- or 8-byte value inside the BAR's size, which the
//! mapping (the size rounded up to whole pages) covers. Accesses are serialized by a mutex,
//! so two threads never race on the same register; a device changing its registers under
//! us is what volatile accesses are for.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::{Mutex, PoisonError};

/// A shared mapping of a BAR.
pub(crate) struct Mmio {
    base: NonNull<u8>,
    /// Bytes mapped: the BAR size rounded up to pages.
    mapped: usize,
    /// The BAR size: accesses stay below it.
    size: usize,
    lock: Mutex<()>,
}

// SAFETY: the mapping belongs to this value alone until `drop`, and every access to it is a
// volatile access under `lock` (see the module docs), so any thread may use it.
unsafe impl Send for Mmio {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mmio {}

impl std::fmt::Debug for Mmio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mmio").field("size", &self.size).finish()
    }
}

/// Copies the register's bytes (memory order, so little-endian registers stay little-endian).
fn copy(out: &mut [u8], value: &[u8]) {
    for (o, v) in out.iter_mut().zip(value) {
        *o = *v;
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

impl Mmio {
    /// Maps the first `size` bytes of `file` (a `resourceN` opened read-write) shared.
    pub(crate) fn map(file: &File, size: u64) -> io::Result<Mmio> {
        let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "BAR too large to map");
        let size = usize::try_from(size).map_err(|_| too_large())?;
        let mapped = size
            .checked_next_multiple_of(page_size())
            .filter(|m| *m > 0)
            .ok_or_else(too_large)?;
        // SAFETY: a fresh shared mapping at an address the kernel chooses, of a descriptor
        // we hold open for the call; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Mmio {
            base,
            mapped,
            size,
            lock: Mutex::new(()),
        })
    }

    /// The address of a naturally aligned access of `len` (1, 2, 4, 8) bytes at `offset`,
    /// if it lies inside the BAR.
    fn at(&self, offset: u64, len: usize) -> Option<*mut u8> {
        let offset = usize::try_from(offset).ok()?;
        let aligned = matches!(len, 1 | 2 | 4 | 8) && offset.checked_rem(len) == Some(0);
        let inside = offset.checked_add(len).is_some_and(|end| end <= self.size);
        // SAFETY: `offset + len <= size <= mapped`, so the pointer stays inside the mapping.
        (aligned && inside).then(|| unsafe { self.base.as_ptr().add(offset) })
    }

    /// Reads one register of `data.len()` bytes at `offset`; `false` if that is not a
    /// naturally aligned 1-, 2-, 4- or 8-byte access inside the BAR.
    pub(crate) fn read(&self, offset: u64, data: &mut [u8]) -> bool {
        let Some(p) = self.at(offset, data.len()) else {
            return false;
        };
        let _serial = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: `p` is inside the mapping and aligned for the width (the mapping is page
        // aligned and `offset` a multiple of the width); see the module docs.
        unsafe {
            match data.len() {
                1 => copy(data, &[p.read_volatile()]),
                2 => copy(data, &p.cast::<u16>().read_volatile().to_ne_bytes()),
                4 => copy(data, &p.cast::<u32>().read_volatile().to_ne_bytes()),
                _ => copy(data, &p.cast::<u64>().read_volatile().to_ne_bytes()),
            }
        }
        true
    }

    /// Writes one register; `false` as for [`Self::read`].
    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> bool {
        let Some(p) = self.at(offset, data.len()) else {
            return false;
        };
        let _serial = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: as in `read`. The byte arrays are the exact width (checked by `at`).
        unsafe {
            match *data {
                [b] => p.write_volatile(b),
                [a, b] => p.cast::<u16>().write_volatile(u16::from_ne_bytes([a, b])),
                [a, b, c, d] => p
                    .cast::<u32>()
                    .write_volatile(u32::from_ne_bytes([a, b, c, d])),
                [a, b, c, d, e, f, g, h] => p
                    .cast::<u64>()
                    .write_volatile(u64::from_ne_bytes([a, b, c, d, e, f, g, h])),
                _ => return false,
            }
        }
        true
    }
}

impl Drop for Mmio {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`, which nothing uses any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.mapped);
        }
    }
}
