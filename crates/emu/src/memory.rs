//! RAM as a device: one memory-like region backed by a sealed memfd. The server hands the memfd
//! out for mmap (SPEC.md §6.5), so a client's mapping, the device's reads and writes, and any
//! other mapping of it all see the same bytes.
//!
//! Description: platform bus, compatible `devfd,memory`, label "mem"; region 0 ("ram",
//! read/write/mmap) at file offset 0x1000 of the configured size; no interrupts.
//!
//! Reset keeps the contents, as RAM keeps them across a warm reset; a client that needs zeroes
//! writes them.

use std::os::fd::BorrowedFd;

use devfd_device::{Device, DeviceError, Interrupts};
use devfd_format::Bus;
use devfd_format::model::{DeviceDesc, RegionDesc};
use devfd_format::wire::{PAGE_SIZE, REGION_MMAP, REGION_READ, REGION_WRITE};

use crate::EmuError;
use crate::shm::SharedMemory;

/// How big a [`Memory`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Size in bytes: a non-zero multiple of 4096 (the mmap page size, SPEC.md §4.4).
    pub size: u64,
    /// Accept a size above the machine's RAM. The memory is lazily backed (committed when
    /// touched), so such a device works until a client touches more than the machine has.
    pub overcommit: bool,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            size: Memory::DEFAULT_SIZE,
            overcommit: false,
        }
    }
}

/// A RAM device whose region is shared memory.
#[derive(Debug)]
pub struct Memory {
    memory: SharedMemory,
    description: Vec<u8>,
    interrupts: Interrupts,
}

impl Memory {
    /// Index of the RAM region.
    pub const REGION: u32 = 0;
    /// The default size: 1 MiB.
    pub const DEFAULT_SIZE: u64 = 1 << 20;

