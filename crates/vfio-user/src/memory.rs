//! A client's memory as the device's DMA space: the DMA_MAP regions, each mapped from the fd
//! that came with it, or reached through DMA_READ/DMA_WRITE messages when none did.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, PoisonError, RwLock};

use devfd_device::{DmaFault, DmaSpace};
use zerocopy::IntoBytes;

use crate::channel::Channel;
use crate::sys::Mapping;
use crate::wire::*;

/// How a mapping's bytes are reached.
#[derive(Debug)]
enum Backing {
    /// Mapped from the client's fd (a memfd sealed against shrinking).
    Mapped(Mapping),
    /// Read and written with pread/pwrite on the client's fd, which could shrink under a
    /// mapping: a transfer past its end then fails instead of raising SIGBUS.
    File(std::fs::File),
    /// Through DMA_READ/DMA_WRITE messages.
    Messages,
}

#[derive(Debug)]
struct Entry {
    address: u64,
    size: u64,
    flags: u32,
    backing: Backing,
    /// Where the mapping starts in a file backing.
    file_offset: u64,
}

impl Entry {
    fn end(&self) -> u64 {
        self.address.saturating_add(self.size)
    }
}

/// Memory of the client reached from here: mapped, or through its file.
enum Local<'a> {
    Mapping(&'a Mapping),
    /// The file and where the mapping starts in it.
    File(&'a std::fs::File, u64),
}

impl Local<'_> {
    fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        use std::os::unix::fs::FileExt;
        match self {
            Local::Mapping(m) => m.read(offset, buf),
            Local::File(f, base) => base
                .checked_add(offset as u64)
                .is_some_and(|at| f.read_exact_at(buf, at).is_ok()),
        }
    }

    fn write(&self, offset: usize, data: &[u8]) -> bool {
        use std::os::unix::fs::FileExt;
        match self {
            Local::Mapping(m) => m.write(offset, data),
            Local::File(f, base) => base
                .checked_add(offset as u64)
                .is_some_and(|at| f.write_all_at(data, at).is_ok()),
        }
    }
}

/// Why a DMA_MAP or DMA_UNMAP is refused, as an errno.
pub type Errno = i32;

/// The DMA_MAP regions of one client.
#[derive(Debug)]
pub struct ClientMemory {
    entries: RwLock<Vec<Entry>>,
    channel: Arc<Channel>,
}

impl ClientMemory {
    /// No memory yet; DMA by messages goes over `channel`.
    pub fn new(channel: Arc<Channel>) -> Self {
        ClientMemory {
            entries: RwLock::new(Vec::new()),
            channel,
        }
    }

    /// Adds a mapping (already checked for shape by the decoder): `EEXIST` if it overlaps
    /// one, `ENOSPC` past [`MAX_DMA_MAPS`], the `mmap` errno if the fd cannot be mapped.
    pub fn map(
        &self,
        address: u64,
        size: u64,
        offset: u64,
        flags: u32,
        fd: Option<OwnedFd>,
    ) -> Result<(), Errno> {
        let backing = match fd {
            Some(fd) => Backing::Mapped({
                // A regular file (QEMU's memfd) shorter than the mapping would raise SIGBUS
                // on the first transfer past its end: refuse it now. (A client that shrinks
                // its file later still can; that is true of any shared mapping.)
                let file = std::fs::File::from(fd);
                let meta = file
                    .metadata()
                    .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?;
                let end = offset.checked_add(size).ok_or(libc::EINVAL)?;
                // Memory comes as a regular file (a memfd, tmpfs or hugetlbfs file); an eventfd,
                // a socket or a device is not memory to map or to read and write.
                if !meta.file_type().is_file() {
                    return Err(libc::ENODEV);
                }
                if meta.len() < end {
                    return Err(libc::EINVAL);
                }
                if !crate::sys::sealed_against_shrinking(file.as_fd()) {
                    return self.insert(address, size, flags, Backing::File(file), offset);
                }
                Mapping::new(
                    file.as_fd(),
                    offset,
                    size,
                    flags & DMA_FLAG_READ != 0,
                    flags & DMA_FLAG_WRITE != 0,
                )
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?
            }),
            None => Backing::Messages,
        };
        self.insert(address, size, flags, backing, offset)
    }

