//! The server's steady state allocates nothing per message: REGION_READ and REGION_WRITE
//! round trips, the hot path of a guest driving a device, run with a counting global
//! allocator and must not allocate at all (in any thread of this process). Also here: a
//! client stalled inside a message is dropped.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout goes to the system allocator as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for alloc and dealloc.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocation counter is global: tests of this file run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes a message (header + payload) and reads the whole reply into `reply`; returns its
/// length. `out` is a reused buffer.
fn call(
    s: &mut UnixStream,
    id: u16,
    command: u16,
    payload: &[u8],
    out: &mut [u8],
    reply: &mut [u8],
) -> usize {
    let size = 16 + payload.len();
    out[0..2].copy_from_slice(&id.to_le_bytes());
    out[2..4].copy_from_slice(&command.to_le_bytes());
    out[4..8].copy_from_slice(&(size as u32).to_le_bytes());
    out[8..16].fill(0);
    out[16..size].copy_from_slice(payload);
    s.write_all(&out[..size]).unwrap();
    s.read_exact(&mut reply[..16]).unwrap();
    let len = u32::from_le_bytes(reply[4..8].try_into().unwrap()) as usize;
    s.read_exact(&mut reply[16..len]).unwrap();
    assert_eq!(u16::from_le_bytes(reply[0..2].try_into().unwrap()), id);
    assert_eq!(reply[8] & 0x20, 0, "error reply to command {command}");
    len
}

#[test]
fn region_reads_and_writes_allocate_nothing() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let edu: Arc<dyn devfd_device::Device> =
        Arc::new(devfd_emu::Edu::new(devfd_emu::EduOptions::default()).unwrap());
    let server = devfd_vfio_user::Server::new(edu).unwrap();
    let (mut client, theirs) = UnixStream::pair().unwrap();
    let thread = std::thread::spawn(move || server.serve_connection(theirs).unwrap());
    let mut out = vec![0u8; 4096];
    let mut reply = vec![0u8; 4096];
    let mut version = vec![0u8, 0, 0, 0];
    version.extend_from_slice(b"{}\0");
    call(&mut client, 1, 1, &version, &mut out, &mut reply);

    let mut read = [0u8; 16];
    read[8..12].copy_from_slice(&0u32.to_le_bytes()); // region 0
    read[12..16].copy_from_slice(&4u32.to_le_bytes());
    let mut write = [0u8; 20];
    write[0..8].copy_from_slice(&4u64.to_le_bytes()); // liveness register
    write[12..16].copy_from_slice(&4u32.to_le_bytes());
    let rounds = |client: &mut UnixStream, out: &mut [u8], reply: &mut [u8], n: u32| {
        for i in 0..n {
            let n = call(client, 2, 9, &read, out, reply);
            assert_eq!(n, 36);
            assert_eq!(
                u32::from_le_bytes(reply[32..36].try_into().unwrap()),
                0x0100_00ed
            );
            let mut w = write;
            w[16..20].copy_from_slice(&i.to_le_bytes());
            assert_eq!(call(client, 3, 10, &w, out, reply), 32);
        }
    };
    // Warm up: the first messages size the server's reused buffers.
    rounds(&mut client, &mut out, &mut reply, 100);
    // The counter counts: one allocation here is seen.
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(vec![0u8; 64]));
    assert_eq!(ALLOCATIONS.swap(0, Ordering::SeqCst), 1);
    rounds(&mut client, &mut out, &mut reply, 1000);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    drop(client);
    thread.join().unwrap();
    assert_eq!(allocations, 0, "allocations during 2000 round trips");
}

/// A client that sends half a message and stalls is dropped after the stall timeout; one
/// that is merely idle between messages is not.
#[test]
fn a_client_stalled_inside_a_message_is_dropped() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let edu: Arc<dyn devfd_device::Device> =
        Arc::new(devfd_emu::Edu::new(devfd_emu::EduOptions::default()).unwrap());
    let mut server = devfd_vfio_user::Server::new(edu).unwrap();
    server.set_stall_timeout(std::time::Duration::from_millis(200));
    let (mut client, theirs) = UnixStream::pair().unwrap();
    let thread = std::thread::spawn(move || server.serve_connection(theirs).unwrap());
    let mut out = vec![0u8; 64];
    let mut reply = vec![0u8; 4096];
    let mut version = vec![0u8, 0, 0, 0];
    version.extend_from_slice(b"{}\0");
    // Idle for longer than the timeout between messages: still served.
    std::thread::sleep(std::time::Duration::from_millis(400));
    call(&mut client, 1, 1, &version, &mut out, &mut reply);
    // Half a header, then nothing.
    client.write_all(&[9, 0, 9, 0, 32, 0, 0, 0]).unwrap();
    let started = std::time::Instant::now();
    let end = thread.join().unwrap();
    assert!(
        matches!(&end, devfd_vfio_user::ConnectionEnd::Dropped(why) if why.contains("stopped 8 bytes into a message")),
        "{end:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
