//! `edu-driver DEVICE-FILE [--no-irq]`: a user-space driver for QEMU's edu written against a
//! devfd device file, and the test that one driver runs unchanged on every source: the
//! emulated edu (`devfd serve --device edu --dma 1M`), the real edu through VFIO in a VM
//! (`devfd serve --vfio BDF --dma 1M`), and the real edu from sysfs (`devfd serve --pci BDF
//! --allow-bar-access`, which has no interrupts or DMA: those checks say SKIP and why).
//!
//! It finds everything through the description: BAR0, config space, INTx and MSI, the DMA
//! window and its bus address. Each check prints `PASS name`, `SKIP name: why` or
//! `FAIL name: why`; the exit status is 1 if any failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use devfd_client::{ClientError, DeviceFile, Mapping, RegionInfo};

const ID: u64 = 0x00;
const LIVENESS: u64 = 0x04;
const FACTORIAL: u64 = 0x08;
const STATUS: u64 = 0x20;
const IRQ_STATUS: u64 = 0x24;
const IRQ_ACK: u64 = 0x64;
const DMA_SRC: u64 = 0x80;
const DMA_DST: u64 = 0x88;
const DMA_COUNT: u64 = 0x90;
const DMA_CMD: u64 = 0x98;
const STATUS_COMPUTING: u32 = 0x01;
const STATUS_IRQ_ON_FACTORIAL: u32 = 0x80;
const IRQ_FACTORIAL: u32 = 0x01;
const IRQ_DMA: u32 = 0x100;
const DMA_RUN: u64 = 1;
const DMA_TO_PCI: u64 = 2;
const DMA_IRQ: u64 = 4;
const DMA_BUFFER: u64 = 0x40000;
const WAIT: Duration = Duration::from_secs(10);

type Check = Result<(), String>;

/// How the driver reaches the DMA window: mapped (the normal way), or through reads and
/// writes of the region where the server cannot hand out mappings (a FUSE without
/// passthrough, such as Linux 6.1's).
enum Window {
    Mapped(Mapping),
    Bulk(RegionInfo),
}

impl Window {
    fn fill(&self, dev: &DeviceFile, offset: u64, data: &[u8]) -> Check {
        match self {
            Window::Mapped(m) => m
                .copy_from(data, offset as usize)
                .map_err(e("filling the window")),
            Window::Bulk(r) => dev
                .write_bulk(*r, offset, data)
                .map_err(e("writing the window")),
        }
    }

    fn fetch(&self, dev: &DeviceFile, offset: u64, buf: &mut [u8]) -> Check {
        match self {
            Window::Mapped(m) => m
                .copy_to(buf, offset as usize)
                .map_err(e("reading the window")),
            Window::Bulk(r) => dev
                .read_bulk(*r, offset, buf)
                .map_err(e("reading the window")),
        }
    }

    fn bus(&self, offset: u64) -> Option<u64> {
        match self {
            Window::Mapped(m) => m.bus_address(offset as usize),
            Window::Bulk(r) => r
                .dma_address?
                .checked_add(offset)
                .filter(|_| offset < r.size),
        }
    }
}

struct Driver {
    dev: DeviceFile,
    bar0: u32,
}

fn e(what: &str) -> impl Fn(devfd_client::ClientError) -> String + '_ {
    move |err| format!("{what}: {err}")
}

impl Driver {
    fn r32(&self, off: u64) -> Result<u32, String> {
        self.dev.read_u32(self.bar0, off).map_err(e("read"))
    }

    fn w32(&self, off: u64, v: u32) -> Check {
        self.dev.write_u32(self.bar0, off, v).map_err(e("write"))
    }

    fn w64(&self, off: u64, v: u64) -> Check {
        self.dev.write_u64(self.bar0, off, v).map_err(e("write"))
    }

    fn id(&self) -> Check {
        let id = self.r32(ID)?;
        if id & 0xff != 0xed {
            return Err(format!("ID register {id:#010x} is not edu's"));
        }
        Ok(())
    }

    fn liveness(&self) -> Check {
        for v in [0x1234_5678u32, 0, u32::MAX, 0xa5a5_5a5a] {
            self.w32(LIVENESS, v)?;
            let back = self.r32(LIVENESS)?;
            if back != !v {
                return Err(format!("wrote {v:#x}, read {back:#x} (want {:#x})", !v));
            }
        }
        Ok(())
    }