    /// Adds a mapping with its backing (`offset`: where it starts in a file backing).
    fn insert(
        &self,
        address: u64,
        size: u64,
        flags: u32,
        backing: Backing,
        offset: u64,
    ) -> Result<(), Errno> {
        let end = address.checked_add(size).ok_or(libc::EINVAL)?;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_DMA_MAPS {
            return Err(libc::ENOSPC);
        }
        let at = entries.partition_point(|e| e.address < address);
        let overlaps_prev = at
            .checked_sub(1)
            .and_then(|i| entries.get(i))
            .is_some_and(|e| e.end() > address);
        let overlaps_next = entries.get(at).is_some_and(|e| e.address < end);
        if overlaps_prev || overlaps_next {
            return Err(libc::EEXIST);
        }
        entries.insert(
            at,
            Entry {
                address,
                size,
                flags,
                backing,
                file_offset: offset,
            },
        );
        Ok(())
    }

    /// Removes the mapping at exactly `address` and `size` (waiting for transfers in
    /// flight); `ENOENT` if there is none.
    pub fn unmap(&self, address: u64, size: u64) -> Result<(), Errno> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let i = entries
            .iter()
            .position(|e| e.address == address && e.size == size)
            .ok_or(libc::ENOENT)?;
        entries.remove(i);
        Ok(())
    }

    /// Removes every mapping.
    pub fn unmap_all(&self) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs over the pieces of `[address, address + len)`, each inside one mapping that
    /// allows `need`: `mapped(mapping, offset in it, done, n)` with the table locked (so an
    /// UNMAP waits for the copy), `by_message(bus address, done, n)` with it unlocked (its
    /// reply comes through the thread that handles UNMAP). A gap or a missing permission
    /// faults.
    fn each_piece(
        &self,
        address: u64,
        len: usize,
        need: u32,
        mut mapped: impl FnMut(Local<'_>, usize, usize, usize) -> bool,
        mut by_message: impl FnMut(u64, usize, usize) -> bool,
    ) -> Result<(), DmaFault> {
        let fault = DmaFault { address, len };
        // All or nothing: the whole range must be mapped with `need` before a byte moves.
        if !self.covered(address, len, need) {
            return Err(fault);
        }
        let mut done = 0usize;
        while done < len {
            let at = address.checked_add(done as u64).ok_or(fault)?;
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            let i = entries.partition_point(|e| e.address <= at);
            let e = i.checked_sub(1).and_then(|i| entries.get(i)).ok_or(fault)?;
            if at >= e.end() || e.flags & need != need {
                return Err(fault);
            }
            // at lies in [e.address, e.end()) and done < len: neither difference wraps.
            let n = usize::try_from(e.end().saturating_sub(at))
                .unwrap_or(usize::MAX)
                .min(len.saturating_sub(done));
            let offset = usize::try_from(at.saturating_sub(e.address));
            let ok = match &e.backing {
                Backing::Mapped(m) => {
                    offset.is_ok_and(|offset| mapped(Local::Mapping(m), offset, done, n))
                }
                Backing::File(f) => offset
                    .is_ok_and(|offset| mapped(Local::File(f, e.file_offset), offset, done, n)),
                Backing::Messages => {
                    drop(entries);
                    by_message(at, done, n)
                }
            };
            if !ok || n == 0 {
                return Err(fault);
            }
            done = done.saturating_add(n);
        }
        Ok(())
    }

    /// Whether `[address, address + len)` lies in mappings that all allow `need`.
    fn covered(&self, address: u64, len: usize, need: u32) -> bool {
        let Some(end) = address.checked_add(len as u64) else {
            return false;
        };
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut at = address;
        while at < end {
            let i = entries.partition_point(|e| e.address <= at);
            match i.checked_sub(1).and_then(|i| entries.get(i)) {
                Some(e) if at < e.end() && e.flags & need == need => at = e.end(),
                _ => return false,
            }
        }
        true
    }

    fn by_message_read(&self, address: u64, buf: &mut [u8]) -> bool {
        let max = usize::try_from(self.channel.peer_max_xfer()).unwrap_or(usize::MAX);
        let mut done = 0usize;
        for chunk in buf.chunks_mut(max.max(1)) {
            let head = DmaAccess {
                address: address.wrapping_add(done as u64).into(),
                count: (chunk.len() as u64).into(),
            };
            match self.channel.request(CMD_DMA_READ, &[head.as_bytes()]) {
                Ok(reply) => match reply.get(16..) {
                    Some(data) if data.len() == chunk.len() => chunk.copy_from_slice(data),
                    _ => return false,
                },
                Err(e) => {
                    log::warn!("DMA_READ of {} bytes at {address:#x}: {e}", chunk.len());
                    return false;
                }
            }
            // The pieces lie inside one checked mapping: the addresses never wrap.
            done = done.saturating_add(chunk.len());
        }
        true
    }

    fn by_message_write(&self, address: u64, data: &[u8]) -> bool {
        let max = usize::try_from(self.channel.peer_max_xfer()).unwrap_or(usize::MAX);
        let mut done = 0usize;
        for chunk in data.chunks(max.max(1)) {
            let head = DmaAccess {
                address: address.wrapping_add(done as u64).into(),
                count: (chunk.len() as u64).into(),
            };
            if let Err(e) = self
                .channel
                .request(CMD_DMA_WRITE, &[head.as_bytes(), chunk])
            {
                log::warn!("DMA_WRITE of {} bytes at {address:#x}: {e}", chunk.len());
                return false;
            }
            // The pieces lie inside one checked mapping: the addresses never wrap.
            done = done.saturating_add(chunk.len());
        }
        true
    }
}

