//! Readings from `/proc` that the tests and benchmarks report: a process's resident set, its
//! open descriptors, and the CPUs this process may run on.

/// Process `pid`'s resident set, in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    status_field(&format!("/proc/{pid}/status"), "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// How many file descriptors process `pid` has open (0 if it is gone).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The CPUs this process may run on (`0-1`, or `0` under `taskset -c 0`), for the heading of
/// a benchmark's table.
pub fn cpus_allowed() -> String {
    status_field("/proc/self/status", "Cpus_allowed_list:").unwrap_or_else(|| "?".into())
}

fn status_field(path: &str, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}
