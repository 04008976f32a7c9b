//! The one clap definition: help text, the man page and shell completions all come from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// devfd: device files that describe themselves.
///
/// A devfd description is the fixed header and typed records at offset 0 of a device file
/// (SPEC.md). These commands show, check, build and flatten descriptions, whether they sit in a
/// file on disk or at offset 0 of a live device file.
///
/// Exit status: 0 success; 1 `lint` found problems; 2 bad input or usage. Anything else
/// (101: a panic) is a bug worth reporting.
#[derive(Debug, Parser)]
#[command(name = "devfd", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a description as a tree plus an address map of the file.
    Inspect(InspectArgs),
    /// Check a description against every rule of SPEC.md; list every problem with its byte offset.
    Lint(LintArgs),
    /// Build a description from a TOML description file (see examples/ and docs/DESCRIBE.md).
    Build(BuildArgs),
    /// Print the flat resource table: every region and interrupt as one fixed-size entry.
    Flat(FlatArgs),
    /// Serve devices as device files on a FUSE mount (default: the three demo devices).
    Serve(ServeArgs),
    /// List the device files in a directory, one line each.
    Ls(LsArgs),
    /// Show a live device file: the inspect view of its description.
    Info(InfoArgs),
    /// Read registers or memory of a device: prints `0x…` values.
    Read(ReadArgs),
    /// Write one value to a register of a device.
    Write(WriteArgs),
    /// Hex dump of a region of a device.
    Dump(DumpArgs),
    /// Interrupts of a device: wait for one, mask or unmask a vector.
    #[command(subcommand)]
    Irq(IrqCommand),
    /// Print the man page (roff) to standard output.
    Man,
    /// Print a shell completion script to standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A description to read: a file, a device file, or `-` for standard input.
#[derive(Debug, Args)]
pub struct Input {
    /// Description blob or device file (`-`: standard input). Without it, the built-in demo
    /// device (QEMU's edu, from examples/edu.toml).
    pub file: Option<PathBuf>,
}

/// Arguments of `devfd inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: Input,
    /// Print JSON (bus, version, device, regions, interrupts, records) instead of the tree.
    #[arg(long, conflicts_with = "hex")]
    pub json: bool,
    /// Print an annotated hex dump of every record instead of the tree.
    #[arg(long)]
    pub hex: bool,
}

/// Arguments of `devfd lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Description blobs or device files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `devfd build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The TOML description file.
    pub desc: PathBuf,
    /// Where to write the description (`-`: standard output).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Arguments of `devfd flat`.
#[derive(Debug, Args)]
pub struct FlatArgs {
    #[command(flatten)]
    pub input: Input,
    /// Print the entries as JSON.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// Write the 64-byte little-endian entries of SPEC.md appendix A to standard output.
    #[arg(long)]
    pub raw: bool,
}

