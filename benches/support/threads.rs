//! Shared by the benches that run the endpoint and its client in one process: each side on a
//! Tokio runtime of its own, with named threads, so that `/proc/self/task/*/stat` tells their
//! CPU time apart as if they were two processes.

/// A multi-thread runtime whose threads are called `name`.
pub fn runtime(name: &str, threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
}

/// CPU seconds used so far by this process's threads: (client, endpoint). Threads named
/// `endpoint*` or `store-writer` are the endpoint's, `proxy*` a relay's (counted in neither),
/// all others the client's (the agent, or the bench's own clients).
///
/// Called at the start and end of every measured step, so it also marks the steps for
/// instruction counts that do not depend on the machine's load: `valgrind --tool=callgrind
/// --dump-after='*cpu_split*'` writes one profile per step (server_bench: part 2 is the POSTs,
/// part 4 the GETs of one object).
#[inline(never)]
pub fn cpu_split() -> (f64, f64) {
    // SAFETY: sysconf with a valid name only reads a constant.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let (mut agent, mut endpoint) = (0u64, 0u64);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (f64::NAN, f64::NAN);
    };
    for t in tasks.flatten() {
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(t.path().join("stat")),
            std::fs::read_to_string(t.path().join("comm")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the parenthesised name: state is the 1st, utime the 12th, stime the 13th.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        let ticks: u64 = f.iter().sum();
        if comm.starts_with("endpoint") || comm.starts_with("store-writer") {
            endpoint += ticks;
        } else if !comm.starts_with("proxy") {
            agent += ticks;
        }
    }
    (agent as f64 / tick, endpoint as f64 / tick)
}

/// Context switches so far of the endpoint's threads (named as for [`cpu_split`]): a thread
/// hand-over per request shows here whatever the load, when the wall clock does not.
#[allow(dead_code)] // server_bench's; reconcile_bench includes this file too
pub fn endpoint_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut n = 0;
    for t in tasks.flatten() {
        let (Ok(status), Ok(comm)) = (
            std::fs::read_to_string(t.path().join("status")),
            std::fs::read_to_string(t.path().join("comm")),
        ) else {
            continue; // the thread ended meanwhile
        };
        if comm.starts_with("endpoint") || comm.starts_with("store-writer") {
            n += status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    n
}

pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
