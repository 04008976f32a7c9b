//! QEMU's educational PCI device, `edu` (QEMU `docs/specs/edu.rst`): a PCI function with
//! 1 MiB of registers in BAR0 — identification, liveness check, factorial computation on a
//! worker thread, an interrupt status with raise and acknowledge — signalling through INTx or
//! MSI.
//!
//! Description (as `examples/edu.toml`): region 0 = BAR0 (1 MiB, register-like, "regs") at
//! file offset 0x1000, region 7 = configuration space (256 bytes) at 0x101000, interrupt 0 =
//! INTx (level, maskable, automasked) at 0x102000, interrupt 1 = MSI (1 vector, maskable) at
//! 0x102010.
//!
//! Interrupts: with MSI enabled in configuration space, each raise (a write to the raise
//! register, or a finished factorial with interrupt-on-completion set) is one MSI event. Else
//! INTx is a level that is high while the interrupt status is non-zero, unless the command
//! register's INTx-disable bit is set; acknowledging the last bit lowers it.
//!
//! BAR0 answers whatever the command register's memory-space bit says: a devfd client reaches
//! the region directly, not through a bus address decode that the bit would switch off.
//!
//! DMA (registers 0x80–0x98, the 4 KiB buffer at device address 0x40000, interrupt status bit
//! 0x100 on completion): with a [`DmaMemory`] window (`EduOptions::dma`, `edu,dma=SIZE`) the
//! engine copies between its buffer and the window, which the device file serves as region 16
//! ("dma", mmap) with its bus address (DMA_WINDOW). Bus addresses are clamped to QEMU's 28-bit
//! DMA mask. As on a real bus, the driver must enable bus mastering (command register bit 2)
//! first. A transfer without it, or that reaches outside the window or the buffer, moves nothing
//! — as a real edu behind an IOMMU sees a fault — and still completes (QEMU's edu ignores the
//! error too). Transfers run on the worker thread, at once rather than after QEMU's 100 ms,
//! without the register lock held, so registers answer while a slow [`DmaSpace`] (a vfio-user
//! client's memory reached by messages) moves the bytes. [`Device::set_dma_space`] points the
//! engine at other memory, such as a vfio-user client's DMA_MAP regions.

mod factorial;
mod registers;

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use devfd_device::{Device, DeviceError, DmaSpace, Interrupts, le_value, put_le_value};
use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::{
    IRQ_AUTOMASKED, IRQ_KIND_INTX, IRQ_KIND_MSI, IRQ_LEVEL, IRQ_MASKABLE, REGION_READ,
    REGION_WRITE, WIDTH_4, WIDTH_8,
};
use devfd_format::{AccessWidths, Bus, Location, PciId};

use crate::pci::ConfigSpace;
use crate::{DmaMemory, EmuError};
use registers::{DMA_BUFFER_SIZE, DMA_BUFFER_START, Effect, Registers};

/// edu's PCI identity.
const PCI_ID: PciId = PciId {
    vendor: 0x1234,
    device: 0x11e8,
    subsystem_vendor: 0x1af4,
    subsystem_device: 0x1100,
    class: 0x00ff00,
    revision: 0x10,
};
/// BAR0 size: 1 MiB.
const BAR0_SIZE: u32 = 1 << 20;
/// Size of the configuration space region.
const CONFIG_SIZE: u64 = 256;

/// How an [`Edu`] behaves.
#[derive(Debug, Clone, Default)]
pub struct EduOptions {
    /// How long each factorial computation takes. The default, 0, finishes as soon as the
    /// worker runs; a longer time lets a driver observe the computing bit.
    pub factorial_time: Duration,
    /// The DMA window the engine reaches (none: every transfer faults).
    pub dma: Option<Arc<DmaMemory>>,
}

/// QEMU's `edu` device.
pub struct Edu {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    description: Vec<u8>,
}