/// Arguments of `devfd serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Mount point (default: /run/devfd as root, else $XDG_RUNTIME_DIR/devfd).
    #[arg(long)]
    pub mount: Option<PathBuf>,
    /// A device to serve: `edu`, `pl031`, `memory[,size=4M]`. Repeat for more; without any,
    /// the demo set (edu, pl031, memory) is served.
    #[arg(long = "device", value_name = "KIND[,KEY=VALUE...]")]
    pub devices: Vec<String>,
    /// Let every user open the device files (default: only the owner).
    #[arg(long)]
    pub allow_other: bool,
    /// Log every access (device, region, offset, width, value, errno) to standard error.
    #[arg(long)]
    pub trace: bool,
    /// Bound on each call into a device model, in milliseconds; slower calls fail ETIMEDOUT.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub bound_ms: u64,
    /// Threads serving FUSE requests.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Serve real PCI functions of this machine from sysfs (`0000:00:03.0` or `00:03.0`),
    /// beside any `--device`. Config space is readable; BARs and config writes are refused
    /// (EPERM) unless allowed below, and both are refused (EBUSY) while a kernel driver is
    /// bound. Interrupts are described but never delivered (that needs VFIO). Needs root.
    #[arg(long, value_name = "BDF[,BDF...]", value_delimiter = ',')]
    pub pci: Vec<String>,
    /// With --pci: let clients write config space of functions no driver is bound to.
    #[arg(long, requires = "pci")]
    pub allow_write: bool,
    /// With --pci: let clients read and write the BARs (sysfs resourceN) of functions no
    /// driver is bound to.
    #[arg(long, requires = "pci")]
    pub allow_bar_access: bool,
    /// Serve the nodes of this device tree (a DTB file, /sys/firmware/fdt, or a
    /// /proc/device-tree style directory) that have an emulated model (arm,pl031 RTC,
    /// arm,pl011 UART), beside any `--device`; the others are skipped with a note. Each
    /// model's description comes from its node: its reg entries and interrupts.
    #[arg(long, value_name = "FILE|DIR")]
    pub dtb: Option<PathBuf>,
    /// With --dtb: serve only this node (its path; repeat for more). A node without a model
    /// is then an error.
    #[arg(long = "node", value_name = "PATH", requires = "dtb")]
    pub nodes: Vec<String>,
    /// Serve PCI functions bound to vfio-pci through the kernel's VFIO API (group/container):
    /// description from what the kernel reports, accesses to the VFIO device, interrupts from
    /// eventfds, reset. Needs root and an IOMMU.
    #[arg(long, value_name = "BDF[,BDF...]", value_delimiter = ',')]
    pub vfio: Vec<String>,
    /// Give every DMA-capable device a DMA window of this many bytes (`1M`, `64K`): shared
    /// memory the device reaches at a bus address, served as an mmap region with that address
    /// (DMA_WINDOW). VFIO devices get it mapped by the IOMMU; the emulated edu's DMA engine
    /// reaches it.
    #[arg(long, value_name = "SIZE")]
    pub dma: Option<String>,
    /// Serve the devices over vfio-user instead of as device files: a Unix socket at PATH for
    /// one device, or a directory PATH of sockets (`edu0.sock`, …) for several. Clients such
    /// as QEMU's `vfio-user-pci` connect one at a time; the client's DMA_MAP memory is what
    /// the device's DMA engine reaches. Only PCI devices can be served (default: one edu).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["mount", "dma"])]
    pub vfio_user: Option<PathBuf>,
    /// Present the device of a vfio-user server (its socket) as a device file, beside any
    /// `--device`: description from its region and irq info, accesses as REGION_READ and
    /// REGION_WRITE, interrupts from eventfds; with --dma, a DMA window given to the server
    /// with DMA_MAP. Repeat for more servers.
    #[arg(long, value_name = "SOCKET", conflicts_with = "vfio_user")]
    pub vfio_user_connect: Vec<PathBuf>,
}

/// Arguments of `devfd ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Directory of device files (default: where `devfd serve` mounts).
    pub dir: Option<PathBuf>,
    /// Print JSON: one object per device with `path`, `bus`, and `vendor`/`device` for PCI.
    #[arg(long)]
    pub json: bool,
    /// List this machine's PCI functions from sysfs instead, one line each like lspci
    /// (address, class, vendor:device, driver, BARs with sizes, interrupts).
    #[arg(long, conflicts_with = "dir")]
    pub pci: bool,
    /// List the device nodes (nodes with reg or interrupts) of a device tree instead: a DTB
    /// file, /sys/firmware/fdt, or a /proc/device-tree style directory. One line each: path,
    /// compatible, status, regs (CPU address + size), interrupts (controller + cells).
    #[arg(long, value_name = "FILE|DIR", conflicts_with_all = ["dir", "pci"])]
    pub dtb: Option<PathBuf>,
}

