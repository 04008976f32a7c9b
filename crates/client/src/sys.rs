//! Every `unsafe` of the crate: `mmap`/`munmap`, volatile access to mapped memory, `poll`
//! and `sysconf`. Each function here is safe to call: it checks what its `unsafe` block
//! relies on.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};
use std::time::Duration;

/// The host's page size.
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf takes no pointers and has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// An integer that may be read or written volatile: every bit pattern is a valid value.
pub(crate) trait Word: Copy {}

impl Word for u8 {}
impl Word for u16 {}
impl Word for u32 {}
impl Word for u64 {}

/// A `MAP_SHARED` mapping, unmapped on drop. Its memory is shared with other processes (the
/// server, the device), so it is only ever touched through volatile accesses, never through
/// references.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
    read: bool,
    write: bool,
}

/// Why a mapping access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not entirely inside the mapping.
    Outside,
    /// A word not naturally aligned.
    Misaligned,
    /// The mapping lacks `PROT_READ` (for loads) or `PROT_WRITE` (for stores).
    Protection,
}

// SAFETY: the mapping is owned by this value and never aliased by Rust references; volatile
// accesses to shared memory are as valid from any thread as from another process.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` only allows bounds-checked volatile accesses.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` at `offset`, shared, with the given protection.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        read: bool,
        write: bool,
    ) -> io::Result<Mmap> {
        let einval = || io::Error::from_raw_os_error(libc::EINVAL);
        let offset = libc::off_t::try_from(offset).map_err(|_| einval())?;
        if len == 0 {
            return Err(einval());
        }
        let mut prot = libc::PROT_NONE;
        if read {
            prot |= libc::PROT_READ;
        }
        if write {
            prot |= libc::PROT_WRITE;
        }
        // SAFETY: a new mapping at an address the kernel picks (no MAP_FIXED) cannot overlap
        // memory Rust already uses; failure is checked below.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(einval)?;
        Ok(Mmap {
            ptr,
            len,
            read,
            write,
        })
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first byte.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Whether the mapping has `PROT_READ`.
    pub(crate) fn readable(&self) -> bool {
        self.read
    }

    /// Whether the mapping has `PROT_WRITE`.
    pub(crate) fn writable(&self) -> bool {
        self.write
    }

    /// A pointer to the `T` at byte `off`, if it lies inside the mapping and is aligned.
    fn word_ptr<T: Word>(&self, off: usize) -> Result<*mut T, Refused> {
        let end = off.checked_add(size_of::<T>()).ok_or(Refused::Outside)?;
        if end > self.len {
            return Err(Refused::Outside);
        }
        let p = self.ptr.as_ptr().wrapping_add(off).cast::<T>();
        if p.is_aligned() {
            Ok(p)
        } else {
            Err(Refused::Misaligned)
        }
    }

    /// Reads the `T` at byte `off`.
    pub(crate) fn read<T: Word>(&self, off: usize) -> Result<T, Refused> {
        let p = self.word_ptr::<T>(off)?;
        if !self.read {
            return Err(Refused::Protection);
        }
        // SAFETY: `p` is aligned, inside the live mapping, which has PROT_READ; `T` is an
        // integer, valid for any bits.
        Ok(unsafe { p.read_volatile() })
    }

    /// Writes `value` at byte `off`.
    pub(crate) fn write<T: Word>(&self, off: usize, value: T) -> Result<(), Refused> {
        let p = self.word_ptr::<T>(off)?;
        if !self.write {
            return Err(Refused::Protection);
        }
        // SAFETY: `p` is aligned, inside the live mapping, which has PROT_WRITE.
        unsafe { p.write_volatile(value) };
        Ok(())
    }

    /// Copies `dst.len()` bytes at `off` into `dst`, with volatile loads of up to 8 bytes.
    pub(crate) fn copy_to(&self, off: usize, dst: &mut [u8]) -> Result<(), Refused> {
        self.check(off, dst.len(), self.read)?;
        let mut done = 0;
        while let Some(rest) = dst.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = off.checked_add(done).ok_or(Refused::Outside)?;
            // Never load outside the requested range: device memory may have side effects.
            match rest.first_chunk_mut::<8>() {
                Some(chunk) if self.word_ptr::<u64>(at).is_ok() => {
                    *chunk = self.read::<u64>(at)?.to_ne_bytes();
                    done += 8;
                }
                _ => {
                    if let Some(b) = rest.first_mut() {
                        *b = self.read::<u8>(at)?;
                    }
                    done += 1;
                }
            }
        }
        Ok(())
    }

    /// Copies `src` to byte `off`, with volatile stores of up to 8 bytes.
    pub(crate) fn copy_from(&self, off: usize, src: &[u8]) -> Result<(), Refused> {
        self.check(off, src.len(), self.write)?;
        let mut done = 0;
        while let Some(rest) = src.get(done..).filter(|r| !r.is_empty()) {
            let at = off.checked_add(done).ok_or(Refused::Outside)?;
            match rest.first_chunk::<8>() {
                Some(chunk) if self.word_ptr::<u64>(at).is_ok() => {
                    self.write(at, u64::from_ne_bytes(*chunk))?;
                    done += 8;
                }
                _ => {
                    if let Some(&b) = rest.first() {
                        self.write(at, b)?;
                    }
                    done += 1;
                }
            }
        }
        Ok(())
    }

    /// Checks a whole copy up front, so a refused copy transfers nothing.
    fn check(&self, off: usize, len: usize, allowed: bool) -> Result<(), Refused> {
        match off.checked_add(len) {
            Some(end) if end <= self.len => {}
            _ => return Err(Refused::Outside),
        }
        if allowed {
            Ok(())
        } else {
            Err(Refused::Protection)
        }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` come from a successful mmap and are unmapped once, here; no
        // reference into the mapping exists (accesses are volatile copies).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Polls `fd` for `events` for at most `timeout` (forever if `None`). Returns the events
/// reported, 0 on timeout or when a signal interrupted the wait.
pub(crate) fn poll(fd: BorrowedFd<'_>, events: i16, timeout: Option<Duration>) -> io::Result<i16> {
    // Round up, so a wait of less than 1 ms still sleeps instead of spinning.
    let ms = timeout.map_or(-1, |t| {
        i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid, exclusively borrowed pollfd and a count of 1; the kernel writes only
    // its `revents`.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(if n == 0 { 0 } else { p.revents })
}

/// The access mode (`O_RDONLY`, `O_WRONLY` or `O_RDWR`) an fd was opened with.
pub(crate) fn access_mode(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: F_GETFL takes no argument and only reads the status flags of a live fd.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libc::O_ACCMODE)
}
