//! Devices by name: `edu`, `pl031`, `memory,size=4M`, as a command line names them.

use std::sync::Arc;

use devfd_device::Device;

use std::time::Duration;

use crate::{
    DmaMemory, Edu, EduOptions, EmuError, FaultOptions, Faulty, Memory, MemoryOptions, Pl031,
    Pl031Options,
};

/// The device kinds [`from_spec`] knows.
pub const KINDS: [&str; 4] = ["edu", "pl031", "memory", "fault"];

/// Makes a device of `kind` with `options` (name, value pairs; a later pair overrides an
/// earlier one).
///
/// | kind     | options                                                        |
/// |----------|----------------------------------------------------------------|
/// | `edu`    | `dma`: a DMA window of this size (as `memory`'s `size`) at bus address 1 MiB |
/// | `pl031`  | none                                                           |
/// | `memory` | `size`: bytes, or with a `K`, `M`, `G` or `T` suffix (binary); 1M by default. `overcommit=1`: allow more than the machine's RAM |
/// | `fault`  | `delay_ms`, `hang_ms` (each access), `hang=1` (until the server stops), `panic=1`, `high_end` (bytes): see [`crate::Faulty`] |
pub fn from_spec(kind: &str, options: &[(String, String)]) -> Result<Arc<dyn Device>, EmuError> {
    let unknown = |option: &str| EmuError::UnknownOption {
        kind: kind.into(),
        option: option.into(),
    };
    match kind {
        "edu" => {
            let mut edu = EduOptions::default();
            for (name, value) in options {
                match name.as_str() {
                    "dma" => {
                        let size = parse_size(name, value)?;
                        let window = DmaMemory::new(size, crate::DEFAULT_BUS_ADDRESS)?;
                        edu.dma = Some(Arc::new(window));
                    }
                    _ => return Err(unknown(name)),
                }
            }
            Ok(Arc::new(Edu::new(edu)?))
        }
        "pl031" => match options.first() {
            Some((name, _)) => Err(unknown(name)),
            None => Ok(Arc::new(Pl031::new(Pl031Options::default())?)),
        },
        "memory" => {
            let mut memory = MemoryOptions::default();
            for (name, value) in options {
                match name.as_str() {
                    "size" => memory.size = parse_size(name, value)?,
                    "overcommit" => memory.overcommit = value == "1",
                    _ => return Err(unknown(name)),
                }
            }
            Ok(Arc::new(Memory::new(memory)?))
        }
        "fault" => {
            let mut fault = FaultOptions::default();
            for (name, value) in options {
                let number = || {
                    value.parse::<u64>().map_err(|_| EmuError::BadOption {
                        option: name.clone(),
                        value: value.clone(),
                        reason: "expected a decimal number",
                    })
                };
                match name.as_str() {
                    "delay_ms" => fault.delay = Duration::from_millis(number()?),
                    "hang_ms" => fault.hang = Some(Duration::from_millis(number()?)),
                    "hang" if number()? == 1 => fault.hang = Some(Duration::MAX),
                    "panic" => fault.panic = number()? == 1,
                    "high_end" => fault.high_end = Some(number()?),
                    _ => return Err(unknown(name)),
                }
            }
            Ok(Arc::new(Faulty::new(fault)?))
        }
        _ => Err(EmuError::UnknownKind(kind.into())),
    }
}

/// Makes a device from one string: the kind, then comma-separated `name=value` options
/// (`memory,size=4M`).
pub fn from_spec_str(spec: &str) -> Result<Arc<dyn Device>, EmuError> {
    let mut parts = spec.split(',');
    let kind = parts.next().unwrap_or_default().trim();
    let options = parts
        .map(|option| match option.split_once('=') {
            Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
            None => Err(EmuError::BadOption {
                option: option.into(),
                value: String::new(),
                reason: "expected name=value",
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    from_spec(kind, &options)
}

/// One device of each kind, with default options: an edu, a PL031 and 1 MiB of memory.
pub fn demo_devices() -> Result<Vec<Arc<dyn Device>>, EmuError> {
    Ok(vec![
        Arc::new(Edu::new(EduOptions::default())?),
        Arc::new(Pl031::new(Pl031Options::default())?),
        Arc::new(Memory::new(MemoryOptions::default())?),
    ])
}

/// Parses a size: decimal bytes, or with a `K`, `M` or `G` suffix (powers of 1024, either
/// case).
pub fn parse_size(option: &str, value: &str) -> Result<u64, EmuError> {
    let bad = |reason| EmuError::BadOption {
        option: option.into(),
        value: value.into(),
        reason,
    };
    let (digits, unit) = [
        ('K', 1u64 << 10),
        ('M', 1 << 20),
        ('G', 1 << 30),
        ('T', 1 << 40),
    ]
    .into_iter()
    .find_map(|(suffix, unit)| {
        value
            .strip_suffix([suffix, suffix.to_ascii_lowercase()])
            .map(|digits| (digits, unit))
    })
    .unwrap_or((value, 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("expected a number of bytes, optionally with K, M or G"));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| bad("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("size", "4096").unwrap(), 4096);
        assert_eq!(parse_size("size", "64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("size", "4M").unwrap(), 4 << 20);
        assert_eq!(parse_size("size", "2g").unwrap(), 2 << 30);
        for bad in [
            "",
            "K",
            "4MB",
            "-1",
            "1.5M",
            " 4M",
            "0x1000",
            "99999999999999999999",
        ] {
            assert!(parse_size("size", bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("size", "17179869184G").is_err());
        assert!(parse_size("size", "é").is_err());
    }

    #[test]
    fn kinds_and_options() {
        let memory = from_spec("memory", &opts(&[("size", "8K")])).unwrap();
        assert_eq!(memory.kind(), "memory");
        let fd = memory.shared_memory(0).unwrap();
        assert_eq!(
            std::fs::File::from(fd.try_clone_to_owned().unwrap())
                .metadata()
                .unwrap()
                .len(),
            8192
        );
        assert_eq!(from_spec("edu", &[]).unwrap().kind(), "edu");
        assert_eq!(from_spec("pl031", &[]).unwrap().kind(), "pl031");
        assert_eq!(from_spec_str("memory,size=4M").unwrap().kind(), "memory");
        assert_eq!(from_spec_str("edu").unwrap().kind(), "edu");

        let err = |r: Result<Arc<dyn Device>, EmuError>| r.err().unwrap().to_string();
        assert!(err(from_spec("uart", &[])).contains("`uart`"));
        assert!(err(from_spec("edu", &opts(&[("speed", "1")]))).contains("`speed`"));
        assert!(err(from_spec("pl031", &opts(&[("x", "1")]))).contains("`x`"));
        assert!(err(from_spec("memory", &opts(&[("sise", "1")]))).contains("`sise`"));
        assert!(err(from_spec("memory", &opts(&[("size", "4097")]))).contains("0x1001"));
        assert!(err(from_spec("memory", &opts(&[("size", "lots")]))).contains("`lots`"));
        assert!(err(from_spec_str("memory,size")).contains("`size`"));
        assert!(err(from_spec_str("")).contains("``"));
    }

    #[test]
    fn demo() {
        let devices = demo_devices().unwrap();
        let kinds: Vec<&str> = devices.iter().map(|d| d.kind()).collect();
        assert_eq!(kinds, KINDS[..3]);
        for d in &devices {
            devfd_format::parse(d.description()).unwrap();
        }
    }
}
