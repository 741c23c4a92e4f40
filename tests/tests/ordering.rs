//! Ordering by names and readiness, with real processes: a role added with `--after` starts
//! only once a process of the composite publishes a matching name, and is stopped before
//! the roles it waited for; a role is ready once it has published what it declares or passed
//! its probe; `status` shows it and `start --wait` waits for it.

use layer_cake_tests::bin;
use layer_cake_tests::home::TestHome;
use serde_json::Value;

/// A script that runs the demo publisher of `name` at GROUP scope, and on SIGTERM writes
/// `<tag>-term` to `order`, takes `linger` seconds, writes `<tag>-exit`, and ends.
fn publisher_script(t: &TestHome, tag: &str, name: &str, linger: &str) -> String {
    let publisher = bin("publisher").display().to_string();
    let order = t.dir().join("order").display().to_string();
    t.script(
        &format!("{tag}.sh"),
        &format!(
            "trap 'echo {tag}-term >> {order}; sleep {linger}; echo {tag}-exit >> {order}; kill $P; exit 0' TERM\n\
             {publisher} --name {name} --scope GROUP &\nP=$!\nwait $P"
        ),
    )
}

fn new_home(t: &TestHome) {
    // No host-cake is needed (every name is published at GROUP scope); none is reached.
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
}

fn field<'a>(role: &'a Value, key: &str) -> &'a Value {
    &role[key]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// `--after 'db:.*'`: the role waits (no process, `status` says what for) until db publishes;
/// then it starts. Stopping the composite stops it first: the role it waited for gets its
/// SIGTERM only once the waiting role has ended (they used to be signalled together).
#[test]
fn a_role_after_names_starts_once_they_are_published_and_stops_before_them() {
    let t = TestHome::new();
    new_home(&t);
    let db = publisher_script(&t, "db", "db:main", "0");
    // The dependent takes a while to end on SIGTERM, so a db signalled with it would say so
    // in between.
    let api = publisher_script(&t, "api", "api:main", "0.3");
    t.ok(&["add", &db, "db"]);
    t.ok(&["add", &api, "api", "--after", "db:.*"]);

    // Only api: it waits, and no process of it is started.
    t.ok(&["start", "api"]);
    let api_status = t.role_status("api").expect("api is in the composite");
    assert_eq!(field(&api_status, "state"), "waiting", "{api_status}");
    assert_eq!(field(&api_status, "pid"), &Value::Null);
    assert_eq!(strings(field(&api_status, "waiting_for")), ["db:.*"]);
    // Nothing runs that could publish it: group-cake says so.
    let log = t.home().join("run/group-cake.log");
    t.wait_for("group-cake to say api waits on nothing that runs", || {
        std::fs::read_to_string(&log).is_ok_and(|l| {
            l.contains("roles wait for names that no running role of the composite publishes")
                && l.contains("api (for db:.*)")
        })
    });
    let human = t.ok(&["status"]);
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("api ") && l.ends_with(" waiting for db:.*")),
        "status said:\n{human}"
    );

    // db joins the running composite and publishes: api starts.
    t.ok(&["start", "db"]);
    t.wait_for("api to start once db:main is published", || {
        t.role_status("api")
            .is_some_and(|r| r["state"] == "running" && r["pid"].is_u64())
    });
    let log = t.ok(&["log", "api"]);
    assert!(
        log.contains("waiting for names matching db:.*"),
        "api's log:\n{log}"
    );

    t.ok(&["stop"]);
    let order = std::fs::read_to_string(t.dir().join("order")).expect("the roles wrote their order");
    let order: Vec<&str> = order.lines().collect();
    assert_eq!(
        order,
        ["api-term", "api-exit", "db-term", "db-exit"],
        "api (which waited for db) must end before db is asked to stop"
    );
}

