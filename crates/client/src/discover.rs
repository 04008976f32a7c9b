//! Discovery (SPEC.md §2.3): the whole description in at most two positioned reads.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::ClientError;

/// Bytes of the first discovery read: one page, which holds most descriptions whole.
pub const FIRST_READ_LEN: usize = 4096;

/// Positioned reads, as `pread(2)`: all discovery needs of a device file.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset).map_or(self.len(), |o| o.min(self.len()));
        let src = self.get(start..).unwrap_or(&[]);
        let n = src.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
}

/// Reads and validates the description of a device file: exactly `desc_len` bytes.
///
/// The first read asks for [`FIRST_READ_LEN`] bytes at offset 0. A server returns only
/// description bytes for it; a plain file may return more, which are cut off. If `desc_len`
/// is larger than what came back, a second read fetches `desc_len` bytes at offset 0. A file
/// that returns a short read within the description (which a conforming server never does)
/// costs one more read per short read; one that ends before `desc_len` is
/// [`ClientError::Truncated`].
pub fn read_description<R: ReadAt + ?Sized>(file: &R) -> Result<Vec<u8>, ClientError> {
    let buf = read_description_bytes(file)?;
    devfd_format::parse(&buf)?;
    Ok(buf)
}

/// As [`read_description`] without the final validation: exactly `desc_len` bytes, for a
/// caller that parses them itself (so an open parses its description once).
pub(crate) fn read_description_bytes<R: ReadAt + ?Sized>(file: &R) -> Result<Vec<u8>, ClientError> {
    let mut buf = vec![0u8; FIRST_READ_LEN];
    let got = read_once(file, &mut buf, 0)?;
    buf.truncate(got);
    let desc_len = devfd_format::desc_len_from_prologue(&buf)?;
    if desc_len <= got {
        buf.truncate(desc_len);
    } else {
        buf = vec![0u8; desc_len];
        let got = read_full(file, &mut buf)?;
        if got < desc_len {
            return Err(ClientError::Truncated { desc_len, got });
        }
    }
    Ok(buf)
}

/// One `pread`, retried only when a signal interrupted it before it transferred anything.
fn read_once<R: ReadAt + ?Sized>(
    file: &R,
    buf: &mut [u8],
    offset: u64,
) -> Result<usize, ClientError> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ClientError::Discovery(e)),
            Ok(n) => return Ok(n.min(buf.len())),
        }
    }
}

/// Reads `buf.len()` bytes at offset 0, continuing after short reads; stops at end of file.
fn read_full<R: ReadAt + ?Sized>(file: &R, buf: &mut [u8]) -> Result<usize, ClientError> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match read_once(file, rest, done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}
