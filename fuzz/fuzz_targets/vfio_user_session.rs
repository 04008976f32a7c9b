//! A whole hostile session: the input is the byte stream a client sends to devfd's vfio-user
//! server (serving the emulated edu) over a real socket. The server must never panic, must
//! end the connection when the stream ends, and must leave the device usable for the next
//! client.
#![no_main]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};

use devfd_device::Device;
use libfuzzer_sys::fuzz_target;

fn server() -> &'static Arc<devfd_vfio_user::Server> {
    static SERVER: OnceLock<Arc<devfd_vfio_user::Server>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let edu: Arc<dyn Device> =
            Arc::new(devfd_emu::Edu::new(devfd_emu::EduOptions::default()).unwrap());
        Arc::new(devfd_vfio_user::Server::new(edu).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let server = server().clone();
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let session = std::thread::spawn(move || server.serve_connection(theirs));
    // The server may close early (a header it cannot trust): a failed write is fine.
    let _ = ours.write_all(data);
    let _ = ours.shutdown(std::net::Shutdown::Write);
    let mut replies = Vec::new();
    let _ = ours.read_to_end(&mut replies);
    drop(ours);
    let _ = session.join().expect("the server panicked");
});
