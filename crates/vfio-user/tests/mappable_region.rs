//! A region the device backs with shared memory goes over vfio-user as an fd (REGION_FLAG_MMAP
//! in GET_REGION_INFO), and the client source turns it back into an mmap region of its device
//! file: a driver maps `D.r0` and shares the very bytes the served device sees, with no
//! message per access.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use devfd_device::{Device, DeviceError, Interrupts};
use devfd_emu::SharedMemory;
use devfd_format::model::{DeviceDesc, RegionDesc};
use devfd_format::wire::{REGION_MMAP, REGION_READ, REGION_WRITE};
use devfd_format::{Bus, Location, PciId};

/// A PCI function whose BAR0 is 16 KiB of RAM (a frame buffer, say).
struct RamBar {
    description: Vec<u8>,
    interrupts: Interrupts,
    ram: SharedMemory,
    config: [u8; 256],
}

impl RamBar {
    fn new() -> Self {
        let mut d = DeviceDesc::new(Bus::Pci);
        d.pci_id = Some(PciId {
            vendor: 0x1234,
            device: 0x5678,
            subsystem_vendor: 0,
            subsystem_device: 0,
            class: 0x038000,
            revision: 1,
        });
        let region = |index, offset, size, flags, location| RegionDesc {
            index,
            offset,
            size,
            flags,
            location,
            dt: None,
            label: None,
            sparse: None,
            dma_address: None,
            access_widths: None,
        };
        d.regions.push(region(
            0,
            0x1000,
            0x4000,
            REGION_READ | REGION_WRITE | REGION_MMAP,
            Location::PciBar { bar: 0, flags: 0 },
        ));
        d.regions.push(region(
            7,
            0x5000,
            256,
            REGION_READ | REGION_WRITE,
            Location::PciConfig,
        ));
        let description = d.build().unwrap();
        let interrupts = Interrupts::new(&devfd_format::parse(&description).unwrap());
        let mut config = [0u8; 256];
        config[..4].copy_from_slice(&[0x34, 0x12, 0x78, 0x56]);
        config[8..12].copy_from_slice(&[1, 0x00, 0x80, 0x03]);
        RamBar {
            description,
            interrupts,
            ram: SharedMemory::new(0x4000).unwrap(),
            config,
        }
    }
}

impl Device for RamBar {
    fn description(&self) -> &[u8] {
        &self.description
    }
    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        match region {
            0 => self
                .ram
                .read_at(offset, data)
                .map_err(|_| DeviceError::Failed),
            7 => {
                let at = offset as usize;
                data.copy_from_slice(&self.config[at..at + data.len()]);
                Ok(())
            }
            _ => Err(DeviceError::Unsupported),
        }
    }
    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        match region {
            0 => self
                .ram
                .write_at(offset, data)
                .map_err(|_| DeviceError::Failed),
            7 => Ok(()),
            _ => Err(DeviceError::Unsupported),
        }
    }
    fn interrupts(&self) -> &Interrupts {
        &self.interrupts
    }
    fn shared_memory(&self, region: u32) -> Option<std::os::fd::BorrowedFd<'_>> {
        (region == 0).then(|| self.ram.as_fd())
    }
    fn kind(&self) -> &str {
        "rambar"
    }
}

#[test]
fn a_shared_memory_bar_is_mapped_end_to_end() {
    let device = Arc::new(RamBar::new());
    let server = devfd_vfio_user::Server::new(device.clone()).unwrap();
    // No reset word and no `resettable`: DEVICE_RESET is not offered.
    assert!(!server.layout().reset);
    let (ours, theirs) = UnixStream::pair().unwrap();
    let session = std::thread::spawn(move || server.serve_connection(theirs));
    let client = devfd_vfio_user::Client::over(ours, "rambar", None).unwrap();

    // The server sent BAR0's fd with REGION_FLAG_MMAP; the client's description maps it.
    let d = devfd_format::parse(client.description()).unwrap();
    let bar0 = d.regions().find(|r| r.index == 0).unwrap();
    assert!(
        bar0.mmappable(),
        "BAR0 is an mmap region of the client's device file"
    );
    assert!(client.shared_memory(0).is_some());
    assert!(!d.regions().find(|r| r.index == 7).unwrap().mmappable());

    // Messages and the mapping see the same bytes.
    device
        .ram
        .write_at(0x10, &0xfeed_beefu32.to_le_bytes())
        .unwrap();
    let mut b = [0u8; 4];
    client.read(0, 0x10, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0xfeed_beef);

    // Through a device file: map D.r0 and share the device's RAM.
    let dir = tempfile::tempdir().unwrap();
    let mount = devfd_fuse::serve(
        vec![("rambar0".into(), Arc::new(client) as Arc<dyn Device>)],
        devfd_fuse::ServeOptions::new(dir.path()),
    )
    .expect("mount (needs root and /dev/fuse)");
    let file = devfd_client::DeviceFile::open(dir.path().join("rambar0")).unwrap();
    let map = file.map(0u32).unwrap();
    assert_eq!(map.read_u32(0x10).unwrap(), 0xfeed_beef);
    map.write_u32(0x3ffc, 0x1234_5678).unwrap();
    let mut b = [0u8; 4];
    device.ram.read_at(0x3ffc, &mut b).unwrap();
    assert_eq!(
        u32::from_le_bytes(b),
        0x1234_5678,
        "a store through the map reaches the device"
    );
    drop(map);
    drop(file);
    drop(mount);
    assert!(session.join().unwrap().is_ok());
}