    fn factorial_polled(&self) -> Check {
        self.w32(STATUS, 0)?;
        self.w32(FACTORIAL, 10)?;
        let start = Instant::now();
        while self.r32(STATUS)? & STATUS_COMPUTING != 0 {
            if start.elapsed() > WAIT {
                return Err("still computing after 10 s".into());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        match self.r32(FACTORIAL)? {
            3_628_800 => Ok(()),
            v => Err(format!("10! read as {v}")),
        }
    }

    /// Waits for one event of interrupt `irq`, acknowledges `bits` at the device and, for an
    /// automasked vector, at the device file.
    fn await_irq(&self, irq: u32, bits: u32) -> Check {
        let events = self
            .dev
            .wait_interrupt(irq, Some(WAIT))
            .map_err(e("waiting for the interrupt"))?;
        if events == 0 {
            return Err("no event".into());
        }
        let status = self.r32(IRQ_STATUS)?;
        if status & bits != bits {
            return Err(format!("interrupt status {status:#x}, want bits {bits:#x}"));
        }
        self.w32(IRQ_ACK, status)?;
        if self.dev.is_masked(irq, 0).map_err(e("mask word"))? {
            self.dev.unmask(irq, 0).map_err(e("acknowledging"))?;
        }
        Ok(())
    }

    fn factorial_with_irq(&self, irq: u32) -> Check {
        self.w32(STATUS, STATUS_IRQ_ON_FACTORIAL)?;
        self.w32(FACTORIAL, 5)?;
        self.await_irq(irq, IRQ_FACTORIAL)?;
        self.w32(STATUS, 0)?;
        match self.r32(FACTORIAL)? {
            120 => Ok(()),
            v => Err(format!("5! read as {v}")),
        }
    }

    /// Sets or clears MSI enable in the MSI capability's message control.
    fn set_msi(&self, on: bool) -> Check {
        let config = self
            .dev
            .pci_config()
            .ok_or("no configuration space region")?;
        let mut cap = self.dev.read_u8(config, 0x34).map_err(e("config"))? & 0xfc;
        for _ in 0..48 {
            if cap < 0x40 {
                break;
            }
            if self
                .dev
                .read_u8(config, u64::from(cap))
                .map_err(e("config"))?
                == 0x05
            {
                let at = u64::from(cap) + 2;
                let control = self.dev.read_u16(config, at).map_err(e("config"))?;
                let control = if on { control | 1 } else { control & !1 };
                return self
                    .dev
                    .write_u16(config, at, control)
                    .map_err(e("MSI enable"));
            }
            cap = self
                .dev
                .read_u8(config, u64::from(cap) + 1)
                .map_err(e("config"))?
                & 0xfc;
        }
        Err("no MSI capability".into())
    }

    /// Raw `pread`/`pwrite` a buggy or hostile client might make: each is answered with the
    /// errno SPEC.md §6.6 assigns, and has no effect.
    fn hostile(&self) -> Check {
        use std::os::unix::fs::FileExt;
        let f = self.dev.file();
        let r = self.dev.region(self.bar0).ok_or("no BAR0")?;
        let expect = |what: &str, result: std::io::Result<usize>, errno: i32| match result {
            Ok(n) => Err(format!("{what}: succeeded ({n} bytes)")),
            Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
            Err(e) => Err(format!("{what}: {e}, want errno {errno}")),
        };
        let mut b = [0u8; 4];
        expect(
            "misaligned 4-byte read",
            f.read_at(&mut b, r.offset + 2),
            libc::EINVAL,
        )?;
        expect(
            "3-byte read",
            f.read_at(&mut b[..3], r.offset),
            libc::EINVAL,
        )?;
        expect(
            "read across BAR0's end",
            f.read_at(&mut b, r.offset + r.size - 2),
            libc::ENXIO,
        )?;
        expect(
            "write to the description",
            f.write_at(&[0], 16),
            libc::EPERM,
        )?;
        if let Some(irq) = self.dev.interrupts().first() {
            expect(
                "2-byte read of an event counter",
                f.read_at(&mut b[..2], irq.control_offset),
                libc::EINVAL,
            )?;
            expect(
                "write to an event counter",
                f.write_at(&[0; 8], irq.control_offset),
                libc::EPERM,
            )?;
        }
        if self.r32(ID)? & 0xff != 0xed {
            return Err("the device changed".into());
        }
        Ok(())
    }

    /// Driver start-up: memory decoding and bus mastering on (DMA and MSI are memory writes
    /// by the device), and no interrupt left over from an earlier user of the device.
    fn init(&self) {
        if let Some(config) = self.dev.pci_config()
            && let Ok(command) = self.dev.read_u16(config, 4)
        {
            let _ = self.dev.write_u16(config, 4, command | 0x6);
        }
        let _ = self.w32(IRQ_ACK, u32::MAX);
        let _ = self.w32(STATUS, 0);
        let _ = self.set_msi(false);
        for irq in self.dev.interrupts().to_vec() {
            for v in 0..irq.count {
                if self.dev.is_masked(irq.index, v).unwrap_or(false) {
                    let _ = self.dev.unmask(irq.index, v);
                }
            }
            let _ = self.dev.interrupt_count(irq.index, 0);
        }
    }

    fn dma(&self, irq: u32, window: &Window) -> Check {
        let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 13 + 7) as u8).collect();
        window.fill(&self.dev, 0, &pattern)?;
        window.fill(&self.dev, 8192, &[0u8; 1024])?;
        let to_device = window.bus(0).ok_or("no bus address")?;
        let back = window.bus(8192).ok_or("window smaller than 12 KiB")?;
        // RAM → edu's buffer, then the buffer → RAM further on, each with its interrupt.
        for (src, dst, dir) in [(to_device, DMA_BUFFER, 0), (DMA_BUFFER, back, DMA_TO_PCI)] {
            self.w64(DMA_SRC, src)?;
            self.w64(DMA_DST, dst)?;
            self.w64(DMA_COUNT, pattern.len() as u64)?;
            self.w64(DMA_CMD, DMA_RUN | DMA_IRQ | dir)?;
            self.await_irq(irq, IRQ_DMA)?;
        }
        let mut got = vec![0u8; pattern.len()];
        window.fetch(&self.dev, 8192, &mut got)?;
        if got != pattern {
            let first = got
                .iter()
                .zip(&pattern)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            return Err(format!(
                "the bytes that came back differ from byte {first} on"
            ));
        }
        Ok(())
    }
}

