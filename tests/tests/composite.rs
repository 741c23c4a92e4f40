//! The composite process end to end: the real `layer-cake` CLI and group-cake running homes of
//! real processes (shell scripts, `sleep`, the demo publisher and subscriber) in temporary
//! folders. Every process is checked by pid.

use layer_cake_tests::home::{alive, wait_for, TestHome};
use layer_cake_tests::{bin, WAIT};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// A home of `n` roles that sleep, created with `create_args`.
fn sleepers(n: u32, create_args: &[&str]) -> TestHome {
    let t = TestHome::new();
    let mut create = vec!["create", "--directory-at-host", "127.0.0.1:1"];
    create.extend_from_slice(create_args);
    t.ok(&create);
    let count = n.to_string();
    t.ok(&["add", "/bin/sleep", "sleeper", "--role-count", &count, "--", "60"]);
    t
}

/// Snapshot settings for a command's output: the given pids, times of day and elapsed times
/// are replaced by placeholders, each with the padding before it made two spaces (a column's
/// padding depends on the width of what it held).
fn redacted(pids: &[u32]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for pid in pids {
        settings.add_filter(&format!(r" +\b{pid}\b"), "  [PID]");
    }
    settings.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "[TIME]");
    settings.add_filter(r" +\b\d+(ms|s|m\d\ds|h\d\dm|d\d\dh)\b", "  [DURATION]");
    settings.add_filter(r"directory 127\.0\.0\.1:\d+", "directory [ADDR]");
    settings
}

fn running_pids(t: &TestHome, n: usize) -> Vec<u32> {
    let mut pids = Vec::new();
    t.wait_for("every role running", || {
        pids = t.role_pids().into_iter().map(|(_, pid)| pid).collect();
        pids.len() == n
    });
    pids
}

#[test]
fn start_status_stop_leaves_no_process() {
    let t = sleepers(3, &[]);
    let out = t.ok(&["start"]);
    assert!(out.starts_with("started 3 roles (group-cake pid "), "{out}");
    let status = t.status();
    assert_eq!(status["running"], true);
    let group_cake = status["pid"].as_u64().unwrap() as u32;
    let pids = running_pids(&t, 3);
    assert!(pids.iter().all(|p| alive(*p)));

    let short = t.ok(&["status"]);
    assert_eq!(
        short,
        "sleeper-0  running, ready\nsleeper-1  running, ready\nsleeper-2  running, ready\n"
    );
    let long = t.ok(&["status", "sleeper-1", "--long-listing"]);
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines.len(), 3, "{long}");
    assert!(lines[1].starts_with("ROLE       STATE"), "{long}");
    assert!(lines[2].starts_with("sleeper-1  running"), "{long}");

    let again = t.fails(&["start"]);
    assert!(again.contains("is running (group-cake pid"), "{again}");

    assert_eq!(
        t.ok(&["stop"]),
        format!("stopped (group-cake pid {group_cake})\n")
    );
    assert!(!alive(group_cake));
    for pid in pids {
        assert!(!alive(pid), "role process {pid} outlived stop");
    }
    assert_eq!(t.status()["running"], false);
    // `status` and `stop` agree that nothing runs: both say so, with exit status 3.
    for command in ["status", "stop"] {
        let out = t.run(&[command]);
        assert_eq!(out.status.code(), Some(3), "{command}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not running"),
            "{command}: {out:?}"
        );
    }
    // Each role's history says how it ended.
    let history: Value = serde_json::from_str(&t.ok(&["history", "sleeper-0", "--json"])).unwrap();
    assert_eq!(history[0]["outcome"]["signalled"]["name"], "SIGTERM");
}

