//! devfd-format `parse` (validate + view) against libfdt, in one run, pinned to one CPU.
//!
//! For each description (the edu and PL031 descriptions exactly as `devfd serve` serves
//! them, and two large generated platform devices) it compiles, with `dtc`, a device tree of
//! about the same size, and times in interleaved rounds:
//!
//! * devfd `parse` (and `parse` plus a visit of every region and interrupt);
//! * libfdt `fdt_check_full`, `fdt_check_full` plus a walk of every node and property
//!   (`fdt_next_node`, `fdt_first_property_offset`/`fdt_next_property_offset`,
//!   `fdt_getprop_by_offset`), and the walk alone;
//! * devfd's lookups.
//!
//! It prints Markdown tables for BENCHMARKS.md (`scripts/bench-report` runs it). libfdt is
//! linked statically from Debian's `libfdt-dev` (`libfdt.a`: calls inside libfdt are direct,
//! not through the PLT as in `libfdt.so`, so this is the faster libfdt). Without it the
//! bench does not link (`cannot find -lfdt`); without `dtc` it stops with a message.
//!
//! `DEVFD_BENCH_CPU` picks the CPU (default 0); `DEVFD_BENCH_ROUNDS` the rounds (default 300);
//! `DEVFD_BENCH_DUMP=DIR` also writes each input (`NAME.bin`) and its DTB (`NAME.dtb`) to DIR.

mod common;

use std::ffi::{c_char, c_int, c_void};
use std::hint::black_box;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Counts, Input};
use devfd_format::parse;

#[link(name = "fdt", kind = "static")]
unsafe extern "C" {
    fn fdt_check_full(fdt: *const c_void, bufsize: usize) -> c_int;
    fn fdt_next_node(fdt: *const c_void, offset: c_int, depth: *mut c_int) -> c_int;
    fn fdt_first_property_offset(fdt: *const c_void, nodeoffset: c_int) -> c_int;
    fn fdt_next_property_offset(fdt: *const c_void, offset: c_int) -> c_int;
    fn fdt_getprop_by_offset(
        fdt: *const c_void,
        offset: c_int,
        namep: *mut *const c_char,
        lenp: *mut c_int,
    ) -> *const c_void;
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("parse_vs_libfdt: {msg}");
    std::process::exit(1);
}

// ---------------------------------------------------------------------------------------
// Device trees

/// A DTB in an 8-byte-aligned buffer that passed `fdt_check_full`.
struct Dtb {
    words: Vec<u64>,
    len: usize,
    nodes: usize,
    props: usize,
}

impl Dtb {
    fn new(bytes: &[u8]) -> Dtb {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        let mut dtb = Dtb {
            words,
            len: bytes.len(),
            nodes: 0,
            props: 0,
        };
        // SAFETY: the pointer and length describe `dtb.words`, which is live and at least
        // `len` bytes long; libfdt only reads within `bufsize`.
        let rc = unsafe { fdt_check_full(dtb.ptr(), dtb.len) };
        if rc != 0 {
            die(format!(
                "dtc produced a DTB that fdt_check_full rejects ({rc})"
            ));
        }
        let (mut nodes, mut props) = (0, 0);
        walk(dtb.ptr(), |_, _| props += 1, || nodes += 1);
        dtb.nodes = nodes;
        dtb.props = props;
        dtb
    }

    fn ptr(&self) -> *const c_void {
        self.words.as_ptr().cast()
    }
}

