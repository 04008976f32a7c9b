//! CPU placement of every thread of this process (client, FUSE servers, device workers).
//!
//! TESTBEDS.md §2: on this VM a wake-up on the other CPU costs 30–50 µs, so latency runs pin
//! client and server to one CPU. Threads made later inherit the affinity of their creator.

use std::io;

/// Where the threads run during a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Every thread on CPU 0.
    Pinned,
    /// Server threads on CPU 0, the measuring (calling) thread on CPU 1.
    CrossCpu,
    /// Every thread may run on every CPU.
    Unpinned,
}

impl Placement {
    /// A short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Pinned => "pinned (all threads on CPU 0)",
            Placement::CrossCpu => "cross-CPU (servers CPU 0, client CPU 1)",
            Placement::Unpinned => "unpinned",
        }
    }
}

/// Number of CPUs this process may use, as found at the first call (make it before pinning).
pub fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn set(tid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: `c` is below CPU_SETSIZE (we only name CPUs 0 and 1).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn this_thread() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Sets the affinity of every thread of the process and of `others`, then that of the
/// calling thread.
fn all_threads(server: &[usize], caller: &[usize], others: &[u32]) -> io::Result<()> {
    let mut dirs = vec!["/proc/self/task".to_string()];
    dirs.extend(others.iter().map(|pid| format!("/proc/{pid}/task")));
    for dir in dirs {
        threads_of(&dir, server)?;
    }
    set(this_thread(), caller)
}

fn threads_of(dir: &str, cpus: &[usize]) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let Some(tid) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // A thread that exited meanwhile is no longer ours to place.
        match set(tid, cpus) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            r => r?,
        }
    }
    Ok(())
}

/// Places every thread for a measurement (the calling thread is the client).
pub fn place(p: Placement) -> io::Result<()> {
    place_with(p, &[])
}

/// As [`place`], with every thread of the processes `servers` placed as server threads.
pub fn place_with(p: Placement, servers: &[u32]) -> io::Result<()> {
    let all: Vec<usize> = (0..cpus()).collect();
    match p {
        Placement::Pinned => all_threads(&[0], &[0], servers),
        Placement::CrossCpu => all_threads(&[0], &[1], servers),
        Placement::Unpinned => all_threads(&all, &all, servers),
    }
}