#[test]
fn killing_group_cake_leaves_no_orphans() {
    let t = sleepers(4, &["--retry", r#"{"min": 0}"#]);
    t.ok(&["start", "--grace-ms", "500"]);
    let group_cake = t.status()["pid"].as_u64().unwrap() as u32;
    let pids = running_pids(&t, 4);
    kill(Pid::from_raw(group_cake as i32), Signal::SIGKILL).unwrap();
    for pid in pids {
        wait_for(
            &format!("role process {pid} to end after group-cake was killed"),
            || !alive(pid),
        );
    }
    t.wait_for("the home to be free", || t.status()["running"] == false);
}

#[test]
fn sigterm_to_run_stops_every_role_in_order() {
    let mut t = sleepers(2, &[]);
    let mut run = t.command(&["run", "--grace-ms", "2000"]).spawn().unwrap();
    t.extra_pids.push(run.id());
    let pids = running_pids(&t, 2);
    kill(Pid::from_raw(run.id() as i32), Signal::SIGTERM).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(run.wait()));
    let status = rx.recv_timeout(WAIT).expect("run ends").unwrap();
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(!alive(pid), "role process {pid} outlived run");
    }
}

#[test]
fn run_with_a_main_role_ends_with_its_status_and_tags_output() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let answer = t.script(
        "answer.sh",
        r#"echo "hello from $LC_ROLE"; echo "oops" >&2; echo '{"answer": 42}' > "$LC_RETURNED"; exit 3"#,
    );
    t.ok(&["add", &answer, "answer"]);
    t.ok(&["add", "/bin/sleep", "sleeper", "--", "60"]);
    let out = t.run(&["run", "--main-role", "answer"]);
    assert_eq!(out.status.code(), Some(3), "the main role's exit status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tagged = |on: &str, text: &str| {
        on.lines()
            .any(|l| l.starts_with("answer[") && l.ends_with(&format!("] {text}")))
    };
    assert!(tagged(&stdout, "hello from answer"), "{stdout}");
    assert!(tagged(&stderr, "oops"), "{stderr}");
    assert!(
        stderr.contains("sleeper  killed by SIGTERM, 0 restarts"),
        "{stderr}"
    );
    assert!(stderr.contains("answer   exited 3, 0 restarts"), "{stderr}");

    assert_eq!(
        t.ok(&["returned", "answer"]),
        "exited 3\n{\n  \"answer\": 42\n}\n"
    );
    let history = t.ok(&["history", "answer"]);
    redacted(&[]).bind(|| insta::assert_snapshot!(history));
    // The log holds what it printed, between group-cake's start and end lines, for run 0.
    let log = t.ok(&["log", "answer", "--start=0"]);
    let texts: Vec<&str> = log.lines().map(|l| l.splitn(3, ' ').nth(2).unwrap()).collect();
    assert_eq!(texts.len(), 4, "{log}");
    assert!(texts[0].starts_with("--- started"), "{log}");
    assert!(
        texts.contains(&"hello from answer") && texts.contains(&"oops"),
        "{log}"
    );
    assert_eq!(texts[3], "--- exited 3");
    assert_eq!(t.ok(&["log", "answer", "--count", "1"]).lines().count(), 1);
}

#[test]
fn a_crash_looping_role_backs_off_then_is_marked_failed() {
    let t = TestHome::new();
    t.ok(&[
        "create",
        "--directory-at-host",
        "127.0.0.1:1",
        "--retry",
        r#"{"min": 0.05, "max": 0.2, "intensity": 3, "period": 60}"#,
    ]);
    let crash = t.script("crash.sh", "echo crashing; exit 2");
    t.ok(&["add", &crash, "crash"]);
    t.ok(&["add", "/bin/sleep", "sleeper", "--", "60"]);
    t.ok(&["start"]);
    t.wait_for("the crashing role to be marked failed", || {
        t.status()["roles"][0]["state"] == "failed"
    });
    let status = t.status();
    assert_eq!(status["roles"][0]["restarts"], 3);
    assert_eq!(
        status["roles"][1]["state"], "running",
        "the other role is untouched"
    );
    let group_cake = status["pid"].as_u64().unwrap() as u32;
    let sleeper = status["roles"][1]["pid"].as_u64().unwrap() as u32;
    let long = t.ok(&["status", "-l"]);
    redacted(&[group_cake, sleeper]).bind(|| insta::assert_snapshot!(long));

    // Four runs (the first and three restarts), each restart later than the backoff says:
    // 50 ms, then 100 ms, then 200 ms.
    let history: Value = serde_json::from_str(&t.ok(&["history", "crash", "--json"])).unwrap();
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let at = |i: usize, key: &str| -> jiff::Timestamp { runs[i][key].as_str().unwrap().parse().unwrap() };
    for (i, min_ms) in [(1, 50), (2, 100), (3, 200)] {
        let gap = at(i, "start").duration_since(at(i - 1, "end"));
        assert!(
            gap >= jiff::SignedDuration::from_millis(min_ms),
            "restart {i} came {gap:?} after the last end, under {min_ms} ms"
        );
    }
    let log = t.ok(&["log", "crash"]);
    assert!(
        log.contains("--- failed: more than 3 restarts within 60s; left stopped"),
        "{log}"
    );
}

