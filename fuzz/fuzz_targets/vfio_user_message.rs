//! vfio-user messages from an untrusted client: the header check, then the command decoder
//! with any fd count. Neither may panic; what a decoded command borrows stays inside the
//! payload, and counts it reports match the bytes that came.
#![no_main]

use devfd_vfio_user::message::{Capabilities, Command, MessageHeader, decode_command};
use devfd_vfio_user::wire::{HEADER_LEN, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&fds, data)) = data.split_first() else {
        return;
    };
    let Some(raw) = data.get(..HEADER_LEN) else {
        return;
    };
    let raw: &[u8; HEADER_LEN] = raw.try_into().unwrap();
    let Ok(header) = MessageHeader::parse(raw, MAX_MESSAGE) else {
        return;
    };
    let body = &data[HEADER_LEN..];
    let payload = &body[..header.payload_len().min(body.len())];
    match decode_command(&header, payload, usize::from(fds % 40)) {
        Ok(Command::RegionWrite { data, .. }) => assert!(data.len() <= payload.len()),
        Ok(Command::SetIrqs { bools, count, .. }) => {
            assert!(bools.is_empty() || bools.len() == count as usize)
        }
        Ok(Command::RegionWriteMulti { writes }) => assert!(writes.len() * 24 < payload.len()),
        Ok(Command::RegionRead { count, .. }) => assert!(count as usize <= 1 << 20),
        _ => {}
    }
    // The capabilities parser alone, on the raw bytes.
    let _ = Capabilities::parse(body);
});