/// Readiness: a role declaring `--ready-when-published` is ready once its own process has
/// published a matching name; one declaring `--ready-probe` once the probe exits 0; one
/// declaring nothing once it runs. `start --wait` returns when all are, and fails, naming
/// the role and what it waits for, when one is not within its deadline.
#[test]
fn roles_are_ready_when_they_have_done_what_they_declare() {
    let t = TestHome::new();
    new_home(&t);
    let db = publisher_script(&t, "db", "db:main", "0");
    let other = publisher_script(&t, "other", "other:main", "0");
    t.ok(&["add", &db, "db", "--ready-when-published", "db:main"]);
    // Publishes other:main, not the name it declares: never ready.
    t.ok(&["add", &other, "other", "--ready-when-published", "other:ready"]);
    // Ready once a file appears in the folder the home is in (the role's folder).
    t.ok(&["add", &db, "probed", "--ready-probe", "test -e flag"]);
    t.ok(&["add", &bin("idle-role").display().to_string(), "plain"]);

    let out = t.run(&["start", "--wait", "--wait-timeout", "2"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "start --wait should fail: {said}");
    assert!(
        said.contains("not every role was ready within 2.0 s")
            && said.contains("other (running, waits for other:ready)")
            && said.contains("probed (running, waits for probe: test -e flag)")
            && !said.contains("db (")
            && !said.contains("plain ("),
        "start --wait said: {said}"
    );
    // The composite runs on regardless.
    let status = t.status();
    assert_eq!(status["running"], true);
    for (role, ready) in [("db", true), ("plain", true), ("other", false), ("probed", false)] {
        let r = t.role_status(role).unwrap();
        assert_eq!(r["state"], "running", "{r}");
        assert_eq!(r["ready"], ready, "{role}: {r}");
    }
    let long = t.ok(&["status", "-l"]);
    assert!(long.contains("READY"), "{long}");

    // The probe passes once the file is there.
    std::fs::write(t.dir().join("flag"), "").unwrap();
    t.wait_for("probed to be ready", || {
        t.role_status("probed").is_some_and(|r| r["ready"] == true)
    });
    let probed = t.role_status("probed").unwrap();
    assert!(strings(&probed["waiting_for"]).is_empty(), "{probed}");
    // other stays not ready: start --wait of it alone fails the same way.
    let out = t.run(&["start", "other", "--wait", "--wait-timeout", "0.5"]);
    assert_eq!(out.status.code(), Some(1));
    t.ok(&["stop"]);

    // Without `other`: every role ready, and start --wait says so.
    t.ok(&["delete", "other"]);
    let said = t.ok(&["start", "--wait", "--wait-timeout", "20"]);
    assert!(said.contains("3 roles ready, "), "start --wait said: {said}");
    t.ok(&["stop"]);
}

/// A role whose process ends before it is ready fails `start --wait` at once, saying how it
/// ended; a role that runs once and ends with status 0 counts as done.
#[test]
fn start_wait_fails_at_once_when_a_role_ends_unready() {
    let t = TestHome::new();
    new_home(&t);
    let ok = t.script("ok.sh", "exit 0");
    let bad = t.script("bad.sh", "exit 7");
    t.ok(&["add", &ok, "job"]);
    t.ok(&["add", &bad, "broken", "--ready-probe", "false"]);
    t.ok(&["add", &bin("idle-role").display().to_string(), "keeper"]);
    let out = t.run(&["start", "--wait", "--wait-timeout", "30"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("broken is ended (exited 7) while start waits for every role to be ready"),
        "{said}"
    );
    // (Not at its deadline: that failure names the roles not ready, in other words.)
    assert!(!said.contains("not every role was ready within"), "{said}");
    t.ok(&["stop"]);
}

/// The flags are checked and kept: a bad search is refused, `update` replaces the list and
/// '' clears it; `--after` on the group is refused.
#[test]
fn ordering_flags_are_checked_and_cleared() {
    let t = TestHome::new();
    new_home(&t);
    let idle = bin("idle-role").display().to_string();
    // (A usage error: clap's exit status 2.)
    let out = t.run(&["add", &idle, "x", "--after", "db:("]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--after") && err.contains("db:("), "{err}");
    t.ok(&[
        "add",
        &idle,
        "x",
        "--after",
        "a:.*",
        "--after",
        "b:.*",
        "--ready-probe",
        "true",
    ]);
    let settings = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(t.home().join("roles/x/role.json")).unwrap()).unwrap()
    };
    assert_eq!(strings(&settings()["after"]), ["a:.*", "b:.*"]);
    assert_eq!(settings()["ready_probe"], "true");
    t.ok(&["update", "x", "--after", "c:.*"]);
    assert_eq!(strings(&settings()["after"]), ["c:.*"]);
    t.ok(&["update", "x", "--after", "", "--ready-probe", ""]);
    assert!(settings().get("after").is_none(), "{}", settings());
    assert!(settings().get("ready_probe").is_none(), "{}", settings());
    let err = t.fails(&["update", "group", "--after", "a"]);
    assert!(err.contains("are a role's"), "{err}");
}

/// A role's new process is not made ready by what its previous process published: here the
/// first process leaves its publisher running (holding `db:main`) when it is restarted, and
/// the new one publishes nothing. It used to be ready at once.
#[test]
fn a_restarted_role_is_not_ready_by_its_previous_processs_names() {
    let mut t = TestHome::new();
    new_home(&t);
    let publisher = bin("publisher").display().to_string();
    let db = t.script(
        "db.sh",
        &format!(
            "if [ ! -e ran ]; then touch ran; {publisher} --name db:main --scope GROUP & echo $! > orphan; fi\n\
             trap 'exit 0' TERM\nsleep 600 & wait"
        ),
    );
    t.ok(&["add", &db, "db", "--ready-when-published", "db:main"]);
    t.ok(&["start", "--wait", "--wait-timeout", "20"]);
    let orphan: u32 = std::fs::read_to_string(t.dir().join("orphan"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    t.extra_pids.push(orphan);
    let first = t.role_status("db").unwrap()["pid"].as_u64().unwrap();

    t.ok(&["restart", "db"]);
    let now = t.role_status("db").unwrap();
    assert!(now["pid"].as_u64().is_some_and(|p| p != first), "{now}");
    assert_eq!(
        now["ready"], false,
        "the old process's db:main made the new one ready: {now}"
    );
    assert_eq!(strings(&now["waiting_for"]), ["db:main"]);
    let out = t.run(&["start", "db", "--wait", "--wait-timeout", "0.5"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    t.ok(&["stop"]);
}

/// The order of stopping follows the waits as they are at the stop: a role given an `after`
/// of its own by a reload (a waits for c now) makes the role that waited for it (b) deeper
/// too, so b ends, then a, then c. (Depths were fixed at each start: b and a were stopped
/// together.) A probe that outlives its time is killed with what it started.
#[test]
fn the_stop_order_follows_the_waits_as_they_are_now() {
    let t = TestHome::new();
    new_home(&t);
    let c = publisher_script(&t, "c", "c:main", "0");
    let a = publisher_script(&t, "a", "a:main", "0.3");
    let b = publisher_script(&t, "b", "b:main", "0.3");
    t.ok(&["add", &c, "c"]);
    t.ok(&["add", &a, "a"]);
    t.ok(&["add", &b, "b", "--after", "a:.*"]);
    t.ok(&["start", "--wait", "--wait-timeout", "20"]);
    t.ok(&["update", "a", "--after", "c:.*"]);
    t.ok(&["reload"]);
    t.wait_for("a restarted", || {
        t.role_status("a")
            .is_some_and(|r| r["state"] == "running" && r["pid"].is_u64())
            && std::fs::read_to_string(t.dir().join("order")).is_ok_and(|o| o.contains("a-exit"))
    });
    std::fs::remove_file(t.dir().join("order")).unwrap();
    t.ok(&["stop"]);
    let order = std::fs::read_to_string(t.dir().join("order")).unwrap();
    let order: Vec<&str> = order.lines().collect();
    assert_eq!(
        order,
        ["b-term", "b-exit", "a-term", "a-exit", "c-term", "c-exit"]
    );
}

/// A readiness probe that does not end within its 5 s is killed with everything it started.
#[test]
fn a_probe_past_its_time_is_killed_with_what_it_started() {
    let t = TestHome::new();
    new_home(&t);
    t.ok(&[
        "add",
        "/bin/sleep",
        "slow",
        "--ready-probe",
        "sleep 60 & echo $! > probe-child; wait",
        "--",
        "600",
    ]);
    t.ok(&["start"]);
    let file = t.dir().join("probe-child");
    t.wait_for("the probe to start its child", || {
        std::fs::read_to_string(&file).is_ok_and(|p| p.trim().parse::<u32>().is_ok())
    });
    let child: u32 = std::fs::read_to_string(&file).unwrap().trim().parse().unwrap();
    layer_cake_tests::home::wait_for("the probe's child to be killed at the probe's deadline", || {
        !layer_cake_tests::home::alive(child)
    });
    assert_eq!(t.role_status("slow").unwrap()["ready"], false);
    t.ok(&["stop"]);
}

/// Many roles starting at once are all ready once they have published: a process may publish
/// before group-cake has noted its start (a fast one on the other core), and that name is its
/// own, not a previous process's. (With 100 roles, one start in two left a role never ready.)
#[test]
fn many_roles_started_at_once_are_all_ready() {
    let t = TestHome::new();
    new_home(&t);
    let idle = bin("idle-role").display().to_string();
    for i in 0..40 {
        let (name, ready) = (format!("r{i}"), format!("role:r{i}"));
        t.ok(&["add", &idle, &name, "--ready-when-published", &ready]);
    }
    for _ in 0..5 {
        let said = t.ok(&["start", "--wait", "--wait-timeout", "20"]);
        assert!(said.contains("40 roles ready"), "{said}");
        t.ok(&["stop"]);
    }
}