#[test]
fn deleting_running_roles_is_refused_and_changes_wait_for_a_reload() {
    let t = sleepers(2, &[]);
    t.ok(&["add", "/bin/sleep", "idle", "--", "60"]);
    t.ok(&["start", "sleeper-.*"]);
    let pids = running_pids(&t, 2);
    // A running role's settings may change: the composite takes them at a reload.
    let said = t.ok(&["update", "sleeper-0", "--", "5"]);
    assert!(
        said.starts_with("updated sleeper-0\n") && said.contains("layer-cake reload"),
        "{said}"
    );
    assert_eq!(running_pids(&t, 2), pids, "nothing restarted yet");
    let e = t.fails(&["delete", "sleeper-.*"]);
    assert_eq!(
        e,
        "layer-cake: roles sleeper-0, sleeper-1 are running: stop them first\n"
    );
    t.ok(&["update", "group", "--main-role", "idle"]);
    let e = t.fails(&["destroy"]);
    assert!(e.contains("is running (group-cake pid"), "{e}");
    t.ok(&["stop"]);
    assert_eq!(t.ok(&["update", "idle", "--", "5"]), "updated idle\n");
    assert_eq!(t.ok(&["delete", "sleeper-1"]), "deleted sleeper-1\n");
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let t = sleepers(1, &[]);
    let e = t.fails(&["start", "nosuch"]);
    assert_eq!(
        e,
        "layer-cake: no role matches \"nosuch\" (see `layer-cake list`)\n"
    );
    let e = t.fails(&["run", "--main-role", "other"]);
    assert!(
        e.contains("the main role \"other\" is not among the roles to run"),
        "{e}"
    );
    let e = t.fails(&["returned", "sleeper-0"]);
    assert_eq!(e, "layer-cake: role \"sleeper-0\" has not run yet\n");
    let e = t.fails(&["history", "nosuch"]);
    assert_eq!(e, "layer-cake: no role \"nosuch\"\n");
    let e = t.fails(&["log", "sleeper-0", "--span", "5m"]);
    assert!(e.contains("--span needs the range's start"), "{e}");
    let e = t.fails(&["log", "sleeper-0", "--from", "yesterday"]);
    assert!(e.contains("cannot read \"yesterday\" as a time"), "{e}");
    let e = t.fails(&["returned", "sleeper-0", "--timeout", "0"]);
    assert!(e.contains("has not run yet"), "{e}");
}

#[test]
fn returned_waits_for_a_running_role() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let gate = t.dir().join("gate");
    let slow = t.script(
        "slow.sh",
        &format!(
            r#"while [ ! -e {} ]; do sleep 0.02; done; echo '"done"' > "$LC_RETURNED""#,
            gate.display()
        ),
    );
    t.ok(&["add", &slow, "slow"]);
    t.ok(&["start"]);
    running_pids(&t, 1);
    let e = t.fails(&["returned", "slow"]);
    assert!(e.contains("is still running (pid"), "{e}");
    let waiting = t
        .command(&["returned", "slow", "--timeout", "15"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(&gate, "").unwrap();
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exited 0\n\"done\"\n");
}

