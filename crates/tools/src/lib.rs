//! The pieces behind the `devfd` command line: the TOML description language
//! ([`describe`]), the views of a description ([`inspect`]) and reading a description from a
//! file or device file with at most two reads ([`read_description`]).

pub mod describe;
pub mod inspect;

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use devfd_format::wire::{MAX_DESC_LEN, PROLOGUE_LEN};

/// Reads a description the way SPEC.md §2.3 says: the prologue, then `desc_len` bytes.
///
/// Works on plain files and on device files (it never reads past the description). A file too
/// short or not a description is returned as is, for the parser to explain.
pub fn read_description(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut prologue = vec![0; PROLOGUE_LEN];
    let got = read_at_most(&file, &mut prologue, 0)?;
    prologue.truncate(got);
    let Ok(len) = devfd_format::desc_len_from_prologue(&prologue) else {
        return Ok(prologue);
    };
    let mut bytes = vec![0; len.min(MAX_DESC_LEN)];
    let got = read_at_most(&file, &mut bytes, 0)?;
    bytes.truncate(got);
    Ok(bytes)
}

/// Reads a description from standard input (all of it).
pub fn read_stdin() -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io::stdin()
        .take(MAX_DESC_LEN as u64 * 2)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
