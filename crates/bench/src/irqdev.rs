//! A device with one edge interrupt that the benchmark raises itself, and one 8-byte register.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use devfd_device::{Device, DeviceError, Interrupts, le_value, put_le_value};
use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::{IRQ_KIND_WIRED, REGION_READ, REGION_WRITE};
use devfd_format::{Bus, Location};

/// The benchmark's interrupt source.
pub struct IrqDev {
    desc: Vec<u8>,
    irq: Interrupts,
    reg: AtomicU64,
}

impl IrqDev {
    /// Interrupt index of the event.
    pub const IRQ: u32 = 0;

    /// A new device: region 0 (8 bytes, rw) at 0x1000, interrupt 0 (1 vector, edge) at 0x2000.
    pub fn new() -> Result<Arc<IrqDev>, Box<dyn std::error::Error>> {
        let mut d = DeviceDesc::new(Bus::Other(b'B'));
        d.label = Some("bench-irq".into());
        d.regions.push(RegionDesc {
            index: 0,
            offset: 0x1000,
            size: 8,
            flags: REGION_READ | REGION_WRITE,
            location: Location::None,
            dt: None,
            label: Some("reg".into()),
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        d.interrupts.push(InterruptDesc {
            index: Self::IRQ,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: 0,
            control_offset: 0x2000,
            dt: None,
            label: Some("event".into()),
        });
        let desc = d.build()?;
        let irq = Interrupts::new(&devfd_format::parse(&desc)?);
        Ok(Arc::new(IrqDev {
            desc,
            irq,
            reg: AtomicU64::new(0),
        }))
    }

    /// One event on the interrupt (what a device model does when it fires).
    pub fn raise(&self) {
        self.irq.raise(Self::IRQ, 0);
    }
}

impl Device for IrqDev {
    fn description(&self) -> &[u8] {
        &self.desc
    }

    fn read(&self, _region: u32, _offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        put_le_value(data, self.reg.load(Ordering::Relaxed));
        Ok(())
    }

    fn write(&self, _region: u32, _offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.reg.store(le_value(data), Ordering::Relaxed);
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        &self.irq
    }

    fn kind(&self) -> &str {
        "bench-irq"
    }
}