#[test]
fn demo_publisher_and_subscriber_roles_find_each_other_at_group_scope() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let publisher = bin("publisher").display().to_string();
    let subscriber = bin("subscriber").display().to_string();
    t.ok(&["add", &publisher, "--", "--name", "svc", "--scope", "GROUP"]);
    t.ok(&["add", &subscriber, "--", "--search", "svc", "--scope", "GROUP"]);
    t.ok(&["start"]);
    t.wait_for("the subscriber to get a reply at GROUP scope", || {
        let log = t.ok(&["log", "subscriber", "--count", "100"]);
        log.contains("available svc GROUP") && log.contains("reply")
    });
    t.ok(&["stop"]);
}

#[test]
fn run_without_a_main_role_reports_every_role_when_all_have_ended() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let good = t.script("good.sh", "exit 0");
    let bad = t.script("bad.sh", "kill -KILL $$");
    t.ok(&["add", &good, "good"]);
    t.ok(&["add", &bad, "bad"]);
    let out = t.run(&["run"]);
    assert_eq!(out.status.code(), Some(1), "a role did not succeed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad   killed by SIGKILL, 0 restarts"), "{stderr}");
    assert!(stderr.contains("good  exited 0, 0 restarts"), "{stderr}");
    t.ok(&["delete", "bad"]);
    assert!(t.run(&["run"]).status.success());
}

#[test]
fn ctrl_c_on_run_stops_every_role() {
    let mut t = sleepers(2, &[]);
    let mut run = t.command(&["run"]).spawn().unwrap();
    t.extra_pids.push(run.id());
    let pids = running_pids(&t, 2);
    kill(Pid::from_raw(run.id() as i32), Signal::SIGINT).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(run.wait()));
    rx.recv_timeout(WAIT).expect("run ends").unwrap();
    for pid in pids {
        assert!(!alive(pid), "role process {pid} outlived Ctrl-C");
    }
}

