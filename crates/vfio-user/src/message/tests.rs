//! The decoder: one test per kind of damage, each checking the error names the command,
//! the field and its byte offset; and a property test that no input panics.

use super::*;

fn header(command: u16, payload_len: usize, flags: u32) -> MessageHeader {
    MessageHeader {
        id: 7,
        command,
        size: (HEADER_LEN + payload_len) as u32,
        flags,
        error: 0,
    }
}

fn decode(command: u16, payload: &[u8], fds: usize) -> Result<Command<'_>, ProtocolError> {
    decode_command(&header(command, payload.len(), 0), payload, fds)
}

fn le(parts: &[u64], widths: &[usize]) -> Vec<u8> {
    parts
        .iter()
        .zip(widths)
        .flat_map(|(v, w)| v.to_le_bytes()[..*w].to_vec())
        .collect()
}

fn field_of(e: ProtocolError) -> (&'static str, usize) {
    match e {
        ProtocolError::BadField { field, offset, .. } => (field, offset),
        other => panic!("not a field error: {other:?}"),
    }
}

#[test]
fn headers_with_bad_sizes_or_flags_are_refused() {
    let raw = |size: u32, flags: u32| {
        let mut b = [0u8; HEADER_LEN];
        b[4..8].copy_from_slice(&size.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b
    };
    assert!(matches!(
        MessageHeader::parse(&raw(15, 0), MAX_MESSAGE),
        Err(ProtocolError::BadSize { size: 15, .. })
    ));
    assert!(matches!(
        MessageHeader::parse(&raw(MAX_MESSAGE as u32 + 1, 0), MAX_MESSAGE),
        Err(ProtocolError::BadSize { .. })
    ));
    assert!(matches!(
        MessageHeader::parse(&raw(16, 0x40), MAX_MESSAGE),
        Err(ProtocolError::BadFlags { flags: 0x40 })
    ));
    assert!(matches!(
        MessageHeader::parse(&raw(16, 2), MAX_MESSAGE),
        Err(ProtocolError::BadFlags { flags: 2 })
    ));
    let h = MessageHeader::parse(&raw(16, FLAGS_REPLY | FLAGS_ERROR), MAX_MESSAGE).unwrap();
    assert!(h.is_reply());
    assert_eq!(h.error(), Some(0));
}

#[test]
fn version_takes_json_capabilities_with_defaults() {
    let mut p = le(&[0, 1], &[2, 2]);
    p.extend_from_slice(
        br#"{"capabilities":{"max_msg_fds":8,"pgsizes":4096,"migration":{"pgsize":4096}}}"#,
    );
    p.push(0);
    let Command::Version {
        major,
        minor,
        capabilities,
    } = decode(CMD_VERSION, &p, 0).unwrap()
    else {
        panic!()
    };
    assert_eq!((major, minor), (0, 1));
    assert_eq!(capabilities.max_msg_fds, 8);
    assert_eq!(capabilities.max_data_xfer_size, 1 << 20);
    // No JSON at all is allowed.
    assert!(decode(CMD_VERSION, &le(&[0, 0], &[2, 2]), 0).is_ok());
    for bad in [
        &b"[1]\0"[..],
        br#"{"capabilities":[]}"#,
        br#"{"capabilities":{"max_msg_fds":-1}}"#,
        br#"{"capabilities":{"max_msg_fds":1.5}}"#,
        br#"{"capabilities":{"write_multiple":1}}"#,
        br#"{"capabilities":{"max_data_xfer_size":0}}"#,
        b"{}\0junk",
        b"\xff\xfe\0",
    ] {
        let mut p = le(&[0, 0], &[2, 2]);
        p.extend_from_slice(bad);
        assert!(
            matches!(
                decode(CMD_VERSION, &p, 0),
                Err(ProtocolError::Capabilities(_))
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // What devfd answers is short, NUL-terminated, and parses back.
    let ours = Capabilities::default().to_json();
    assert_eq!(ours.last(), Some(&0));
    assert!(ours.len() < 120);
    assert_eq!(Capabilities::parse(&ours).unwrap(), Capabilities::default());
}

#[test]
fn short_payloads_name_the_command_and_the_size() {
    for (cmd, need) in [
        (CMD_DMA_MAP, 32),
        (CMD_DMA_UNMAP, 24),
        (CMD_DEVICE_GET_INFO, 16),
        (CMD_DEVICE_GET_REGION_INFO, 32),
        (CMD_DEVICE_GET_IRQ_INFO, 16),
        (CMD_DEVICE_SET_IRQS, 20),
        (CMD_REGION_READ, 16),
        (CMD_REGION_WRITE, 16),
    ] {
        let e = decode(cmd, &[0u8; 4], 0).unwrap_err();
        assert_eq!(
            e,
            ProtocolError::Short {
                command: command_name(cmd),
                need,
                got: 4
            }
        );
    }
}

#[test]
fn dma_map_checks_flags_size_alignment_and_fds() {
    let map = |flags: u64, offset: u64, address: u64, size: u64| {
        le(&[32, flags, offset, address, size], &[4, 4, 8, 8, 8])
    };
    assert!(matches!(
        decode(CMD_DMA_MAP, &map(3, 0, 0x10_0000, 0x1000), 1).unwrap(),
        Command::DmaMap { with_fd: true, .. }
    ));
    assert_eq!(
        field_of(decode(CMD_DMA_MAP, &map(4, 0, 0, 0x1000), 0).unwrap_err()),
        ("flags", 20)
    );
    assert_eq!(
        field_of(decode(CMD_DMA_MAP, &map(1, 0, 0, 0), 0).unwrap_err()),
        ("size", 40)
    );
    assert_eq!(
        field_of(decode(CMD_DMA_MAP, &map(1, 0, 0x10, 0x1000), 0).unwrap_err()),
        ("address", 32)
    );
    assert_eq!(
        field_of(decode(CMD_DMA_MAP, &map(1, 0, u64::MAX - 0xfff, 0x2000), 0).unwrap_err()),
        ("size", 40)
    );
    assert_eq!(
        field_of(decode(CMD_DMA_MAP, &map(1, 8, 0, 0x1000), 1).unwrap_err()),
        ("offset", 24)
    );
    assert!(matches!(
        decode(CMD_DMA_MAP, &map(1, 0, 0, 0x1000), 2),
        Err(ProtocolError::Fds { got: 2, .. })
    ));
}

#[test]
fn dma_unmap_refuses_dirty_bitmaps_and_half_unmap_all() {
    let unmap = |flags: u64, address: u64| le(&[24, flags, address, 0x1000], &[4, 4, 8, 8]);
    assert!(matches!(
        decode(CMD_DMA_UNMAP, &unmap(0, 0x1000), 0).unwrap(),
        Command::DmaUnmap { all: false, .. }
    ));
    assert_eq!(
        field_of(decode(CMD_DMA_UNMAP, &unmap(1, 0), 0).unwrap_err()),
        ("flags", 20)
    );
    assert_eq!(
        field_of(decode(CMD_DMA_UNMAP, &unmap(2, 0x1000), 0).unwrap_err()),
        ("address", 24)
    );
    assert!(matches!(
        decode(CMD_DMA_UNMAP, &unmap(0, 0), 1),
        Err(ProtocolError::Fds { .. })
    ));
}

#[test]
fn set_irqs_needs_one_data_and_one_action_and_matching_data() {
    let set =
        |flags: u64, start: u64, count: u64| le(&[20, flags, 0, start, count], &[4, 4, 4, 4, 4]);
    let eventfd_trigger = IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER;
    assert!(decode(CMD_DEVICE_SET_IRQS, &set(eventfd_trigger.into(), 0, 2), 2).is_ok());
    // No fds de-assigns.
    assert!(decode(CMD_DEVICE_SET_IRQS, &set(eventfd_trigger.into(), 0, 2), 0).is_ok());
    assert!(matches!(
        decode(CMD_DEVICE_SET_IRQS, &set(eventfd_trigger.into(), 0, 2), 1),
        Err(ProtocolError::Fds { got: 1, .. })
    ));
    let two_actions = IRQ_SET_DATA_NONE | IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK;
    assert_eq!(
        field_of(decode(CMD_DEVICE_SET_IRQS, &set(two_actions.into(), 0, 1), 0).unwrap_err()),
        ("flags", 20)
    );
    assert_eq!(
        field_of(decode(CMD_DEVICE_SET_IRQS, &set(1 << 9, 0, 1), 0).unwrap_err()),
        ("flags", 20)
    );
    let none_trigger = u64::from(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER);
    assert_eq!(
        field_of(
            decode(
                CMD_DEVICE_SET_IRQS,
                &set(none_trigger, u32::MAX.into(), 2),
                0
            )
            .unwrap_err()
        ),
        ("count", 32)
    );
    let bool_unmask = u64::from(IRQ_SET_DATA_BOOL | IRQ_SET_ACTION_UNMASK);
    let mut p = set(bool_unmask, 0, 2);
    assert_eq!(
        field_of(decode(CMD_DEVICE_SET_IRQS, &p, 0).unwrap_err()),
        ("count", 32)
    );
    p.extend_from_slice(&[1, 0]);
    assert!(matches!(
        decode(CMD_DEVICE_SET_IRQS, &p, 0).unwrap(),
        Command::SetIrqs { bools: [1, 0], .. }
    ));
}

#[test]
fn region_accesses_check_count_against_the_data() {
    let access = |count: u64| le(&[0, 0, count], &[8, 4, 4]);
    assert!(matches!(
        decode(CMD_REGION_READ, &access(4), 0).unwrap(),
        Command::RegionRead { count: 4, .. }
    ));
    assert_eq!(
        field_of(decode(CMD_REGION_READ, &access(0), 0).unwrap_err()),
        ("count", 28)
    );
    assert_eq!(
        field_of(decode(CMD_REGION_READ, &access((1 << 20) + 1), 0).unwrap_err()),
        ("count", 28)
    );
    let mut w = access(4);
    w.extend_from_slice(&[1, 2, 3]);
    assert_eq!(
        field_of(decode(CMD_REGION_WRITE, &w, 0).unwrap_err()),
        ("count", 28)
    );
    w.push(4);
    assert!(matches!(
        decode(CMD_REGION_WRITE, &w, 0).unwrap(),
        Command::RegionWrite {
            data: [1, 2, 3, 4],
            ..
        }
    ));
    // Data past the count is a lie too.
    w.push(5);
    assert!(decode(CMD_REGION_WRITE, &w, 0).is_err());
}

#[test]
fn write_multi_counts_whole_entries() {
    let entry = |count: u64| {
        let mut e = le(&[4, 0, count], &[8, 4, 4]);
        e.extend_from_slice(&[1; 8]);
        e
    };
    let mut p = 2u64.to_le_bytes().to_vec();
    p.extend(entry(4));
    p.extend(entry(8));
    assert!(
        matches!(decode(CMD_REGION_WRITE_MULTI, &p, 0).unwrap(), Command::RegionWriteMulti { writes } if writes.len() == 2)
    );
    p[0] = 3;
    assert_eq!(
        field_of(decode(CMD_REGION_WRITE_MULTI, &p, 0).unwrap_err()),
        ("wr_cnt", 16)
    );
    p[0] = 2;
    p.pop();
    assert_eq!(
        field_of(decode(CMD_REGION_WRITE_MULTI, &p, 0).unwrap_err()),
        ("wr_cnt", 16)
    );
    let mut p = 1u64.to_le_bytes().to_vec();
    p.extend(entry(9));
    assert_eq!(
        field_of(decode(CMD_REGION_WRITE_MULTI, &p, 0).unwrap_err()),
        ("count", 36)
    );
}

#[test]
fn unknown_replies_and_server_commands_are_refused() {
    assert_eq!(decode(99, &[], 0), Err(ProtocolError::UnknownCommand(99)));
    assert_eq!(ProtocolError::UnknownCommand(99).errno(), libc::ENOTSUP);
    assert!(matches!(
        decode(CMD_DMA_READ, &[0; 16], 0),
        Err(ProtocolError::WrongType { .. })
    ));
    assert!(matches!(
        decode_command(&header(CMD_DEVICE_GET_INFO, 16, FLAGS_REPLY), &[0; 16], 0),
        Err(ProtocolError::WrongType {
            what: "a reply",
            ..
        })
    ));
    assert_eq!(
        decode(CMD_DEVICE_FEATURE, &[0; 8], 0),
        Ok(Command::NotSupported(CMD_DEVICE_FEATURE))
    );
    assert!(matches!(
        decode(CMD_DEVICE_RESET, &[], 1),
        Err(ProtocolError::Fds { .. })
    ));
}

proptest::proptest! {
    #[test]
    fn no_input_panics(command in 0u16..20, fds in 0usize..40, payload in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
        let _ = decode(command, &payload, fds);
    }
}