/// Visits every node (`node`) and every property of it (`prop(name, value_len)`).
#[inline(always)]
fn walk(fdt: *const c_void, mut prop: impl FnMut(*const c_char, c_int), mut node: impl FnMut()) {
    let mut depth: c_int = 0;
    let mut offset: c_int = 0; // the root node
    // fdt_next_node returns a positive offset with `depth` below 0 after the root ends.
    while offset >= 0 && depth >= 0 {
        node();
        // SAFETY (all calls below): `fdt` points at a live DTB that passed `fdt_check_full`
        // with its true size, as every caller guarantees; offsets come from libfdt itself and
        // the out-pointers are valid locals.
        let mut p = unsafe { fdt_first_property_offset(fdt, offset) };
        while p >= 0 {
            let mut name: *const c_char = std::ptr::null();
            let mut len: c_int = 0;
            // SAFETY: as above.
            let value = unsafe { fdt_getprop_by_offset(fdt, p, &mut name, &mut len) };
            if value.is_null() {
                die("fdt_getprop_by_offset failed on a checked DTB");
            }
            prop(name, len);
            // SAFETY: as above.
            p = unsafe { fdt_next_property_offset(fdt, p) };
        }
        // SAFETY: as above.
        offset = unsafe { fdt_next_node(fdt, offset, &mut depth) };
    }
}

/// A walk that reads every property's length and the first byte of its name.
#[inline(always)]
fn walk_sum(fdt: *const c_void) -> u64 {
    let mut acc = 0u64;
    let mut nodes = 0u64;
    walk(
        fdt,
        // SAFETY: libfdt returned `name` for a property of a checked DTB: a NUL-terminated
        // string inside the DTB's strings block.
        |name, len| acc = acc.wrapping_add(len as u64 + u64::from(unsafe { *name } as u8)),
        || nodes += 1,
    );
    acc.wrapping_add(nodes)
}

/// DTS for a SoC with `blocks` device nodes (compatible, reg, interrupts, clocks, status:
/// the shape of QEMU virt's platform devices); `pad` lengthens the root `model` string.
fn soc_dts(blocks: usize, pad: usize) -> String {
    let mut s = String::from("/dts-v1/;\n/ {\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n");
    s += "\tcompatible = \"linux,dummy-virt\";\n";
    s += &format!("\tmodel = \"devfd-bench{}\";\n", "x".repeat(pad));
    for i in 0..blocks {
        let addr = 0x1000_0000 + i * 0x1000;
        s += &format!(
            "\tblock@{addr:x} {{\n\t\tcompatible = \"vendor,soc-block\";\n\t\treg = <0x0 {addr:#x} 0x0 0x1000>;\n\t\tinterrupts = <0x0 {i:#x} 0x4>;\n\t\tclocks = <0x8000>;\n\t\tstatus = \"okay\";\n\t}};\n"
        );
    }
    s += "};\n";
    s
}

