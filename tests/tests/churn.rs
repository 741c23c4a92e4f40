//! Churn that must leak nothing: a process joins host-cake, publishes, subscribes, opens a
//! session and goes, 1,000 times; host-cake keeps the file descriptors it started with, and
//! this process (alone in its test binary, so nothing else moves its counts) its descriptors
//! and tasks.

use layer_cake::Scope;
use layer_cake_tests::churn::cycle;
use layer_cake_tests::procfs::{fd_count, rss_kib};
use layer_cake_tests::{publisher, Daemon, WAIT};
use std::time::Duration;

/// Polls `value` until it is at most `bound`, within the harness deadline; returns the last
/// value seen.
async fn settles_to(what: &str, bound: usize, mut value: impl FnMut() -> usize) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = value();
        if v <= bound {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {v}, still above {bound} after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cycles_of_churn_leak_no_descriptor_or_task() {
    const CYCLES: u64 = 1_000;
    let host = Daemon::host_cake().await;
    let host_pid = host.proc.pid();
    let me = std::process::id();
    let mut p = publisher("publisher", &host.env(), "churn:anchor", "HOST");
    p.expect(&["published churn:anchor"]).await;
    let metrics = tokio::runtime::Handle::current().metrics();

    // Warm up (buffers made on first use, the runtime's own threads), then take the baseline.
    for i in 0..20 {
        cycle(host.addr, Scope::Host, "churn:anchor", i).await;
    }
    let host_fds = settles_to("host-cake's descriptors after warm-up", 64, || fd_count(host_pid)).await;
    let my_fds = fd_count(me);
    let tasks = metrics.num_alive_tasks();
    let host_rss = rss_kib(host_pid);

    for i in 0..CYCLES {
        cycle(host.addr, Scope::Host, "churn:anchor", i).await;
    }

    let host_after = settles_to("host-cake's descriptors", host_fds, || fd_count(host_pid)).await;
    let my_after = settles_to("this process's descriptors", my_fds, || fd_count(me)).await;
    let tasks_after = settles_to("this process's tasks", tasks, || metrics.num_alive_tasks()).await;
    eprintln!(
        "{CYCLES} cycles: host-cake fds {host_fds} -> {host_after}, RSS {host_rss} -> {} KiB; \
         test process fds {my_fds} -> {my_after}, tasks {tasks} -> {tasks_after}",
        rss_kib(host_pid)
    );
    // The anchor publisher served every cycle's session and is still there.
    let delivered = p
        .all_lines()
        .iter()
        .filter(|l| l.starts_with("delivered"))
        .count();
    assert!(delivered as u64 >= CYCLES, "{delivered}");
}
