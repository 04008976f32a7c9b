//! Shared memory: a sealed memfd mapped `MAP_SHARED` into this process, so a client that maps
//! the same memfd (the server hands it out for mmap, SPEC.md §6.5) and the device see the
//! same bytes.
//!
//! This is the crate's only module with `unsafe` code: creating and sealing the memfd, mapping
//! and unmapping it, and viewing the mapping as bytes.
//!
//! # Why concurrent access is sound
//!
//! The mapping changes under us: other threads of the server access it at once, and clients
//! store to it through their own mappings. So no `&[u8]` or `&mut [u8]` is ever made over it —
//! the compiler would be entitled to assume such bytes do not change. The mapping is viewed
//! only as `&[AtomicU8]`, and every byte is copied in or out with a relaxed atomic load or
//! store: concurrent accesses from several threads are then not data races (a racing reader
//! may see a mix of old and new bytes, as with real RAM), and stores from other processes
//! only change byte values the atomics already allow to change. Plain `memcpy` over the
//! mapping would be a data race in Rust's memory model whenever two threads touch the same
//! bytes; atomics of one size (bytes) rule that out without any locking.
//!
//! The memfd is sealed against shrinking, so no holder of the fd can truncate it under the
//! mapping and turn an access into SIGBUS.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::ShmError;

/// Seals that keep the size fixed for as long as anyone holds the fd.
const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

/// A sealed memfd and its shared mapping in this process.
pub struct SharedMemory {
    fd: OwnedFd,
    base: NonNull<AtomicU8>,
    len: usize,
}

// SAFETY: the mapping belongs to this value alone and stays valid until `drop`; the only access
// to it is through `&[AtomicU8]` (see the module docs), which any thread may use at once.
unsafe impl Send for SharedMemory {}
// SAFETY: as for `Send`: shared access is atomic byte access only.
unsafe impl Sync for SharedMemory {}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("fd", &self.fd.as_raw_fd())
            .field("size", &self.len)
            .finish()
    }
}