fn dtc(src: &str) -> Vec<u8> {
    let mut child = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            die(format!(
                "cannot run dtc ({e}): apt-get install -y device-tree-compiler"
            ))
        });
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(src.as_bytes())
        .unwrap_or_else(|e| die(format!("writing to dtc: {e}")));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| die(format!("waiting for dtc: {e}")));
    if !out.status.success() {
        die(format!(
            "dtc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    out.stdout
}

/// The SoC DTB closest in size to `target` bytes: as many whole nodes as fit, then the
/// `model` string padded (padding inside a property value is cheap for libfdt, so any error
/// here is in libfdt's favour).
fn dtb_near(target: usize) -> Dtb {
    let size = |blocks: usize, pad: usize| dtc(&soc_dts(blocks, pad)).len();
    let one = size(1, 0);
    let per_node = size(2, 0) - one;
    let mut blocks = 1 + target.saturating_sub(one) / per_node;
    while size(blocks + 1, 0) <= target {
        blocks += 1;
    }
    while blocks > 1 && size(blocks, 0) > target {
        blocks -= 1;
    }
    let mut pad = target.saturating_sub(size(blocks, 0));
    while pad > 0 && size(blocks, pad) > target {
        pad -= 1;
    }
    Dtb::new(&dtc(&soc_dts(blocks, pad)))
}

// ---------------------------------------------------------------------------------------
// Timing

type Batch = Box<dyn FnMut(u64) -> u64>;

/// `f` run `n` times in a loop it is inlined into.
fn batch<F: FnMut() -> u64 + 'static>(mut f: F) -> Batch {
    Box::new(move |n| {
        let mut acc = 0u64;
        for _ in 0..n {
            acc = acc.wrapping_add(f());
        }
        acc
    })
}

struct Case {
    run: Batch,
    iters: u64,
    samples: Vec<f64>,
}

/// Nanoseconds per call: median and 10th/90th percentiles over the rounds.
#[derive(Clone, Copy)]
struct Time {
    p50: f64,
    p10: f64,
    p90: f64,
}

const BATCH_NS: f64 = 50_000.0;

/// Times every case in `rounds` interleaved rounds (the order rotates each round), each
/// sample one batch of about 50 µs.
fn measure(runs: Vec<Batch>, rounds: usize) -> Vec<Time> {
    let mut cases: Vec<Case> = runs
        .into_iter()
        .map(|mut run| {
            let mut iters = 1u64;
            loop {
                let t = Instant::now();
                black_box(run(iters));
                let ns = t.elapsed().as_nanos() as f64;
                if ns >= BATCH_NS / 4.0 {
                    let iters = ((iters as f64) * BATCH_NS / ns).ceil() as u64;
                    break Case {
                        run,
                        iters: iters.max(1),
                        samples: Vec::with_capacity(rounds),
                    };
                }
                iters *= 2;
            }
        })
        .collect();
    // Warm-up round, not recorded.
    for c in &mut cases {
        black_box((c.run)(c.iters));
    }
    let n = cases.len();
    for r in 0..rounds {
        for j in 0..n {
            let c = &mut cases[(j + r) % n];
            let t = Instant::now();
            black_box((c.run)(c.iters));
            let ns = t.elapsed().as_nanos() as f64;
            c.samples.push(ns / c.iters as f64);
        }
    }
    cases
        .into_iter()
        .map(|mut c| {
            c.samples.sort_by(f64::total_cmp);
            let at = |q: f64| c.samples[((c.samples.len() - 1) as f64 * q).round() as usize];
            Time {
                p50: at(0.5),
                p10: at(0.1),
                p90: at(0.9),
            }
        })
        .collect()
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

// ---------------------------------------------------------------------------------------
// Report

fn ns(t: f64) -> String {
    if t >= 10_000.0 {
        format!("{:.2} µs", t / 1000.0)
    } else if t >= 100.0 {
        format!("{t:.0} ns")
    } else {
        format!("{t:.1} ns")
    }
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    read_trim("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

/// devfd `parse` plus a read of every region's and interrupt's fields and strings.
#[inline(always)]
fn parse_and_visit(bytes: &[u8]) -> u64 {
    let Ok(d) = parse(bytes) else { return 0 };
    let mut acc = 0u64;
    for r in d.regions() {
        acc = acc.wrapping_add(r.offset ^ r.size ^ u64::from(r.flags));
        acc = acc.wrapping_add(r.label().map_or(0, str::len) as u64);
        acc = acc.wrapping_add(r.dt().map_or(0, |dt| dt.path.len()) as u64);
    }
    for i in d.interrupts() {
        acc = acc.wrapping_add(i.control_offset ^ u64::from(i.count) ^ u64::from(i.flags));
        acc = acc.wrapping_add(i.label().map_or(0, str::len) as u64);
        acc = acc.wrapping_add(i.dt().map_or(0, |dt| dt.path.len()) as u64);
    }
    acc
}

fn main() {
    // Criterion-style flags from `cargo bench` (`--bench`) are accepted and ignored.
    let cpu: usize = std::env::var("DEVFD_BENCH_CPU").ok().map_or(0, |s| {
        s.parse()
            .unwrap_or_else(|_| die("DEVFD_BENCH_CPU: a CPU number"))
    });
    let rounds: usize = std::env::var("DEVFD_BENCH_ROUNDS").ok().map_or(300, |s| {
        s.parse()
            .unwrap_or_else(|_| die("DEVFD_BENCH_ROUNDS: a number"))
    });
    let load = read_trim("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    pin(cpu);

    let inputs: Vec<Input> = vec![
        common::edu(),
        common::pl031(),
        common::soc(64),
        common::soc(256),
    ];
    let counts: Vec<Counts> = inputs.iter().map(Input::counts).collect();
    let dtbs: Vec<Dtb> = inputs.iter().map(|i| dtb_near(i.bytes.len())).collect();
    if let Ok(dir) = std::env::var("DEVFD_BENCH_DUMP") {
        for (input, dtb) in inputs.iter().zip(&dtbs) {
            let dtb_bytes: Vec<u8> = dtb.words.iter().flat_map(|w| w.to_ne_bytes()).collect();
            let written = std::fs::write(format!("{dir}/{}.bin", input.name), &input.bytes)
                .and_then(|()| {
                    std::fs::write(format!("{dir}/{}.dtb", input.name), &dtb_bytes[..dtb.len])
                });
            if let Err(e) = written {
                die(format!("DEVFD_BENCH_DUMP={dir}: {e}"));
            }
        }
        eprintln!("parse_vs_libfdt: inputs and DTBs written to {dir}");
    }

    // Per input: parse, parse+visit, check_full, check_full+walk, walk.
    const PER_INPUT: usize = 5;
    let mut runs: Vec<Batch> = Vec::new();
    for (input, dtb) in inputs.iter().zip(&dtbs) {
        let bytes = input.bytes.clone();
        runs.push(batch(move || {
            parse(black_box(&bytes)).map_or(0, |d| d.len() as u64)
        }));
        let bytes = input.bytes.clone();
        runs.push(batch(move || parse_and_visit(black_box(&bytes))));
        let words = dtb.words.clone();
        let len = dtb.len;
        runs.push(batch(move || {
            let p: *const c_void = black_box(words.as_ptr()).cast();
            // SAFETY: `p` and `len` describe the live buffer `words`.
            u64::from(unsafe { fdt_check_full(p, len) } == 0)
        }));
        let words = dtb.words.clone();
        runs.push(batch(move || {
            let p: *const c_void = black_box(words.as_ptr()).cast();
            // SAFETY: `p` and `len` describe the live buffer `words`.
            if unsafe { fdt_check_full(p, len) } == 0 {
                walk_sum(p)
            } else {
                0
            }
        }));
        let words = dtb.words.clone();
        runs.push(batch(move || {
            // The DTB passed fdt_check_full in `Dtb::new`.
            walk_sum(black_box(words.as_ptr()).cast())
        }));
    }
    // Lookups: edu, then soc64.
    let lookups: &[&str] = &[
        "`pci_bar(0)` (edu)",
        "`pci_config()` (edu)",
        "`region(7)` (edu, scan of record headers)",
        "`interrupt(1)` (edu)",
        "`region(63)` (soc64, worst case, linear)",
        "`dt_region(\"/soc/block@3f\", 0)` (soc64, string compares)",
    ];
    {
        let edu: &'static [u8] = inputs[0].bytes.clone().leak();
        let soc: &'static [u8] = inputs[2].bytes.clone().leak();
        let e = parse(edu).expect("valid");
        let s = parse(soc).expect("valid");
        runs.push(batch(move || {
            black_box(&e).pci_bar(black_box(0)).map_or(0, |r| r.offset)
        }));
        runs.push(batch(move || {
            black_box(&e).pci_config().map_or(0, |r| r.offset)
        }));
        runs.push(batch(move || {
            black_box(&e).region(black_box(7)).map_or(0, |r| r.offset)
        }));
        runs.push(batch(move || {
            black_box(&e)
                .interrupt(black_box(1))
                .map_or(0, |i| i.control_offset)
        }));
        runs.push(batch(move || {
            black_box(&s).region(black_box(63)).map_or(0, |r| r.offset)
        }));
        runs.push(batch(move || {
            black_box(&s)
                .dt_region(black_box("/soc/block@3f"), 0)
                .map_or(0, |r| r.offset)
        }));
    }

    let t0 = Instant::now();
    let times = measure(runs, rounds);
    let elapsed = t0.elapsed().as_secs_f64();

    // ---- report
    println!("### Parse speed against libfdt (one run, pinned to CPU {cpu})\n");
    println!(
        "`cargo bench -p devfd-format --bench parse_vs_libfdt` on {} ({} CPUs), Linux {}, \
         load average at start {load}. libfdt {} linked statically (Debian libfdt-dev \
         `libfdt.a`), DTBs compiled by `{}` at bench time. {rounds} interleaved rounds of \
         ~50 µs batches per case (order rotated each round), {elapsed:.1} s; figures are \
         medians of the per-call time of each batch.\n",
        cpu_model(),
        cpus,
        read_trim("/proc/sys/kernel/osrelease"),
        first_line("dpkg-query", &["-W", "-f", "${Version}", "libfdt-dev"]),
        first_line("dtc", &["--version"]).trim_start_matches("Version: "),
    );

    println!("| input | devfd description | DTB of about the same size |");
    println!("|---|---|---|");
    for ((input, c), dtb) in inputs.iter().zip(&counts).zip(&dtbs) {
        println!(
            "| {} | {} B: {} records + {} sub-records ({}, {}) | {} B: {} nodes, {} properties |",
            input.name,
            input.bytes.len(),
            c.records,
            c.sub_records,
            plural(c.regions, "region"),
            plural(c.interrupts, "interrupt"),
            dtb.len,
            dtb.nodes,
            dtb.props
        );
    }
    println!();
    println!(
        "| input | devfd `parse` | libfdt `fdt_check_full` | devfd ÷ libfdt per byte | goal ≤ 0.5× | libfdt check + walk | devfd ÷ libfdt per byte | goal < 1× |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---|");
    let mut met_check = 0;
    let mut met_walk = 0;
    for (k, (input, dtb)) in inputs.iter().zip(&dtbs).enumerate() {
        let t = &times[k * PER_INPUT..(k + 1) * PER_INPUT];
        let b = input.bytes.len() as f64;
        let d = dtb.len as f64;
        let per = |t: Time, bytes: f64| t.p50 / bytes;
        let r_check = per(t[0], b) / per(t[2], d);
        let r_walk = per(t[0], b) / per(t[3], d);
        met_check += usize::from(r_check <= 0.5);
        met_walk += usize::from(r_walk < 1.0);
        println!(
            "| {} | {} ({:.2} ns/B) | {} ({:.2} ns/B) | {:.2}× | {} | {} ({:.2} ns/B) | {:.2}× | {} |",
            input.name,
            ns(t[0].p50),
            per(t[0], b),
            ns(t[2].p50),
            per(t[2], d),
            r_check,
            verdict(r_check <= 0.5),
            ns(t[3].p50),
            per(t[3], d),
            r_walk,
            verdict(r_walk < 1.0),
        );
    }
    println!(
        "\nGoals: ≤ 0.5× libfdt `fdt_check_full` per byte met for {met_check} of {n} inputs; \
         ahead of libfdt check + walk for {met_walk} of {n}.\n",
        n = inputs.len()
    );

    println!(
        "| input | devfd `parse` + read every region and interrupt | libfdt walk alone (no check) | spread p10–p90: devfd `parse`, `fdt_check_full`, check + walk |"
    );
    println!("|---|---:|---:|---|");
    for (k, (input, dtb)) in inputs.iter().zip(&dtbs).enumerate() {
        let t = &times[k * PER_INPUT..(k + 1) * PER_INPUT];
        let spread = |t: Time| format!("{}–{}", ns(t.p10), ns(t.p90));
        println!(
            "| {} | {} ({:.2} ns/B) | {} ({:.2} ns/B) | {}; {}; {} |",
            input.name,
            ns(t[1].p50),
            t[1].p50 / input.bytes.len() as f64,
            ns(t[4].p50),
            t[4].p50 / dtb.len as f64,
            spread(t[0]),
            spread(t[2]),
            spread(t[3]),
        );
    }
    println!();

    println!("| lookup | time | goal | |");
    println!("|---|---:|---|---|");
    let base = inputs.len() * PER_INPUT;
    for (j, name) in lookups.iter().enumerate() {
        let t = times[base + j].p50;
        let (goal, result) = if j < 4 {
            ("≤ 20 ns", verdict(t <= 20.0))
        } else {
            ("–", "info")
        };
        println!("| {name} | {} | {goal} | {result} |", ns(t));
    }
}