impl DmaSpace for ClientMemory {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let len = buf.len();
        let buf = std::cell::RefCell::new(buf);
        self.each_piece(
            address,
            len,
            DMA_FLAG_READ,
            |m, offset, done, n| {
                let mut b = buf.borrow_mut();
                b.get_mut(done..done.saturating_add(n))
                    .is_some_and(|p| m.read(offset, p))
            },
            |bus, done, n| {
                let mut b = buf.borrow_mut();
                b.get_mut(done..done.saturating_add(n))
                    .is_some_and(|p| self.by_message_read(bus, p))
            },
        )
    }

    fn write(&self, address: u64, data: &[u8]) -> Result<(), DmaFault> {
        self.each_piece(
            address,
            data.len(),
            DMA_FLAG_WRITE,
            |m, offset, done, n| {
                data.get(done..done.saturating_add(n))
                    .is_some_and(|p| m.write(offset, p))
            },
            |bus, done, n| {
                data.get(done..done.saturating_add(n))
                    .is_some_and(|p| self.by_message_write(bus, p))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devfd_emu::SharedMemory;

    fn memory() -> (ClientMemory, SharedMemory) {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ram = SharedMemory::new(0x4000).unwrap();
        let m = ClientMemory::new(Arc::new(Channel::new(a)));
        let fd = ram.as_fd().try_clone_to_owned().unwrap();
        m.map(
            0x10_0000,
            0x2000,
            0,
            DMA_FLAG_READ | DMA_FLAG_WRITE,
            Some(fd),
        )
        .unwrap();
        (m, ram)
    }

    #[test]
    fn a_transfer_that_leaves_the_mappings_moves_nothing() {
        let (m, ram) = memory();
        // The last 8 bytes are mapped, the next 8 are not: nothing is written.
        let fault = m.write(0x10_1ff8, &[0xaa; 16]).unwrap_err();
        assert_eq!((fault.address, fault.len), (0x10_1ff8, 16));
        let mut b = [0u8; 8];
        ram.read_at(0x1ff8, &mut b).unwrap();
        assert_eq!(b, [0; 8]);
        m.write(0x10_1ff8, &[0xbb; 8]).unwrap();
        ram.read_at(0x1ff8, &mut b).unwrap();
        assert_eq!(b, [0xbb; 8]);
    }

    #[test]
    fn permissions_overlaps_and_short_files_are_refused() {
        let (m, ram) = memory();
        let fd = || Some(ram.as_fd().try_clone_to_owned().unwrap());
        assert_eq!(
            m.map(0x10_1000, 0x1000, 0, DMA_FLAG_READ, fd()),
            Err(libc::EEXIST)
        );
        // The file is 16 KiB: a mapping past its end is refused.
        assert_eq!(
            m.map(0x20_0000, 0x1000, 0x4000, DMA_FLAG_READ, fd()),
            Err(libc::EINVAL)
        );
        m.map(0x20_0000, 0x1000, 0x3000, DMA_FLAG_READ, fd())
            .unwrap();
        // Read-only: the device may read, not write.
        assert!(m.write(0x20_0000, &[1]).is_err());
        let mut b = [0u8; 1];
        m.read(0x20_0000, &mut b).unwrap();
        assert_eq!(m.unmap(0x20_0000, 0x2000), Err(libc::ENOENT));
        m.unmap(0x20_0000, 0x1000).unwrap();
        assert!(m.read(0x20_0000, &mut b).is_err());
        assert_eq!(m.len(), 1);
    }
}
