//! Discovery (SPEC.md §2.3): at most two reads, truncation to desc_len, clear errors.

mod common;

use std::cell::{Cell, RefCell};
use std::io;

use devfd_client::{ClientError, DeviceFile, FIRST_READ_LEN, ReadAt, read_description};
use devfd_format::ErrorKind;

/// How a fake device file answers reads.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// A plain file: bytes up to its end.
    Plain,
    /// A server: only description bytes for a read starting in the description (§6.1).
    Server,
    /// A file that returns at most this many bytes per read.
    Dribble(usize),
}

/// A file in memory that counts the reads made of it.
struct Counting {
    bytes: Vec<u8>,
    answer: Answer,
    reads: Cell<usize>,
    log: RefCell<Vec<(u64, usize)>>,
}

impl Counting {
    fn new(bytes: Vec<u8>, answer: Answer) -> Self {
        Counting {
            bytes,
            answer,
            reads: Cell::new(0),
            log: RefCell::new(Vec::new()),
        }
    }
}

impl ReadAt for Counting {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.reads.set(self.reads.get() + 1);
        self.log.borrow_mut().push((offset, buf.len()));
        let end = match self.answer {
            Answer::Plain => self.bytes.len(),
            Answer::Server => devfd_format::desc_len_from_prologue(&self.bytes).unwrap(),
            Answer::Dribble(_) => self.bytes.len(),
        };
        let mut n = self.bytes[..end].read_at(buf, offset)?;
        if let Answer::Dribble(max) = self.answer {
            n = n.min(max);
        }
        Ok(n)
    }
}

#[test]
fn small_description_takes_one_read() {
    let edu = std::fs::read(common::golden("edu.bin")).unwrap();
    assert_eq!(edu.len(), 340);
    for answer in [Answer::Plain, Answer::Server] {
        let f = Counting::new(edu.clone(), answer);
        let got = read_description(&f).unwrap();
        assert_eq!(got, edu);
        assert_eq!(f.reads.get(), 1);
        assert_eq!(*f.log.borrow(), vec![(0, FIRST_READ_LEN)]);
    }
}

#[test]
fn large_description_takes_two_reads() {
    let big = common::big_description(6000);
    assert!(big.len() >= 6000 && big.len() > FIRST_READ_LEN);
    for answer in [Answer::Plain, Answer::Server] {
        let f = Counting::new(big.clone(), answer);
        let got = read_description(&f).unwrap();
        assert_eq!(got, big);
        assert_eq!(f.reads.get(), 2);
        assert_eq!(*f.log.borrow(), vec![(0, FIRST_READ_LEN), (0, big.len())]);
    }
}

#[test]
fn bytes_past_desc_len_are_cut_off() {
    let mut edu = std::fs::read(common::golden("edu.bin")).unwrap();
    edu.extend_from_slice(&[0xAA; 10_000]);
    let f = Counting::new(edu.clone(), Answer::Plain);
    let got = read_description(&f).unwrap();
    assert_eq!(got, edu[..340]);
    assert_eq!(f.reads.get(), 1);

    // A large description with trailing bytes still takes exactly two reads.
    let mut big = common::big_description(6000);
    let len = big.len();
    big.extend_from_slice(&[0x55; 5000]);
    let f = Counting::new(big.clone(), Answer::Plain);
    assert_eq!(read_description(&f).unwrap(), big[..len]);
    assert_eq!(f.reads.get(), 2);
}

#[test]
fn short_reads_are_continued() {
    let big = common::big_description(6000);
    let f = Counting::new(big.clone(), Answer::Dribble(1000));
    assert_eq!(read_description(&f).unwrap(), big);
    // One short first read, then desc_len in 1000-byte pieces.
    assert_eq!(f.reads.get(), 1 + big.len().div_ceil(1000));
}

#[test]
fn truncated_file_is_reported() {
    let big = common::big_description(6000);
    let cut = big[..5000].to_vec();
    let f = Counting::new(cut, Answer::Plain);
    match read_description(&f) {
        Err(ClientError::Truncated { desc_len, got }) => {
            assert_eq!((desc_len, got), (big.len(), 5000));
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // The short second read is continued once, which finds the end of the file.
    assert_eq!(f.reads.get(), 3);

    // Cut inside the first page: desc_len is known, the bytes are not there.
    let edu = std::fs::read(common::golden("edu.bin")).unwrap();
    let f = Counting::new(edu[..200].to_vec(), Answer::Plain);
    assert!(matches!(
        read_description(&f),
        Err(ClientError::Truncated {
            desc_len: 340,
            got: 200
        })
    ));
}

#[test]
fn not_a_description() {
    let f = Counting::new(b"hello, world\n".repeat(10), Answer::Plain);
    let err = read_description(&f).unwrap_err();
    assert!(matches!(err, ClientError::Format(e) if matches!(e.kind, ErrorKind::BadMagic { .. })));
    assert_eq!(f.reads.get(), 1);

    let f = Counting::new(Vec::new(), Answer::Plain);
    let err = read_description(&f).unwrap_err();
    assert!(matches!(err, ClientError::Format(e) if matches!(e.kind, ErrorKind::TooShort { .. })));
    // The cause is the source, not repeated in the message (printed once by a reporter).
    assert_eq!(err.to_string(), "invalid description");
    let cause = std::error::Error::source(&err).expect("the format error is the source");
    assert!(cause.to_string().contains("too short") || !cause.to_string().is_empty());
}

#[test]
fn invalid_description_is_rejected_whole() {
    // Flip a region's flags to an unknown must-understand bit: discovery succeeds, parse fails.
    let mut edu = std::fs::read(common::golden("edu.bin")).unwrap();
    edu[0x64] |= 0x80;
    let f = Counting::new(edu, Answer::Plain);
    let err = read_description(&f).unwrap_err();
    assert!(
        matches!(err, ClientError::Format(e) if matches!(e.kind, ErrorKind::UnknownFlags { .. }))
    );
}

#[test]
fn read_errors_are_reported() {
    struct Failing;
    impl ReadAt for Failing {
        fn read_at(&self, _: &mut [u8], _: u64) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
    }
    let err = read_description(&Failing).unwrap_err();
    assert!(matches!(err, ClientError::Discovery(_)));
    assert_eq!(err.errno(), Some(libc::EIO));
}

#[test]
fn open_golden_files() {
    for (name, len) in [
        ("edu.bin", 340),
        ("pl031.bin", 348),
        ("nvme-like.bin", 452),
        ("minimal-pci.bin", 84),
        ("unknown-records.bin", 204),
    ] {
        let dev = DeviceFile::open(common::golden(name)).unwrap();
        assert_eq!(dev.desc_len(), len, "{name}");
        assert_eq!(dev.description_bytes().len(), len);
        assert_eq!(dev.description().len(), len);
    }
}

#[test]
fn open_missing_file() {
    let err = DeviceFile::open("/nonexistent/devfd/edu0").unwrap_err();
    assert!(matches!(err, ClientError::Open { .. }));
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert!(err.to_string().contains("/nonexistent/devfd/edu0"), "{err}");
}

#[test]
fn open_large_description_file() {
    let dir = tempfile::tempdir().unwrap();
    let big = common::big_description(6000);
    let path = common::write_padded(dir.path(), "big", &big, 0);
    let dev = DeviceFile::open(&path).unwrap();
    assert_eq!(dev.description_bytes(), &big[..]);
    assert!(dev.is_writable());
    assert!(dev.regions().len() > 20);
}