impl SharedMemory {
    /// Zeroed shared memory of `size` bytes in a new memfd, sealed at that size.
    pub fn new(size: u64) -> Result<Self, ShmError> {
        let len = mappable_len(size)?;
        // SAFETY: the name is a NUL-terminated literal and the flags are valid; the result is
        // checked before use.
        let raw = unsafe {
            libc::memfd_create(
                c"devfd-memory".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if raw < 0 {
            return Err(ShmError::last_os_error("memfd_create"));
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let file = File::from(fd);
        file.set_len(size)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EFBIG) => ShmError::OverFileSizeLimit(size),
                _ => ShmError::System {
                    call: "ftruncate",
                    source,
                },
            })?;
        let fd = OwnedFd::from(file);
        // SAFETY: F_ADD_SEALS on a descriptor we own, with an integer argument.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
            return Err(ShmError::last_os_error("fcntl(F_ADD_SEALS)"));
        }
        Self::map(fd, len)
    }

    /// Maps an existing memfd (for example one a server handed out) in full. It must be sealed
    /// against shrinking, as [`SharedMemory::new`] makes it, so the mapping can never fault.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, ShmError> {
        // SAFETY: F_GET_SEALS takes no argument and only reads the descriptor's state.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 || seals & libc::F_SEAL_SHRINK == 0 {
            return Err(ShmError::NotSealed);
        }
        let file = File::from(fd);
        let size = file
            .metadata()
            .map_err(|source| ShmError::System {
                call: "fstat",
                source,
            })?
            .len();
        Self::map(OwnedFd::from(file), mappable_len(size)?)
    }

    fn map(fd: OwnedFd, len: usize) -> Result<Self, ShmError> {
        // SAFETY: asks the kernel for a new shared mapping at an address of its choice; the file
        // is at least `len` bytes and cannot shrink (sealed), so every mapped page stays backed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(ShmError::last_os_error("mmap"));
        }
        match NonNull::new(ptr.cast::<AtomicU8>()) {
            Some(base) => Ok(SharedMemory { fd, base, len }),
            None => {
                // SAFETY: unmaps exactly the mapping just made, which nothing refers to.
                unsafe { libc::munmap(ptr, len) };
                Err(ShmError::BadSize(len as u64))
            }
        }
    }

    /// The address of this process's mapping of the memory, for handing it to an IOMMU
    /// (`VFIO_IOMMU_MAP_DMA`). It stays mapped as long as `self` lives.
    pub fn address(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.len as u64
    }

    /// The memfd; mapping it `MAP_SHARED` shows the same bytes as this memory.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ShmError> {
        let bytes = self.range(offset, buf.len())?;
        for (out, byte) in buf.iter_mut().zip(bytes) {
            *out = byte.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `data` to `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), ShmError> {
        let bytes = self.range(offset, data.len())?;
        for (byte, value) in bytes.iter().zip(data) {
            byte.store(*value, Ordering::Relaxed);
        }
        Ok(())
    }

    fn range(&self, offset: u64, len: usize) -> Result<&[AtomicU8], ShmError> {
        let out_of_bounds = || ShmError::OutOfBounds {
            offset,
            len,
            size: self.size(),
        };
        let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
        let end = start.checked_add(len).ok_or_else(out_of_bounds)?;
        self.bytes().get(start..end).ok_or_else(out_of_bounds)
    }

    fn bytes(&self) -> &[AtomicU8] {
        // SAFETY: `base` is a readable and writable mapping of `len` bytes (`len` ≤ isize::MAX,
        // checked by `mappable_len`) that stays mapped while `self` is borrowed; `AtomicU8` has
        // the size and alignment of `u8` and permits concurrent mutation (module docs).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }
}

impl AsFd for SharedMemory {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly the mapping made in `map`, and no slice from
        // `bytes` outlives the `&self` it came from, so nothing refers to it any more.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// `size` as a mapping length: non-zero and at most `isize::MAX` (a slice's limit).
fn mappable_len(size: u64) -> Result<usize, ShmError> {
    match usize::try_from(size) {
        Ok(len) if len != 0 && isize::try_from(len).is_ok() => Ok(len),
        _ => Err(ShmError::BadSize(size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    fn dup(shm: &SharedMemory) -> OwnedFd {
        shm.as_fd().try_clone_to_owned().unwrap()
    }

    #[test]
    fn starts_zeroed_and_bounds_are_checked() {
        let shm = SharedMemory::new(8192).unwrap();
        assert_eq!(shm.size(), 8192);
        let mut buf = [0xaa; 16];
        shm.read_at(8192 - 16, &mut buf).unwrap();
        assert_eq!(buf, [0; 16]);
        assert!(matches!(
            shm.read_at(8192 - 15, &mut buf),
            Err(ShmError::OutOfBounds { .. })
        ));
        assert!(shm.write_at(u64::MAX, &[1]).is_err());
        assert!(shm.write_at(8192, &[1]).is_err());
        shm.write_at(8192, &[]).unwrap();
        assert!(matches!(SharedMemory::new(0), Err(ShmError::BadSize(0))));
        assert!(SharedMemory::new(u64::MAX).is_err());
    }

    #[test]
    fn a_second_mapping_is_coherent_both_ways() {
        let a = SharedMemory::new(4096 * 3).unwrap();
        let b = SharedMemory::from_fd(dup(&a)).unwrap();
        assert_eq!(b.size(), a.size());
        a.write_at(4095, b"across a page").unwrap();
        let mut buf = [0; 13];
        b.read_at(4095, &mut buf).unwrap();
        assert_eq!(&buf, b"across a page");
        b.write_at(0, b"back").unwrap();
        let mut buf = [0; 4];
        a.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"back");
        // The file itself (what pread on the memfd sees) agrees too.
        let file = File::from(dup(&a));
        let mut buf = [0; 4];
        file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"back");
    }

    #[test]
    fn the_size_is_sealed() {
        let shm = SharedMemory::new(4096).unwrap();
        let file = File::from(dup(&shm));
        assert!(file.set_len(0).is_err());
        assert!(file.set_len(8192).is_err());
        assert_eq!(file.metadata().unwrap().len(), 4096);
    }

    #[test]
    fn unsealed_files_are_refused() {
        let file = File::open("/dev/null").unwrap();
        assert!(matches!(
            SharedMemory::from_fd(file.into()),
            Err(ShmError::NotSealed)
        ));
    }

    #[test]
    fn threads_share_it() {
        let shm = Arc::new(SharedMemory::new(4096).unwrap());
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let shm = shm.clone();
                std::thread::spawn(move || {
                    for i in 0..256u64 {
                        shm.write_at(u64::from(t) * 1024 + i * 4, &[t; 4]).unwrap();
                        // Everyone also reads a region others write; any value is fine.
                        let mut buf = [0; 64];
                        shm.read_at(0, &mut buf).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut buf = vec![0; 4096];
        shm.read_at(0, &mut buf).unwrap();
        for (i, b) in buf.iter().enumerate() {
            assert_eq!(usize::from(*b), i / 1024);
        }
    }
}