/// State shared with the factorial worker.
struct Shared {
    state: Mutex<State>,
    /// Wakes the worker: a new job, a reset, or shutdown.
    work: Condvar,
    interrupts: Interrupts,
    factorial_time: Duration,
    /// The window of the device file (region 16), if any.
    dma: Option<Arc<DmaMemory>>,
    /// The memory the DMA engine reaches: the window, or what `set_dma_space` gave.
    dma_space: RwLock<Option<Arc<dyn DmaSpace>>>,
}

struct State {
    registers: Registers,
    config: ConfigSpace,
    /// A factorial waiting for the worker.
    job: Option<u32>,
    /// A DMA transfer waiting for the worker.
    dma_job: bool,
    /// The DMA engine's buffer, at device address 0x40000.
    dma_buffer: Box<[u8; DMA_BUFFER_SIZE as usize]>,
    /// Bumped by reset, so a computation started before it is dropped.
    generation: u64,
    shutdown: bool,
}

impl Edu {
    /// Region index of BAR0.
    pub const BAR0_REGION: u32 = 0;
    /// Region index of the configuration space (VFIO's numbering).
    pub const CONFIG_REGION: u32 = 7;
    /// Interrupt index of INTx.
    pub const INTX_INTERRUPT: u32 = 0;
    /// Interrupt index of MSI.
    pub const MSI_INTERRUPT: u32 = 1;
    /// Region index of the DMA window, when there is one.
    pub const DMA_REGION: u32 = 16;
    /// File offset of the DMA window region.
    const DMA_OFFSET: u64 = 0x10_4000;