#[test]
fn edit_checks_the_settings_before_saving() {
    let t = sleepers(1, &[]);
    // An "editor" that changes the arguments.
    let editor = t.script("editor.sh", r#"sed -i 's/"60"/"61"/' "$1""#);
    let out = t
        .command(&["edit", "sleeper-0"])
        .env("LC_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "updated sleeper-0\n");
    assert!(t.ok(&["list", "-l"]).trim_end().ends_with(" 61"));
    // One that breaks the file: nothing is saved.
    let breaker = t.script("breaker.sh", r#"echo '{"executable": "/no/such/file"}' > "$1""#);
    let out = t
        .command(&["edit", "sleeper-0"])
        .env("LC_EDITOR", &breaker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not saved, the edited settings are invalid: /no/such/file"),
        "{err}"
    );
    assert!(t.ok(&["list", "-l"]).trim_end().ends_with(" 61"));
    let out = t
        .command(&["edit", "sleeper-0"])
        .env_remove("EDITOR")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("set $LC_EDITOR or $EDITOR"));
}

#[test]
fn log_follows_new_lines_and_takes_relative_ranges() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let gate = t.dir().join("gate");
    let talker = t.script(
        "talker.sh",
        &format!(
            r#"echo first; while [ ! -e {} ]; do sleep 0.02; done; echo second; sleep 60"#,
            gate.display()
        ),
    );
    t.ok(&["add", &talker, "talker"]);
    t.ok(&["start"]);
    t.wait_for("the first line", || t.ok(&["log", "talker"]).contains(" first\n"));
    let mut follow = t
        .command(&["log", "talker", "--follow", "--count", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // It prints the last line it has, then follows: once that is here, it is following.
    let last = rx.recv_timeout(WAIT).expect("follow prints the last line");
    assert!(last.ends_with(" first"), "{last}");
    std::fs::write(&gate, "").unwrap();
    let line = rx.recv_timeout(WAIT).expect("follow prints the new line");
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(line.ends_with(" second"), "{line}");
    assert_eq!(t.ok(&["log", "talker", "--back", "1h"]).lines().count(), 3);
    assert_eq!(
        t.ok(&["log", "talker", "--from", "2000-01-01", "--span", "1h"]),
        ""
    );
    let local = t.ok(&["log", "talker", "--clock", "--count", "1"]);
    assert!(!local.contains('Z'), "local times carry no Z: {local}");
    t.ok(&["stop"]);
}

/// `list -l` quotes arguments as a shell would need them: `a b` and `a` `b` read apart.
#[test]
fn list_long_quotes_arguments() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    t.ok(&["add", "/bin/echo", "one", "--", "a b", "c", "it's", "$HOME"]);
    let line = t.ok(&["list", "-l"]);
    assert!(
        line.trim_end().ends_with(r#"'a b' c "it's" '$HOME'"#)
            || line.trim_end().ends_with(r#"'a b' c 'it'"'"'s' '$HOME'"#),
        "{line}"
    );
}

/// Restart modes: `on-failure` restarts a role that failed but not one that exited 0; a
/// role's own `never` wins over the group's policy; `--retry none` clears a role's own policy
/// (it follows the group's again); `update group --no-main-role` clears the main role, and a
/// main role that is no role is refused.
#[test]
fn restart_modes_on_failure_never_and_clearing() {
    let t = TestHome::new();
    t.ok(&[
        "create",
        "--directory-at-host",
        "127.0.0.1:1",
        "--retry",
        r#"{"mode": "on-failure", "min": 0, "max": 0.02}"#,
    ]);
    let ok = t.script("ok.sh", "exit 0");
    let bad = t.script("bad.sh", "sleep 0.01; exit 3");
    t.ok(&["add", &ok, "ok"]);
    t.ok(&["add", &bad, "bad"]);
    t.ok(&["add", &bad, "once", "--retry", "never"]);
    t.ok(&["start"]);
    t.wait_for("bad to be restarted twice", || {
        t.role_status("bad").unwrap()["restarts"].as_u64() >= Some(2)
    });
    for (name, why) in [("ok", "exited 0"), ("once", "never")] {
        let r = t.role_status(name).unwrap();
        assert_eq!(r["restarts"], 0, "{name} ({why}): {r}");
        assert_eq!(r["state"], "ended", "{name} ({why}): {r}");
    }
    t.ok(&["stop"]);

    // `none` clears the role's own `never`: it follows the group's on-failure again.
    t.ok(&["update", "once", "--retry", "none"]);
    let settings: Value =
        serde_json::from_slice(&std::fs::read(t.home().join("roles/once/role.json")).unwrap()).unwrap();
    assert!(settings.get("retry").is_none(), "{settings}");
    let out = t.run(&["update", "once", "--retry", "sometimes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(
        err.contains("no restart mode \"sometimes\" (always, on-failure, never)"),
        "{err}"
    );

    t.ok(&["update", "group", "--main-role", "ok"]);
    let err = t.fails(&["update", "group", "--main-role", "nosuch"]);
    assert!(err.contains("no role \"nosuch\" to be the main role"), "{err}");
    t.ok(&["update", "group", "--no-main-role"]);
    let group: Value = serde_json::from_slice(&std::fs::read(t.home().join("group.json")).unwrap()).unwrap();
    assert!(group["main_role"].is_null(), "{group}");
}

/// A directory may be given by host name (looked up when given; `localhost` is in
/// /etc/hosts, so no resolver is asked), and a scope the user gives is never the reserved WAN.
#[test]
fn a_directory_by_name_and_no_wan_scope() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "localhost:54000"]);
    let group: Value = serde_json::from_slice(&std::fs::read(t.home().join("group.json")).unwrap()).unwrap();
    assert!(
        ["127.0.0.1:54000", "[::1]:54000"].contains(&group["directory_at_host"].as_str().unwrap()),
        "{group}"
    );
    let out = t.run(&[
        "call",
        "svc",
        "Ping",
        "{}",
        "--scope",
        "WAN",
        "--directory",
        "127.0.0.1:1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WAN is reserved"), "{err}");
    assert!(!err.contains("PROCESS, GROUP, HOST, LAN, WAN"), "{err}");
}

/// `run` keeps a role's streams apart (its stdout on stdout, its stderr on stderr, each line
/// tagged), and shows group-cake's own lines only from warnings up unless asked (`-v`).
#[test]
fn run_passes_each_stream_through_and_keeps_its_own_lines_quiet() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let talker = t.script("talker.sh", "echo to-out; echo to-err >&2");
    t.ok(&["add", &talker, "talker"]);
    let run = |args: &[&str]| {
        let mut cmd = t.command(args);
        cmd.env_remove("LC_DEBUG_LEVEL").env_remove("RUST_LOG");
        cmd.output().unwrap()
    };
    let out = run(&["run"]);
    assert!(out.status.success(), "{out:?}");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("] to-out") && stdout.starts_with("talker["),
        "{stdout}"
    );
    assert!(!stdout.contains("to-err") && !stdout.contains("---"), "{stdout}");
    assert!(
        stderr.contains("] to-err") && !stderr.contains("to-out"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(" INFO "),
        "group-cake's own lines are off by default: {stderr}"
    );
    let verbose = run(&["run", "-v"]);
    assert!(
        String::from_utf8_lossy(&verbose.stderr).contains(" INFO "),
        "{verbose:?}"
    );
}

/// A role starts the same way wherever `start` runs: in the folder the home is in (or its
/// --cwd), with its own variables (--env-file, then --env) and none of the invoker's but the
/// standard few, a private folder kept from run to run and a scratch folder emptied at each
/// start; and, as root, as the user it names.
#[test]
fn a_role_starts_in_its_own_folder_with_its_own_environment() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let show = t.script(
        "show.sh",
        r#"echo "cwd=$(pwd)"; echo "a=$A b=$B c=$C leaked=${LEAKED:-none} path=${PATH:+set}"
echo "kept=$(cat "$LC_MODEL/kept" 2>/dev/null)"; echo "scratch=$(ls "$LC_TMP")"; echo "uid=$(id -u)"
date +%s%N > "$LC_MODEL/kept"; touch "$LC_TMP/left-over""#,
    );
    std::fs::write(
        t.dir().join("vars.env"),
        "# the role's\nA=from-file\nB='file b'\n",
    )
    .unwrap();
    let env_file = t.dir().join("vars.env").display().to_string();
    t.ok(&[
        "add",
        &show,
        "show",
        "--env-file",
        &env_file,
        "--env",
        "A=from-flag",
        "--env",
        "C=c",
    ]);
    let elsewhere = tempfile::tempdir().unwrap();
    let run = || {
        let out = t
            .command(&["run"])
            .env("LEAKED", "yes")
            .current_dir(elsewhere.path())
            .args(["--home-path", t.home().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = run();
    let folder = std::fs::canonicalize(t.dir()).unwrap();
    assert!(first.contains(&format!("] cwd={}", folder.display())), "{first}");
    assert!(
        first.contains("] a=from-flag b=file b c=c leaked=none path=set"),
        "{first}"
    );
    assert!(
        first.contains("] kept=\n") || first.contains("] kept="),
        "{first}"
    );
    let second = run();
    assert!(
        !second.contains("] kept=\n"),
        "the private folder keeps what the last run left: {second}"
    );
    assert!(
        second.contains("] scratch=\n") || second.lines().any(|l| l.ends_with("] scratch=")),
        "emptied: {second}"
    );
    // An explicit folder, and (as root) another user.
    t.ok(&[
        "update",
        "show",
        "--cwd",
        elsewhere.path().to_str().unwrap(),
        "--unset-env",
        "C",
    ]);
    let root = nix::unistd::geteuid().is_root();
    if root {
        t.ok(&["update", "show", "--user", "nobody"]);
    }
    let third = run();
    let there = std::fs::canonicalize(elsewhere.path()).unwrap();
    assert!(third.contains(&format!("] cwd={}", there.display())), "{third}");
    assert!(third.contains(" c= "), "{third}");
    if root {
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .unwrap()
            .uid
            .as_raw();
        assert!(third.contains(&format!("] uid={nobody}")), "{third}");
    }
    let err = t.fails(&["update", "show", "--user", "no-such-user-here"]);
    assert!(err.contains("no user \"no-such-user-here\""), "{err}");
}
