//! DTB → descriptions for a generated 10,000-node tree, against `dtc -I dtb -O dts` of the
//! same DTB, in one run pinned to one CPU (dtc, a child process, inherits the pinning).
//!
//! devfd's side is everything `devfd` does before it can serve or list: check the blob
//! ([`Tree::parse`]), check the semantics of every node ([`DeviceTree::from_tree`]: cells,
//! ranges and translation, phandles, interrupt parents), then build and validate the
//! description of every device ([`DtNode::build`]). dtc's side is one `dtc -I dtb -O dts -o
//! /dev/null FILE` run, process start included, as a user would run it.
//!
//! ```text
//! cargo bench -p devfd-dtb --bench dtb_vs_dtc
//! ```
//! `DEVFD_BENCH_CPU` picks the CPU (default 0), `DEVFD_BENCH_ROUNDS` the rounds (default 21),
//! `DEVFD_BENCH_NODES` the tree size (default 10000). Prints a Markdown table.

use std::process::Command;
use std::time::{Duration, Instant};

use devfd_dtb::write::FdtWriter;
use devfd_dtb::{DeviceTree, Tree};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn die(msg: String) -> ! {
    eprintln!("dtb_vs_dtc: {msg}");
    std::process::exit(1);
}

fn pin(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        die(format!("CPU {cpu} out of range"));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        die(format!(
            "cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ));
    }
}

/// A tree of `nodes` nodes shaped like QEMU virt's platform devices: the root, a GIC, a
/// simple-bus with a non-identity `ranges`, and devices under it, each with `compatible`
/// (2 strings), `reg`, `interrupts` (3 GIC cells), `clocks`, `status`, and every eighth with
/// `reg-names`/`interrupt-names`.
fn generate(nodes: usize) -> Vec<u8> {
    let mut w = FdtWriter::new();
    w.begin_node("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2])
        .strings("compatible", &["devfd,bench"])
        .strings("model", &["devfd benchmark tree"])
        .cells("interrupt-parent", &[1]);
    w.begin_node("intc@8000000")
        .cells("phandle", &[1])
        .strings("compatible", &["arm,cortex-a15-gic"])
        .property("interrupt-controller", &[])
        .cells("#interrupt-cells", &[3])
        .cells(
            "reg",
            &[0, 0x800_0000, 0, 0x1_0000, 0, 0x801_0000, 0, 0x1_0000],
        )
        .end_node();
    w.begin_node("soc")
        .strings("compatible", &["simple-bus"])
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .cells("ranges", &[0, 0x1, 0, 0x4000_0000]);
    for i in 0..nodes.saturating_sub(3) as u32 {
        let addr = i * 0x1000;
        w.begin_node(&format!("block@{addr:x}"))
            .strings("compatible", &["devfd,block", "devfd,generic"])
            .cells("reg", &[addr, 0x1000])
            .cells("interrupts", &[0, 32 + (i % 900), 4])
            .cells("clocks", &[1])
            .strings("status", &["okay"]);
        if i % 8 == 0 {
            w.strings("reg-names", &["registers"])
                .strings("interrupt-names", &["irq"]);
        }
        w.end_node();
    }
    w.end_node().end_node();
    w.finish()
}

/// Everything devfd does from blob to descriptions; returns how many it built.
fn describe(bytes: &[u8]) -> usize {
    let dt = match Tree::parse(bytes).and_then(DeviceTree::from_tree) {
        Ok(dt) => dt,
        Err(e) => die(format!("the generated tree is invalid: {e}")),
    };
    match dt.describe_all() {
        Ok(all) => all.len(),
        Err(e) => die(format!("describing: {e}")),
    }
}

fn dtc(path: &std::path::Path) {
    let status = Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts", "-o", "/dev/null"])
        .arg(path)
        .status()
        .unwrap_or_else(|e| {
            die(format!(
                "dtc does not run ({e}); install device-tree-compiler"
            ))
        });
    if !status.success() {
        die(format!("dtc failed: {status}"));
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        die("usage: cargo bench -p devfd-dtb --bench dtb_vs_dtc".into());
    }
    let cpu = env("DEVFD_BENCH_CPU", 0);
    let rounds = env("DEVFD_BENCH_ROUNDS", 21).max(1);
    let nodes = env("DEVFD_BENCH_NODES", 10_000).max(3);
    pin(cpu);
    let bytes = generate(nodes);
    let path = std::env::temp_dir().join(format!("devfd-bench-{}.dtb", std::process::id()));
    std::fs::write(&path, &bytes).unwrap_or_else(|e| die(format!("{}: {e}", path.display())));
    let tree = Tree::parse(&bytes).unwrap_or_else(|e| die(e.to_string()));
    assert_eq!(tree.len(), nodes);
    let props: usize = tree.nodes().map(|n| tree.properties(n).len()).sum();

    // Warm up both (page cache, dtc's binary, allocator), then interleave the rounds.
    let devices = describe(&bytes);
    dtc(&path);
    let (mut ours, mut theirs, mut parse_only) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut run_ours = || {
            let t = Instant::now();
            std::hint::black_box(describe(std::hint::black_box(&bytes)));
            ours.push(t.elapsed());
            let t = Instant::now();
            let dt = Tree::parse(std::hint::black_box(&bytes)).and_then(DeviceTree::from_tree);
            std::hint::black_box(dt.is_ok());
            parse_only.push(t.elapsed());
        };
        let mut run_dtc = || {
            let t = Instant::now();
            dtc(&path);
            theirs.push(t.elapsed());
        };
        if round % 2 == 0 {
            run_ours();
            run_dtc();
        } else {
            run_dtc();
            run_ours();
        }
    }
    let _ = std::fs::remove_file(&path);
    let (o, p, d) = (median(ours), median(parse_only), median(theirs));
    let dtc_version = Command::new("dtc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "DTB: {nodes} nodes, {props} properties, {} bytes; {devices} device descriptions built. \
         {rounds} interleaved rounds pinned to CPU {cpu}; medians. {dtc_version}.\n",
        bytes.len()
    );
    println!("| step | time | ÷ dtc |");
    println!("|---|---:|---:|");
    let ratio = |x: Duration| x.as_secs_f64() / d.as_secs_f64();
    println!(
        "| devfd: check blob + semantics of every node | {} | {:.2}× |",
        ms(p),
        ratio(p)
    );
    println!(
        "| devfd: the above + build and validate {devices} descriptions | {} | {:.2}× |",
        ms(o),
        ratio(o)
    );
    println!(
        "| `dtc -I dtb -O dts -o /dev/null` (a process) | {} | 1× |",
        ms(d)
    );
    println!(
        "\nGoal (DTB → descriptions faster than dtc → DTS): {}.",
        if o < d { "met" } else { "missed" }
    );
}