fn report(name: &str, result: Check, failed: &mut bool) {
    match result {
        Ok(()) => println!("PASS {name}"),
        Err(why) if why.starts_with("skip: ") => println!("SKIP {name}: {}", &why[6..]),
        Err(why) => {
            println!("FAIL {name}: {why}");
            *failed = true;
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: edu-driver DEVICE-FILE [--no-irq]");
        return ExitCode::from(2);
    };
    let dev = match DeviceFile::open(path) {
        Ok(d) => d,
        Err(err) => {
            eprintln!("edu-driver: {path}: {err}");
            return ExitCode::from(2);
        }
    };
    let Some(bar0) = dev.pci_bar(0) else {
        eprintln!("edu-driver: {path}: no BAR0");
        return ExitCode::from(2);
    };
    let driver = Driver {
        bar0: bar0.index,
        dev,
    };
    let mut failed = false;
    driver.init();
    let irqs = !args.iter().any(|a| a == "--no-irq");
    let intx = driver.dev.resolve_interrupt("intx").ok().map(|i| i.index);
    let msi = driver.dev.resolve_interrupt("msi").ok().map(|i| i.index);
    report("id", driver.id(), &mut failed);
    report("liveness", driver.liveness(), &mut failed);
    report("factorial (polled)", driver.factorial_polled(), &mut failed);
    report(
        "hostile accesses get SPEC errnos",
        driver.hostile(),
        &mut failed,
    );
    let skip = |why: &str| Err(format!("skip: {why}"));
    let irq_check = |irq: Option<u32>, f: &dyn Fn(u32) -> Check| match (irqs, irq) {
        (false, _) => skip("--no-irq: this source delivers no interrupts"),
        (true, None) => skip("the device has no such interrupt"),
        (true, Some(i)) => f(i),
    };
    report(
        "factorial with INTx",
        irq_check(intx, &|i| driver.factorial_with_irq(i)),
        &mut failed,
    );
    let window = driver
        .dev
        .dma_windows()
        .next()
        .map(|w| match driver.dev.map(w) {
            Ok(m) => Ok(Window::Mapped(m)),
            Err(ClientError::MmapUnavailable { .. }) => {
                println!(
                    "NOTE the DMA window cannot be mapped here; reaching it by read and write"
                );
                Ok(Window::Bulk(w))
            }
            Err(err) => Err(err),
        });
    let dma_result = |irq: u32| match &window {
        None => skip("the device file has no DMA window"),
        Some(Err(err)) => Err(format!("mapping the DMA window: {err}")),
        Some(Ok(w)) => driver.dma(irq, w),
    };
    report(
        "DMA round trip with INTx",
        irq_check(intx, &dma_result),
        &mut failed,
    );
    report(
        "factorial with MSI",
        irq_check(msi, &|i| {
            driver.set_msi(true)?;
            let r = driver.factorial_with_irq(i);
            driver.set_msi(false)?;
            r
        }),
        &mut failed,
    );
    report(
        "DMA round trip with MSI",
        irq_check(msi, &|i| {
            driver.set_msi(true)?;
            let r = dma_result(i);
            driver.set_msi(false)?;
            r
        }),
        &mut failed,
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