/// Arguments of `devfd info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The device file.
    #[arg(required_unless_present_any = ["pci", "vfio", "vfio_user"])]
    pub path: Option<PathBuf>,
    /// Show the description devfd builds for a PCI function of this machine (sysfs) instead.
    #[arg(long, value_name = "BDF", conflicts_with = "path")]
    pub pci: Option<String>,
    /// Show the description devfd builds for a node of this device tree (DTB file,
    /// /sys/firmware/fdt or /proc/device-tree style directory) instead; PATH is then the
    /// node's path (`devfd info --dtb virt.dtb /pl031@9010000`).
    #[arg(long, value_name = "FILE|DIR", conflicts_with = "pci")]
    pub dtb: Option<PathBuf>,
    /// Show what the kernel's VFIO API reports for a function bound to vfio-pci (regions with
    /// their capabilities, irqs) and the description devfd builds from it.
    #[arg(long, value_name = "BDF", conflicts_with_all = ["path", "pci", "dtb"])]
    pub vfio: Option<String>,
    /// Show what a vfio-user server reports for its device (regions with their
    /// capabilities, irqs), as devfd's client source sees it, and the description it builds.
    #[arg(long, value_name = "SOCKET", conflicts_with_all = ["path", "pci", "dtb", "vfio"])]
    pub vfio_user: Option<PathBuf>,
    /// Print JSON instead of the tree.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `devfd read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The device file.
    pub path: PathBuf,
    /// Region: an index, `bar0`…`bar5`, `rom`, `config`, `dt:N`, or a label.
    pub region: String,
    /// Offset within the region (decimal or 0x…).
    #[arg(value_parser = parse_u64)]
    pub offset: u64,
    /// Bytes per access.
    #[arg(long, default_value_t = 4, value_parser = parse_width)]
    pub width: u8,
    /// Number of consecutive values.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
}

/// Arguments of `devfd write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The device file.
    pub path: PathBuf,
    /// Region: an index, `bar0`…`bar5`, `rom`, `config`, `dt:N`, or a label.
    pub region: String,
    /// Offset within the region (decimal or 0x…).
    #[arg(value_parser = parse_u64)]
    pub offset: u64,
    /// The value (decimal or 0x…).
    #[arg(value_parser = parse_u64)]
    pub value: u64,
    /// Bytes per access.
    #[arg(long, default_value_t = 4, value_parser = parse_width)]
    pub width: u8,
}

/// Arguments of `devfd dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The device file.
    pub path: PathBuf,
    /// Region: an index, `bar0`…`bar5`, `rom`, `config`, `dt:N`, or a label.
    pub region: String,
    /// First offset within the region.
    #[arg(long, default_value_t = 0, value_parser = parse_u64)]
    pub offset: u64,
    /// Bytes to dump (default: the whole region, at most 64 KiB).
    #[arg(long, value_parser = parse_u64)]
    pub length: Option<u64>,
}

/// `devfd irq …`.
#[derive(Debug, Subcommand)]
pub enum IrqCommand {
    /// Wait for an interrupt; prints how many events arrived. Exit 1 on timeout.
    Wait {
        /// The device file.
        path: PathBuf,
        /// Interrupt: an index, a kind (`intx`, `msi`, …), `dt:N`, or a label.
        index: String,
        /// Give up after this many milliseconds (default: wait forever).
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
    },
    /// Mask a vector.
    Mask {
        /// The device file.
        path: PathBuf,
        /// Interrupt.
        index: String,
        /// Vector.
        #[arg(long, default_value_t = 0)]
        vector: u32,
    },
    /// Unmask (acknowledge) a vector.
    Unmask {
        /// The device file.
        path: PathBuf,
        /// Interrupt.
        index: String,
        /// Vector.
        #[arg(long, default_value_t = 0)]
        vector: u32,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => s.replace('_', "").parse(),
    };
    parsed.map_err(|e| format!("{s:?} is not a number: {e}"))
}

fn parse_width(s: &str) -> Result<u8, String> {
    match s {
        "1" | "2" | "4" | "8" => Ok(s.parse().unwrap_or(4)),
        _ => Err(format!("width must be 1, 2, 4 or 8, not {s}")),
    }
}