    /// Zeroed RAM of `options.size` bytes.
    pub fn new(options: MemoryOptions) -> Result<Self, EmuError> {
        let size = options.size;
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return Err(EmuError::BadMemorySize(size));
        }
        if !options.overcommit
            && let Some(ram) = ram_bytes()
            && size > ram
        {
            return Err(EmuError::MemoryOverRam { size, ram });
        }
        // Built first: it rejects sizes the format cannot hold before any memory is made.
        let description = Self::device_desc(size).build()?;
        let interrupts = Interrupts::new(&devfd_format::parse(&description)?);
        let memory = SharedMemory::new(size)?;
        Ok(Memory {
            memory,
            description,
            interrupts,
        })
    }

    /// The description of RAM of `size` bytes.
    pub fn device_desc(size: u64) -> DeviceDesc {
        let mut d = DeviceDesc::new(Bus::Platform);
        d.compatible = vec!["devfd,memory".into()];
        d.label = Some("mem".into());
        d.regions.push(RegionDesc {
            index: Self::REGION,
            // The first page after the description, as mmap regions are page aligned.
            offset: PAGE_SIZE,
            size,
            flags: REGION_READ | REGION_WRITE | REGION_MMAP,
            location: Default::default(),
            dt: None,
            label: Some("ram".into()),
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        d
    }

    /// The shared memory behind the region.
    pub fn memory(&self) -> &SharedMemory {
        &self.memory
    }
}

/// The machine's RAM (`MemTotal` of `/proc/meminfo`), if it can be read.
fn ram_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

impl Device for Memory {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        if region != Self::REGION {
            return Err(DeviceError::Unsupported);
        }
        self.memory
            .read_at(offset, data)
            .map_err(|_| DeviceError::Unsupported)
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        if region != Self::REGION {
            return Err(DeviceError::Unsupported);
        }
        self.memory
            .write_at(offset, data)
            .map_err(|_| DeviceError::Unsupported)
    }

    fn interrupts(&self) -> &Interrupts {
        &self.interrupts
    }

    fn shared_memory(&self, region: u32) -> Option<BorrowedFd<'_>> {
        (region == Self::REGION).then(|| self.memory.as_fd())
    }

    fn kind(&self) -> &str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::unix::fs::FileExt;

    fn memory(size: u64) -> Memory {
        Memory::new(MemoryOptions {
            size,
            ..Default::default()
        })
        .unwrap()
    }

    /// An independent mapping of the memfd the device hands out, as a client would make.
    fn client_mapping(d: &Memory) -> SharedMemory {
        let fd = d.shared_memory(Memory::REGION).unwrap();
        SharedMemory::from_fd(fd.try_clone_to_owned().unwrap()).unwrap()
    }

    #[test]
    fn description() {
        let d = memory(Memory::DEFAULT_SIZE);
        assert_eq!(d.kind(), "memory");
        let parsed = devfd_format::parse(d.description()).unwrap();
        assert_eq!(parsed.bus(), Bus::Platform);
        assert_eq!(parsed.interrupts().count(), 0);
        let desc = DeviceDesc::from_description(&parsed);
        assert_eq!(desc, Memory::device_desc(1 << 20));
        assert_eq!(desc.compatible, ["devfd,memory"]);
        assert_eq!(desc.label.as_deref(), Some("mem"));
        let region = &desc.regions[0];
        assert_eq!(
            (region.index, region.offset, region.size),
            (0, 0x1000, 1 << 20)
        );
        assert_eq!(region.flags, REGION_READ | REGION_WRITE | REGION_MMAP);
        assert_eq!(MemoryOptions::default().size, 1 << 20);
    }

    #[test]
    fn more_than_ram_needs_overcommit() {
        let ram = ram_bytes().expect("/proc/meminfo");
        let size = (ram * 2).next_multiple_of(PAGE_SIZE);
        let refused = Memory::new(MemoryOptions {
            size,
            overcommit: false,
        });
        assert!(
            matches!(refused, Err(EmuError::MemoryOverRam { size: s, ram: r }) if s == size && r == ram)
        );
        // Lazily backed: twice the RAM is made at once, and touching one page commits one.
        let d = Memory::new(MemoryOptions {
            size,
            overcommit: true,
        })
        .unwrap();
        d.write(0, size - 8, &[1; 8]).unwrap();
    }

    #[test]
    fn sizes_must_be_whole_pages() {
        for size in [0, 1, 4095, 4097, 6144] {
            assert!(
                matches!(
                    Memory::new(MemoryOptions {
                        size,
                        ..Default::default()
                    }),
                    Err(EmuError::BadMemorySize(s)) if s == size
                ),
                "{size}"
            );
        }
        assert!(matches!(
            Memory::new(MemoryOptions {
                size: 1 << 63,
                overcommit: true
            }),
            Err(EmuError::Build(_))
        ));
        assert_eq!(memory(4096).memory().size(), 4096);
    }

    #[test]
    fn reads_and_writes_of_any_shape() {
        let d = memory(8192);
        d.write(0, 4093, b"hello, world").unwrap();
        let mut buf = [0; 14];
        d.read(0, 4092, &mut buf).unwrap();
        assert_eq!(&buf, b"\0hello, world\0");
        let mut all = vec![0xaa; 8192];
        d.read(0, 0, &mut all).unwrap();
        assert_eq!(all.iter().filter(|&&b| b != 0).count(), 12);
        assert_eq!(d.read(0, 8190, &mut buf), Err(DeviceError::Unsupported));
        assert_eq!(d.write(0, u64::MAX, &buf), Err(DeviceError::Unsupported));
        assert_eq!(d.read(1, 0, &mut buf), Err(DeviceError::Unsupported));
        assert_eq!(d.write(1, 0, &buf), Err(DeviceError::Unsupported));
        assert!(d.shared_memory(1).is_none());
    }

    #[test]
    fn a_client_mapping_is_coherent_both_ways() {
        let d = memory(1 << 20);
        let client = client_mapping(&d);
        assert_eq!(client.size(), 1 << 20);
        // Device to client.
        d.write(0, 0x8_0001, b"from the device").unwrap();
        let mut buf = [0; 15];
        client.read_at(0x8_0001, &mut buf).unwrap();
        assert_eq!(&buf, b"from the device");
        // Client to device.
        client.write_at(0xf_fff0, b"from the client!").unwrap();
        let mut buf = [0; 16];
        d.read(0, 0xf_fff0, &mut buf).unwrap();
        assert_eq!(&buf, b"from the client!");
        // The memfd as a file agrees as well.
        let file = File::from(d.shared_memory(0).unwrap().try_clone_to_owned().unwrap());
        file.write_all_at(b"pwrite", 0x100).unwrap();
        let mut buf = [0; 6];
        d.read(0, 0x100, &mut buf).unwrap();
        assert_eq!(&buf, b"pwrite");
        client.read_at(0x100, &mut buf).unwrap();
        assert_eq!(&buf, b"pwrite");
    }

    #[test]
    fn reset_keeps_the_contents() {
        let d = memory(4096);
        d.write(0, 0, b"kept").unwrap();
        d.reset();
        let mut buf = [0; 4];
        d.read(0, 0, &mut buf).unwrap();
        assert_eq!(&buf, b"kept");
    }
}