    /// A powered-on edu with its factorial worker running.
    pub fn new(options: EduOptions) -> Result<Self, EmuError> {
        let mut desc = Self::device_desc();
        if let Some(w) = &options.dma {
            desc.regions
                .push(w.region_desc(Self::DMA_REGION, Self::DMA_OFFSET));
        }
        let description = desc.build()?;
        let interrupts = Interrupts::new(&devfd_format::parse(&description)?);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::power_on()),
            work: Condvar::new(),
            interrupts,
            factorial_time: options.factorial_time,
            dma_space: RwLock::new(options.dma.clone().map(|w| w as Arc<dyn DmaSpace>)),
            dma: options.dma,
        });
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name("edu-factorial".into())
            .spawn(move || factorial::run(worker_shared))
            .map_err(|source| EmuError::Thread {
                name: "edu factorial",
                source,
            })?;
        Ok(Edu {
            shared,
            worker: Some(worker),
            description,
        })
    }

    /// edu's description, laid out as `examples/edu.toml` builds it, plus what edu.rst says
    /// of access sizes: BAR0 takes 4-byte accesses, and 8-byte ones from 0x80 on, so its
    /// ACCESS sub-record lists 4 and 8 (version 1.1); configuration space takes every width.
    pub fn device_desc() -> DeviceDesc {
        let mut d = DeviceDesc::new(Bus::Pci);
        d.pci_id = Some(PCI_ID);
        d.label = Some("edu".into());
        d.regions.push(RegionDesc {
            index: Self::BAR0_REGION,
            offset: 0x1000,
            size: u64::from(BAR0_SIZE),
            flags: REGION_READ | REGION_WRITE,
            location: Location::PciBar { bar: 0, flags: 0 },
            dt: None,
            label: Some("regs".into()),
            sparse: None,
            dma_address: None,
            access_widths: AccessWidths::new(WIDTH_4 | WIDTH_8),
        });
        d.regions.push(RegionDesc {
            index: Self::CONFIG_REGION,
            offset: 0x10_1000,
            size: CONFIG_SIZE,
            flags: REGION_READ | REGION_WRITE,
            location: Location::PciConfig,
            dt: None,
            label: None,
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        d.interrupts.push(InterruptDesc {
            index: Self::INTX_INTERRUPT,
            count: 1,
            kind: IRQ_KIND_INTX,
            flags: IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
            control_offset: 0x10_2000,
            dt: None,
            label: Some("intx".into()),
        });
        d.interrupts.push(InterruptDesc {
            index: Self::MSI_INTERRUPT,
            count: 1,
            kind: IRQ_KIND_MSI,
            flags: IRQ_MASKABLE,
            control_offset: 0x10_2010,
            dt: None,
            label: Some("msi".into()),
        });
        d
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a panicked holder's state is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.work
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits up to `time` while `condition` holds.
    fn wait_while<'a>(
        &self,
        state: MutexGuard<'a, State>,
        time: Duration,
        condition: impl FnMut(&mut State) -> bool,
    ) -> MutexGuard<'a, State> {
        match self.work.wait_timeout_while(state, time, condition) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

impl State {
    fn power_on() -> Self {
        State {
            registers: Registers::default(),
            config: ConfigSpace::new(&PCI_ID, BAR0_SIZE),
            job: None,
            dma_job: false,
            dma_buffer: Box::new([0; DMA_BUFFER_SIZE as usize]),
            generation: 0,
            shutdown: false,
        }
    }

    /// The running DMA transfer, checked against the buffer: what the worker moves once it
    /// has let go of the state lock. `None` if nothing runs.
    fn dma_plan(&self) -> Option<DmaPlan> {
        let t = self.registers.dma_transfer()?;
        // QEMU's edu: bus addresses are clamped to its 28-bit DMA mask.
        let clamp = |a: u64| a & ((1 << 28) - 1);
        let (buffer_address, bus) = if t.to_pci {
            (t.source, clamp(t.destination))
        } else {
            (t.destination, clamp(t.source))
        };
        let start = buffer_address.checked_sub(DMA_BUFFER_START);
        let range = start.and_then(|s| {
            let end = s.checked_add(t.count)?;
            (end <= DMA_BUFFER_SIZE).then_some(s as usize..end as usize)
        });
        // Without bus mastering (command register bit 2) a function cannot reach memory.
        let range = range.filter(|_| self.config.bus_master());
        let outgoing = match &range {
            Some(r) if t.to_pci => self.dma_buffer.get(r.clone()).map(<[u8]>::to_vec),
            _ => None,
        };
        Some(DmaPlan {
            to_pci: t.to_pci,
            bus,
            buffer_address,
            count: t.count,
            range,
            outgoing,
        })
    }

    /// Ends a transfer: stores what came from memory in the buffer, then completes it.
    fn finish_dma(
        &mut self,
        plan: DmaPlan,
        moved: Result<Option<Vec<u8>>, ()>,
        interrupts: &Interrupts,
    ) {
        let stored = match (moved, &plan.range) {
            (Ok(None), _) => true,
            (Ok(Some(bytes)), Some(r)) => match self.dma_buffer.get_mut(r.clone()) {
                Some(buf) if buf.len() == bytes.len() => {
                    buf.copy_from_slice(&bytes);
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if !stored {
            log::warn!(
                "edu: DMA of {} bytes between buffer {:#x} and bus {:#x} faulted; nothing moved",
                plan.count,
                plan.buffer_address,
                plan.bus
            );
        }
        let raise = self.registers.finish_dma();
        self.update_interrupts(interrupts, raise);
    }

    fn finish_factorial(&mut self, result: u32, interrupts: &Interrupts) {
        let raise = self.registers.finish_factorial(result);
        self.update_interrupts(interrupts, raise);
    }

    /// Brings the interrupt outputs in line with the registers; `raise` sends an MSI.
    ///
    /// Called with the state locked, so the line follows the registers in the same order as
    /// the accesses that changed them.
    fn update_interrupts(&mut self, interrupts: &Interrupts, raise: bool) {
        let msi = self.config.msi_enabled();
        // With MSI enabled the function must not use INTx (PCI 3.0 §6.8).
        let intx_pending = self.registers.interrupt_status() != 0 && !msi;
        self.config.set_interrupt_status(intx_pending);
        if raise && msi {
            interrupts.raise(Edu::MSI_INTERRUPT, 0);
        }
        interrupts.set_level(
            Edu::INTX_INTERRUPT,
            0,
            intx_pending && !self.config.intx_disabled(),
        );
    }
}

/// A DMA transfer taken out of the registers, to run without the state lock.
struct DmaPlan {
    to_pci: bool,
    bus: u64,
    buffer_address: u64,
    count: u64,
    /// The buffer bytes it covers; `None` if outside the buffer or bus mastering is off.
    range: Option<std::ops::Range<usize>>,
    /// Device to memory: the bytes to write (copied out under the lock).
    outgoing: Option<Vec<u8>>,
}

impl Shared {
    /// Moves a planned transfer's bytes between the buffer copy and the DMA space. `Ok` with
    /// the bytes read for a transfer from memory, `Ok(None)` for one to memory, `Err` if
    /// nothing moved (outside the buffer, bus mastering off, no memory, a DMA fault).
    fn move_dma(&self, plan: &DmaPlan) -> Result<Option<Vec<u8>>, ()> {
        let space = self
            .dma_space
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(())?;
        let range = plan.range.clone().ok_or(())?;
        if plan.to_pci {
            let data = plan.outgoing.as_deref().ok_or(())?;
            space.write(plan.bus, data).map_err(|_| ())?;
            Ok(None)
        } else {
            let mut buf = vec![0u8; range.len()];
            space.read(plan.bus, &mut buf).map_err(|_| ())?;
            Ok(Some(buf))
        }
    }
}

impl Device for Edu {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let state = self.shared.lock();
        match region {
            Self::BAR0_REGION => {
                let value = state.registers.read(offset, data.len())?;
                put_le_value(data, value);
                Ok(())
            }
            Self::CONFIG_REGION => state.config.read(offset, data),
            _ => Err(DeviceError::Unsupported),
        }
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let shared = &*self.shared;
        let mut state = shared.lock();
        match region {
            Self::BAR0_REGION => {
                match state.registers.write(offset, data.len(), le_value(data))? {
                    Effect::None => {}
                    Effect::StartFactorial(n) => {
                        state.job = Some(n);
                        shared.work.notify_all();
                    }
                    Effect::Raise => state.update_interrupts(&shared.interrupts, true),
                    Effect::Acknowledge => state.update_interrupts(&shared.interrupts, false),
                    Effect::StartDma => {
                        state.dma_job = true;
                        shared.work.notify_all();
                    }
                }
                Ok(())
            }
            Self::CONFIG_REGION => {
                state.config.write(offset, data)?;
                // The command register's INTx disable or the MSI enable bit may have changed.
                state.update_interrupts(&shared.interrupts, false);
                Ok(())
            }
            _ => Err(DeviceError::Unsupported),
        }
    }

    fn interrupts(&self) -> &Interrupts {
        &self.shared.interrupts
    }

    fn reset(&self) {
        let mut state = self.shared.lock();
        let generation = state.generation.wrapping_add(1);
        *state = State {
            generation,
            ..State::power_on()
        };
        self.shared.interrupts.reset();
        self.shared.work.notify_all();
    }

    /// edu resets (to power-on, dropping a computation under way), though its device file has
    /// no reset word: its description is QEMU's edu's, which has no reset register.
    fn resettable(&self) -> bool {
        true
    }

    fn set_dma_space(&self, space: Option<Arc<dyn DmaSpace>>) -> bool {
        let space = space.or_else(|| self.shared.dma.clone().map(|w| w as Arc<dyn DmaSpace>));
        *self
            .shared
            .dma_space
            .write()
            .unwrap_or_else(PoisonError::into_inner) = space;
        true
    }

    fn shared_memory(&self, region: u32) -> Option<std::os::fd::BorrowedFd<'_>> {
        match (region, &self.shared.dma) {
            (Self::DMA_REGION, Some(w)) => Some(w.memory_fd()),
            _ => None,
        }
    }

    fn kind(&self) -> &str {
        "edu"
    }
}

impl Drop for Edu {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
        if let Some(worker) = self.worker.take() {
            // The worker only ever waits on `work`, so it sees the shutdown and returns.
            let _ = worker.join();
        }
    }
}

impl std::fmt::Debug for Edu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edu")
            .field("factorial_time", &self.shared.factorial_time)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::configuration::{
        COMMAND_BUS_MASTER, COMMAND_INTX_DISABLE, COMMAND_MEMORY_SPACE,
    };
    use registers::*;
    use std::time::Instant;

    const BAR0: u32 = Edu::BAR0_REGION;
    const CONFIG: u32 = Edu::CONFIG_REGION;
    const INTX: u32 = Edu::INTX_INTERRUPT;
    const MSI: u32 = Edu::MSI_INTERRUPT;

    fn edu() -> Edu {
        Edu::new(EduOptions::default()).unwrap()
    }

    fn read32(d: &Edu, region: u32, offset: u64) -> u32 {
        let mut b = [0; 4];
        d.read(region, offset, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn write32(d: &Edu, region: u32, offset: u64, value: u32) {
        d.write(region, offset, &value.to_le_bytes()).unwrap();
    }

    /// Polls `done` for up to 5 s.
    fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn compute(d: &Edu, n: u32) -> u32 {
        write32(d, BAR0, FACTORIAL, n);
        assert!(eventually(
            || read32(d, BAR0, STATUS) & STATUS_COMPUTING == 0
        ));
        read32(d, BAR0, FACTORIAL)
    }

    #[test]
    fn description_matches_the_golden_file() {
        let golden = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/edu.bin"),
        )
        .unwrap();
        // The golden file is examples/edu.toml (version 1.0); edu adds BAR0's access widths.
        let parsed = devfd_format::parse(&golden).unwrap();
        let mut expected = DeviceDesc::from_description(&parsed);
        expected.regions[0].access_widths = AccessWidths::new(WIDTH_4 | WIDTH_8);
        assert_eq!(Edu::device_desc(), expected);
        let d = edu();
        assert_eq!(d.description(), expected.build().unwrap().as_slice());
        let described = devfd_format::parse(d.description()).unwrap();
        assert_eq!(described.version(), (1, 1));
        let widths = |index| described.region(index).and_then(|r| r.access_widths());
        assert_eq!(
            widths(Edu::BAR0_REGION),
            AccessWidths::new(WIDTH_4 | WIDTH_8)
        );
        assert_eq!(widths(Edu::CONFIG_REGION), Some(AccessWidths::ALL));
        assert_eq!(d.kind(), "edu");
    }

    #[test]
    fn identification_and_liveness() {
        let d = edu();
        assert_eq!(read32(&d, BAR0, IDENTIFICATION), 0x0100_00ed);
        write32(&d, BAR0, LIVENESS, 0xdead_beef);
        assert_eq!(read32(&d, BAR0, LIVENESS), !0xdead_beef);
        let mut b = [0; 2];
        assert_eq!(d.read(BAR0, 0, &mut b), Err(DeviceError::Unsupported));
        assert_eq!(d.write(BAR0, 4, &b), Err(DeviceError::Unsupported));
        let mut b = [0; 8];
        assert_eq!(d.read(BAR0, 0x10_0000 - 8, &mut b), Ok(()));
        assert_eq!(b, [0xff; 8]);
        assert_eq!(d.read(3, 0, &mut b), Err(DeviceError::Unsupported));
        assert_eq!(d.write(3, 0, &b), Err(DeviceError::Unsupported));
    }

    #[test]
    fn factorial_on_the_worker() {
        let d = edu();
        assert_eq!(compute(&d, 5), 120);
        assert_eq!(compute(&d, 12), 479_001_600);
        assert_eq!(compute(&d, 0), 1);
        assert_eq!(compute(&d, 13), 1_932_053_504);
        assert_eq!(compute(&d, u32::MAX), 0);
    }

    #[test]
    fn computing_bit_is_visible_while_busy() {
        let d = Edu::new(EduOptions {
            factorial_time: Duration::from_millis(300),
            ..Default::default()
        })
        .unwrap();
        write32(&d, BAR0, FACTORIAL, 4);
        assert_eq!(read32(&d, BAR0, STATUS), STATUS_COMPUTING);
        write32(&d, BAR0, FACTORIAL, 7); // ignored while busy
        assert!(eventually(|| read32(&d, BAR0, STATUS) == 0));
        assert_eq!(read32(&d, BAR0, FACTORIAL), 24);
    }

    #[test]
    fn intx_follows_the_interrupt_status() {
        let d = edu();
        let sub = d.interrupts().subscribe();
        write32(&d, BAR0, INTERRUPT_RAISE, 0x5);
        assert_eq!(sub.take(INTX, 0), Some(1));
        assert_eq!(sub.take(MSI, 0), Some(0));
        assert_eq!(read32(&d, BAR0, INTERRUPT_STATUS), 0x5);
        assert_eq!(
            read32(&d, CONFIG, 4) >> 16 & 0x8,
            0x8,
            "status: interrupt pending"
        );
        // Partly acknowledged: still asserted, so unmasking (automasked) fires again.
        write32(&d, BAR0, INTERRUPT_ACK, 0x1);
        d.interrupts().set_masked(INTX, 0, false);
        assert_eq!(sub.take(INTX, 0), Some(1));
        // Fully acknowledged: lowered; unmasking is quiet.
        write32(&d, BAR0, INTERRUPT_ACK, 0x4);
        assert_eq!(read32(&d, BAR0, INTERRUPT_STATUS), 0);
        assert_eq!(read32(&d, CONFIG, 4) >> 16 & 0x8, 0);
        d.interrupts().set_masked(INTX, 0, false);
        assert_eq!(sub.take(INTX, 0), Some(0));
    }

    #[test]
    fn intx_disable_holds_the_line_low() {
        let d = edu();
        let sub = d.interrupts().subscribe();
        write32(
            &d,
            CONFIG,
            4,
            u32::from(COMMAND_MEMORY_SPACE | COMMAND_INTX_DISABLE),
        );
        write32(&d, BAR0, INTERRUPT_RAISE, 0x2);
        assert_eq!(sub.take(INTX, 0), Some(0));
        assert_eq!(read32(&d, CONFIG, 4) >> 16 & 0x8, 0x8, "still pending");
        // Enabling INTx again asserts the pending condition.
        write32(&d, CONFIG, 4, u32::from(COMMAND_MEMORY_SPACE));
        assert_eq!(sub.take(INTX, 0), Some(1));
    }

    #[test]
    fn msi_when_enabled() {
        let d = edu();
        let sub = d.interrupts().subscribe();
        d.write(CONFIG, 0x42, &1u16.to_le_bytes()).unwrap();
        write32(&d, BAR0, INTERRUPT_RAISE, 0x1);
        write32(&d, BAR0, INTERRUPT_RAISE, 0x2);
        assert_eq!(sub.take(MSI, 0), Some(2), "each raise is a message");
        assert_eq!(sub.take(INTX, 0), Some(0), "no INTx with MSI enabled");
        assert_eq!(read32(&d, CONFIG, 4) >> 16 & 0x8, 0);
        write32(&d, BAR0, INTERRUPT_ACK, 0x3);
        // The factorial's completion interrupt goes the same way.
        write32(&d, BAR0, STATUS, STATUS_IRQ_ON_FACTORIAL);
        write32(&d, BAR0, FACTORIAL, 3);
        assert!(eventually(|| sub.take(MSI, 0) == Some(1)));
        assert_eq!(read32(&d, BAR0, INTERRUPT_STATUS), IRQ_FACTORIAL_DONE);
        assert_eq!(read32(&d, BAR0, FACTORIAL), 6);
        // Disabling MSI with the status still set falls back to INTx.
        d.write(CONFIG, 0x42, &0u16.to_le_bytes()).unwrap();
        assert_eq!(sub.take(INTX, 0), Some(1));
    }

    #[test]
    fn factorial_completion_raises_intx() {
        let d = edu();
        let sub = d.interrupts().subscribe();
        write32(&d, BAR0, STATUS, STATUS_IRQ_ON_FACTORIAL);
        write32(&d, BAR0, FACTORIAL, 10);
        assert!(eventually(|| sub.take(INTX, 0) == Some(1)));
        assert_eq!(read32(&d, BAR0, FACTORIAL), 3_628_800);
        assert_eq!(read32(&d, BAR0, INTERRUPT_STATUS), IRQ_FACTORIAL_DONE);
        assert_eq!(read32(&d, BAR0, STATUS), STATUS_IRQ_ON_FACTORIAL);
    }

    fn write64(d: &Edu, offset: u64, value: u64) {
        d.write(BAR0, offset, &value.to_le_bytes()).unwrap();
    }

    /// Runs one DMA transfer and waits for its completion interrupt.
    fn dma(d: &Edu, sub: &devfd_device::Subscriber, src: u64, dst: u64, count: u64, to_pci: bool) {
        write64(d, DMA_SOURCE, src);
        write64(d, DMA_DESTINATION, dst);
        write64(d, DMA_COUNT, count);
        let dir = if to_pci { DMA_TO_PCI } else { 0 };
        write64(d, DMA_COMMAND, DMA_RUN | DMA_IRQ | dir);
        assert!(eventually(|| sub.take(INTX, 0) == Some(1)));
        assert_eq!(read32(d, BAR0, INTERRUPT_STATUS), IRQ_DMA_DONE);
        write32(d, BAR0, INTERRUPT_ACK, IRQ_DMA_DONE);
        d.interrupts().set_masked(INTX, 0, false);
        assert_eq!(read32(d, BAR0, DMA_COMMAND) & DMA_RUN as u32, 0);
    }

    #[test]
    fn dma_round_trip_through_the_window() {
        let window = Arc::new(DmaMemory::new(8192, crate::DEFAULT_BUS_ADDRESS).unwrap());
        let d = Edu::new(EduOptions {
            dma: Some(window.clone()),
            ..Default::default()
        })
        .unwrap();
        let p = devfd_format::parse(d.description()).unwrap();
        let r = p.region(Edu::DMA_REGION).unwrap();
        assert_eq!(r.dma_address(), Some(crate::DEFAULT_BUS_ADDRESS));
        assert!(d.shared_memory(Edu::DMA_REGION).is_some());
        let sub = d.interrupts().subscribe();
        let bus = crate::DEFAULT_BUS_ADDRESS;
        // Without bus mastering nothing moves.
        window.memory().write_at(0, &[9; 16]).unwrap();
        dma(&d, &sub, bus, DMA_BUFFER_START, 16, false);
        dma(&d, &sub, DMA_BUFFER_START, bus + 4096, 16, true);
        let mut none = [0u8; 16];
        window.memory().read_at(4096, &mut none).unwrap();
        assert_eq!(none, [0; 16]);
        d.write(CONFIG, 4, &COMMAND_BUS_MASTER.to_le_bytes())
            .unwrap();
        let pattern: Vec<u8> = (0..256u32).map(|i| (i * 7) as u8).collect();
        window.memory().write_at(0, &pattern).unwrap();
        // RAM → buffer, then buffer → RAM one page further on.
        dma(&d, &sub, bus, DMA_BUFFER_START, 256, false);
        dma(&d, &sub, DMA_BUFFER_START, bus + 4096, 256, true);
        let mut back = vec![0u8; 256];
        window.memory().read_at(4096, &mut back).unwrap();
        assert_eq!(back, pattern);
        // Outside the window: nothing moves, the transfer still completes.
        dma(&d, &sub, DMA_BUFFER_START, bus + 8192 - 16, 256, true);
        window.memory().read_at(8192 - 16, &mut back[..16]).unwrap();
        assert!(back[..16].iter().all(|&b| b == 0));
        // Outside the buffer: likewise.
        dma(&d, &sub, bus, DMA_BUFFER_START + 4000, 256, false);
    }

    #[test]
    fn config_space_through_the_device() {
        let d = edu();
        assert_eq!(read32(&d, CONFIG, 0), 0x11e8_1234);
        assert_eq!(read32(&d, CONFIG, 8), 0x00ff_0010);
        assert_eq!(read32(&d, CONFIG, 0x2c), 0x1100_1af4);
        write32(&d, CONFIG, 0x10, u32::MAX);
        assert_eq!(read32(&d, CONFIG, 0x10), 0xfff0_0000);
        let mut b = [0; 8];
        d.read(CONFIG, 0x40, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x0000_0000_0080_0005);
        d.write(CONFIG, 0x48, &u64::MAX.to_le_bytes()).unwrap();
        d.read(CONFIG, 0x48, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x0000_ffff_ffff_ffff);
        let mut one = [0];
        d.read(CONFIG, 0x3d, &mut one).unwrap();
        assert_eq!(one, [1]);
    }

    #[test]
    fn reset_restores_power_on_state() {
        let d = Edu::new(EduOptions {
            factorial_time: Duration::from_millis(200),
            ..Default::default()
        })
        .unwrap();
        let sub = d.interrupts().subscribe();
        write32(&d, BAR0, LIVENESS, 1);
        write32(&d, BAR0, STATUS, STATUS_IRQ_ON_FACTORIAL);
        write32(&d, BAR0, INTERRUPT_RAISE, 0x10);
        write32(&d, CONFIG, 0x10, 0xfe00_0000);
        write32(&d, CONFIG, 0x40, 0x0001_0000);
        d.interrupts().set_masked(MSI, 0, true);
        write32(&d, BAR0, FACTORIAL, 5);
        d.reset();
        assert_eq!(read32(&d, BAR0, LIVENESS), u32::MAX);
        assert_eq!(read32(&d, BAR0, STATUS), 0);
        assert_eq!(read32(&d, BAR0, INTERRUPT_STATUS), 0);
        assert_eq!(read32(&d, CONFIG, 0x10), 0);
        assert_eq!(read32(&d, CONFIG, 0x40), 0x0080_0005);
        assert_eq!(d.interrupts().is_masked(MSI, 0), Some(false));
        assert_eq!(d.interrupts().is_masked(INTX, 0), Some(false));
        // The computation started before the reset never lands.
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(read32(&d, BAR0, FACTORIAL), 0);
        assert_eq!(read32(&d, BAR0, INTERRUPT_STATUS), 0);
        let _ = sub.take(INTX, 0);
        assert_eq!(sub.take(MSI, 0), Some(0));
        // And the worker still serves new work.
        write32(&d, BAR0, STATUS, 0);
        assert_eq!(compute(&d, 4), 24);
    }

    #[test]
    fn drop_stops_a_busy_worker_promptly() {
        let d = Edu::new(EduOptions {
            factorial_time: Duration::from_secs(600),
            ..Default::default()
        })
        .unwrap();
        write32(&d, BAR0, FACTORIAL, 3);
        let start = Instant::now();
        drop(d);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn concurrent_access_is_consistent() {
        let d = Arc::new(edu());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let d = d.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        write32(&d, BAR0, INTERRUPT_RAISE, 1 << t);
                        write32(&d, BAR0, INTERRUPT_ACK, 1 << t);
                        let _ = read32(&d, CONFIG, 4);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(read32(&d, BAR0, INTERRUPT_STATUS), 0);
        assert_eq!(read32(&d, CONFIG, 4) >> 16 & 0x8, 0);
    }
}
