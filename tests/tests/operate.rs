//! Operating a composite when things go wrong: a full disk, `stop` while `start` is still
//! starting, group-cake killed, and `start`s that race. Each was a measured failure.

use layer_cake_tests::home::{alive, wait_for, TestHome};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::Stdio;
use std::time::Duration;

/// A home with one role that prints a line every few milliseconds, for ever.
fn chatty_home(t: &TestHome) {
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let chatty = t.script(
        "chatty.sh",
        "i=0\nwhile true; do echo \"line $i\"; i=$((i+1)); sleep 0.005; done",
    );
    t.ok(&["add", &chatty, "chatty"]);
}

/// `stop` 2 to 20 ms after `start`: it stops what is starting, at once, naming its pid, and
/// nothing is left running (it used to signal the previous run's pid, wait its whole timeout
/// and fail, leaving the new composite running: 14 of 20 trials).
#[test]
fn stop_while_start_is_starting_stops_what_is_starting() {
    let t = TestHome::new();
    chatty_home(&t);
    // A run before, so that an old status (with an old pid) is there to be misread.
    t.ok(&["start"]);
    t.ok(&["stop"]);
    for trial in 0..20u64 {
        let start = t
            .command(&["start"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start runs");
        // The user's own timing: the stop comes this long after the start.
        std::thread::sleep(Duration::from_millis(2 + trial % 19));
        let mut stop = t.command(&["stop", "--timeout", "10"]).output().unwrap();
        let mut said =
            String::from_utf8_lossy(&stop.stdout).to_string() + &String::from_utf8_lossy(&stop.stderr);
        let start = start.wait_with_output().unwrap();
        let start_said =
            String::from_utf8_lossy(&start.stdout).to_string() + &String::from_utf8_lossy(&start.stderr);
        // A stop that came before `start` had even begun (on a slow machine, 2 ms may be too
        // soon for the process to have taken the lock) rightly found nothing running; the
        // composite then started, and the next stop stops it.
        if stop.status.code() == Some(3) && start_said.starts_with("started") {
            stop = t.command(&["stop", "--timeout", "10"]).output().unwrap();
            said = String::from_utf8_lossy(&stop.stdout).to_string() + &String::from_utf8_lossy(&stop.stderr);
        }
        assert!(
            stop.status.success(),
            "trial {trial}: stop failed: {said}\nstart said: {start_said}\ngroup-cake.log:\n{}",
            std::fs::read_to_string(t.home().join("run/group-cake.log")).unwrap_or_default()
        );
        let pid: u32 = said
            .trim()
            .trim_start_matches("stopped (group-cake pid ")
            .trim_end_matches(')')
            .parse()
            .unwrap_or_else(|_| panic!("trial {trial}: {said}"));
        assert!(!alive(pid), "trial {trial}: group-cake {pid} still runs");
        assert!(
            start_said.contains(&format!("pid {pid}")),
            "trial {trial}: stop named {pid}, start said: {start_said}"
        );
        assert!(
            start_said.starts_with("started") || start_said.contains("stopped while starting"),
            "trial {trial}: start said: {start_said}"
        );
        let again = t.run(&["stop"]);
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("is not running"),
            "trial {trial}: after stop: {again:?}"
        );
    }
}

/// Three `start`s at once: one starts, the others say the home is running (naming the
/// winner's pid), not the winner's log.
#[test]
fn starts_that_race_lose_with_is_running() {
    let t = TestHome::new();
    chatty_home(&t);
    let starts: Vec<_> = (0..3)
        .map(|_| {
            t.command(&["start"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = starts
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "{outs:?}");
    let pid = t.status()["pid"].as_u64().unwrap();
    for lost in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&lost.stderr);
        // (A loser that came while the winner was starting group-cake says so.)
        assert!(
            err.contains(&format!("is running (group-cake pid {pid})"))
                || err.contains("is running (starting now)"),
            "{err}"
        );
        assert!(!err.contains("its log"), "{err}");
    }
    t.ok(&["stop"]);
}

/// group-cake SIGKILLed: the sentinel ends the role, `history` shows the run as ended
/// unrecorded (not "running" for ever), and the next start records it so.
#[test]
fn a_run_whose_group_cake_was_killed_is_closed() {
    let t = TestHome::new();
    chatty_home(&t);
    t.ok(&["start"]);
    let status = t.status();
    let group_cake = status["pid"].as_u64().unwrap() as u32;
    let (_, role) = t.role_pids().into_iter().next().expect("the role runs");
    kill(Pid::from_raw(group_cake as i32), Signal::SIGKILL).unwrap();
    wait_for("the sentinel to end the role", || {
        !alive(role) && !alive(group_cake)
    });
    let shown = t.ok(&["history", "chatty"]);
    assert!(shown.contains("end not recorded"), "{shown}");
    assert!(!shown.contains("running (pid"), "{shown}");
    t.ok(&["start"]);
    let runs: serde_json::Value = serde_json::from_str(&t.ok(&["history", "chatty", "--json"])).unwrap();
    let first = &runs[0];
    assert_eq!(first["pid"].as_u64(), Some(role as u64));
    assert!(first["outcome"]["unrecorded"].is_object(), "{runs:#}");
    t.ok(&["stop"]);
}

/// A small file system of the test's own, filled up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount a tmpfs (the test runs as root)");
        SmallDisk { dir }
    }

    fn fill(&self) {
        let _ = std::process::Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", self.dir.path().join("fill").display()))
            .stderr(Stdio::null())
            .status();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.path().join("fill")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The home's disk fills while the composite runs: the role and group-cake go on running,
/// lost lines are counted and reported once space returns, and commands say plainly that the
/// disk is full; a failed `add` leaves nothing behind, and `start` on a full disk says so at
/// once (it used to panic: group-cake on its next log line, taking every role down, and
/// `start` with exit status 101 and an empty log).
#[test]
#[cfg_attr(
    not(small_disk),
    ignore = "needs to mount a small file system to fill: root, and mounts allowed (found at build time)"
)]
fn a_full_disk_stops_no_composite_and_every_command_says_so() {
    let disk = SmallDisk::mount();
    let t = TestHome::in_folder(disk.dir.path());
    // The role says how far it has got in a file on another disk: the test waits on that.
    let progress = tempfile::tempdir().unwrap();
    let count = progress.path().join("count");
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let chatty = t.script(
        "chatty.sh",
        &format!(
            "i=0\nwhile true; do echo \"line $i of a role that goes on printing\"; echo $i > {}.new; mv {0}.new {0}; i=$((i+1)); sleep 0.002; done",
            count.display()
        ),
    );
    t.ok(&["add", &chatty, "chatty"]);
    let printed = || -> u64 {
        std::fs::read_to_string(&count)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    t.ok(&["start"]);
    let group_cake = t.status()["pid"].as_u64().unwrap() as u32;
    let (_, role) = t.role_pids().into_iter().next().unwrap();
    disk.fill();
    // Enough lines while the disk is full that some cannot be written (a page's worth).
    let full_at = printed();
    wait_for("the role to print 400 lines on a full disk", || {
        printed() > full_at + 400
    });
    let err = t.fails(&["add", "/bin/true", "late"]);
    assert!(err.contains("the disk is full"), "{err}");
    assert!(!t.home().join("roles/late").exists());
    assert!(!t.ok(&["list"]).contains("late"));
    assert!(!err.contains(".adding"), "{err}");
    disk.free();
    // The role printed on while the disk was full: the first line written after says how many
    // were lost, and it is the same process, under the same group-cake.
    wait_for("the lost lines to be reported", || {
        t.run(&["log", "chatty", "--count", "100000"])
            .stdout
            .windows(b"lines of output were lost".len())
            .any(|w| w == b"lines of output were lost")
    });
    assert!(alive(group_cake) && alive(role));
    assert_eq!(t.role_pids(), vec![("chatty".to_string(), role)]);
    t.ok(&["add", "/bin/true", "late"]);
    t.ok(&["stop"]);

    disk.fill();
    let err = t.fails(&["start"]);
    assert!(err.contains("the disk is full"), "{err}");
    disk.free();
}

/// A daemon given something it cannot do says `NAME: error: ...` and exits 1: no backtrace,
/// even with `RUST_BACKTRACE` set.
#[test]
fn a_daemon_refuses_a_mistake_with_error_and_no_backtrace() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for daemon in ["host-cake", "group-cake"] {
        let out = std::process::Command::new(layer_cake_tests::bin(daemon))
            .args([
                "--listen",
                &addr,
                "--connect-to-directory",
                layer_cake_tests::NO_DIRECTORY,
            ])
            .env("RUST_BACKTRACE", "1")
            .env("LC_DEBUG_LEVEL", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{daemon}: {err}");
        assert!(
            err.contains(&format!("{daemon}: error: cannot listen on {addr}")),
            "{daemon}: {err}"
        );
        assert!(
            !err.contains("backtrace") && !err.contains("Error:"),
            "{daemon}: {err}"
        );
    }
}

/// `log --follow` during a burst of 30,000 lines through small log files: with enough files
/// kept, every line arrives, in order; with too few, the lines that went before they could be
/// read are reported as a gap, never lost unseen (it lost 23,311 of 30,000, silently).
#[test]
fn log_follow_loses_no_line_unseen_in_a_fast_burst() {
    use std::io::BufRead;
    for (files, all_kept) in [("50", true), ("2", false)] {
        let t = TestHome::new();
        t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
        // The role waits for the follower to be there (a file it makes), then bursts.
        let go = t.dir().join("go");
        let burst = t.script(
            "burst.sh",
            &format!(
                "while [ ! -e {} ]; do sleep 0.01; done; seq 1 30000; sleep 60",
                go.display()
            ),
        );
        t.ok(&["add", &burst, "burst", "--log-size", "64K", "--log-files", files]);
        t.ok(&["start"]);
        t.wait_for("the role's log to begin", || {
            t.home().join("roles/burst/log/current.log").exists()
        });
        let mut follow = t
            .command(&["log", "burst", "--follow", "--count", "1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(follow.stdout.take().unwrap()).lines();
        // The last line before it (the role's start): once shown, the follower follows from
        // there; then the burst.
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("--- started"), "{first}");
        std::fs::write(&go, "").unwrap();
        let mut numbers = Vec::new();
        let mut gaps = 0;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.by_ref() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        loop {
            let line = rx
                .recv_timeout(layer_cake_tests::WAIT)
                .expect("the follower goes on printing");
            if line.starts_with("--- ") && line.contains("moved away before they could be read") {
                gaps += 1;
                continue;
            }
            if let Some(n) = line.split(' ').nth(2).and_then(|t| t.parse::<u32>().ok()) {
                numbers.push(n);
                if n == 30000 {
                    break;
                }
            }
        }
        let _ = follow.kill();
        let _ = follow.wait();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order, no line twice");
        if all_kept {
            assert_eq!(numbers.len(), 30000, "every line, with {files} files kept");
            assert_eq!(gaps, 0);
        } else {
            assert!(
                numbers.len() == 30000 || gaps > 0,
                "{} of 30000 lines and no gap reported",
                numbers.len()
            );
        }
        t.ok(&["stop"]);
    }
}

fn pid_of(t: &TestHome, role: &str) -> Option<u32> {
    t.role_pids().into_iter().find(|(r, _)| r == role).map(|(_, p)| p)
}

fn state_of(t: &TestHome, role: &str) -> Option<String> {
    Some(t.role_status(role)?["state"].as_str()?.to_string())
}

/// One role at a time in a running composite: restart it, stop it, start it again; reload
/// the home (an added role started, a changed one restarted, a deleted one gone, the rest
/// untouched), by `layer-cake reload` and by SIGHUP; group policies and the main role changed
/// with no stop.
#[test]
fn roles_are_restarted_stopped_started_and_reloaded_one_at_a_time() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    for role in ["a", "b", "c"] {
        t.ok(&["add", "/bin/sleep", role, "--", "600"]);
    }
    t.ok(&["start"]);
    let (a, b, c) = (
        pid_of(&t, "a").unwrap(),
        pid_of(&t, "b").unwrap(),
        pid_of(&t, "c").unwrap(),
    );

    let said = t.ok(&["restart", "a"]);
    assert!(said.contains("restarting a"), "{said}");
    let a2 = pid_of(&t, "a").unwrap();
    assert_ne!(a2, a);
    assert!(!alive(a), "the old process of a is gone");
    assert_eq!(
        (pid_of(&t, "b"), pid_of(&t, "c")),
        (Some(b), Some(c)),
        "the others carry on"
    );

    t.ok(&["stop", "b"]);
    assert_eq!(state_of(&t, "b").as_deref(), Some("stopped"));
    assert!(!alive(b));
    assert_eq!(pid_of(&t, "a"), Some(a2));
    t.ok(&["start", "b"]);
    let b2 = pid_of(&t, "b").unwrap();
    assert_eq!(state_of(&t, "b").as_deref(), Some("running"));

    // Changes to the home, applied by reload: c's arguments, a new role d, b deleted (it
    // must be stopped first), the group's policy.
    t.ok(&["update", "c", "--", "601"]);
    t.ok(&["add", "/bin/sleep", "d", "--", "600"]);
    t.ok(&["update", "group", "--retry", "on-failure"]);
    t.ok(&["stop", "b"]);
    t.ok(&["delete", "b"]);
    let said = t.ok(&["reload"]);
    assert!(
        said.contains("started d") && said.contains("stopped b") && said.contains("restarting c"),
        "{said}"
    );
    t.wait_for("c restarted and d started", || {
        pid_of(&t, "c").is_some_and(|p| p != c) && pid_of(&t, "d").is_some()
    });
    assert!(!alive(b2));
    assert_eq!(pid_of(&t, "a"), Some(a2), "a, unchanged, is left alone");
    assert_eq!(state_of(&t, "b"), None, "b is gone from the composite");
    assert_eq!(t.ok(&["reload"]).trim(), "nothing changed");

    // SIGHUP does the same.
    t.ok(&["add", "/bin/sleep", "e", "--", "600"]);
    let group_cake = t.status()["pid"].as_u64().unwrap() as i32;
    kill(Pid::from_raw(group_cake), Signal::SIGHUP).unwrap();
    t.wait_for("e started by the hang-up", || pid_of(&t, "e").is_some());

    let err = t.run(&["restart", "nosuch"]);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("no role"),
        "{err:?}"
    );
    // The group's main role is taken at reload (the composite then ends with it); its
    // directory is not, and reload says so.
    t.ok(&[
        "update",
        "group",
        "--main-role",
        "e",
        "--directory-at-host",
        "127.0.0.1:2",
    ]);
    let said = t.ok(&["reload"]);
    assert!(
        said.contains("main role now e")
            && said.contains("directory and secret take effect at the next start"),
        "{said}"
    );
    kill(Pid::from_raw(pid_of(&t, "e").unwrap() as i32), Signal::SIGTERM).unwrap();
    t.wait_for("the composite to end with its main role", || {
        t.status()["running"] == false
    });
    let out = t.run(&["restart", "a"]);
    assert_eq!(out.status.code(), Some(3), "nothing runs: {out:?}");
}

/// A restart asked for (`restart`, or a reload of changed settings) keeps the count of the
/// restarts its policy made, as `status` shows it (it used to begin again from 0).
#[test]
fn a_requested_restart_keeps_the_count_of_restarts() {
    let t = TestHome::new();
    t.ok(&[
        "create",
        "--directory-at-host",
        "127.0.0.1:1",
        "--retry",
        r#"{"min": 0, "max": 0}"#,
    ]);
    t.ok(&["add", "/bin/sleep", "r", "--", "600"]);
    t.ok(&["start"]);
    let first = pid_of(&t, "r").unwrap();
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    t.wait_for("the policy to restart r", || {
        pid_of(&t, "r").is_some_and(|p| p != first)
    });
    let restarts = || t.role_status("r").unwrap()["restarts"].clone();
    assert_eq!(restarts(), 1);
    t.ok(&["restart", "r"]);
    assert_eq!(
        restarts(),
        1,
        "the restart asked for is not counted, nor the count lost"
    );
    t.ok(&["update", "r", "--", "601"]);
    t.ok(&["reload"]);
    t.wait_for("r restarted with its new arguments", || {
        t.role_status("r").is_some_and(|r| r["state"] == "running")
            && std::fs::read_to_string(format!("/proc/{}/cmdline", pid_of(&t, "r").unwrap_or(0)))
                .is_ok_and(|c| c.contains("601"))
    });
    assert_eq!(restarts(), 1);
    t.ok(&["stop"]);
}

/// group-cake's own log is kept within the group's log limits too: past its size it is
/// moved aside and a new one begun, which the lines after go to.
#[test]
fn group_cakes_own_log_is_moved_aside_at_its_size() {
    let t = TestHome::new();
    t.ok(&[
        "create",
        "--directory-at-host",
        "127.0.0.1:1",
        "--log-size",
        "1K",
        "--log-files",
        "3",
        "--retry",
        r#"{"min": 0, "max": 0.01, "intensity": 1000000}"#,
    ]);
    // A role that ends at once, restarted for ever: group-cake says so each time.
    t.ok(&["add", "/bin/true", "brief"]);
    let out = t
        .command(&["start"])
        .env("LC_DEBUG_LEVEL", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let run = t.home().join("run");
    t.wait_for("the log to be moved aside twice", || {
        run.join("group-cake.previous-2.log").exists()
    });
    let size = |name: &str| std::fs::metadata(run.join(name)).map_or(0, |m| m.len());
    assert!(size("group-cake.previous.log") >= 1024, "moved aside at its size");
    assert!(
        !run.join("group-cake.previous-3.log").exists(),
        "three files kept, no more"
    );
    t.wait_for("lines in the new file", || size("group-cake.log") > 0);
    t.ok(&["stop"]);
}
