use super::*;
use std::os::unix::fs::PermissionsExt;

struct Temp(PathBuf);

impl Temp {
    fn new(tag: &str) -> Temp {
        let dir = std::env::temp_dir().join(format!(
            "lc-home-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn executable(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn create_add_select_delete_destroy() {
    let tmp = Temp::new("cycle");
    let path = tmp.0.join(".layer-cake");
    let group = GroupSettings {
        main_role: Some("server".into()),
        ..GroupSettings::default()
    };
    let home = Home::create(&path, &group).unwrap();
    assert!(matches!(Home::create(&path, &group), Err(HomeError::Exists(_))));
    assert_eq!(Home::open(&path).unwrap().group().unwrap(), group);

    let exe = executable(&tmp.0, "worker", 0o755);
    let settings = RoleSettings {
        args: vec!["--size=4".into()],
        ..RoleSettings::new(exe.clone())
    };
    home.add(&role_names("worker", Some(3), 0), &settings).unwrap();
    home.add(&["server".to_string()], &settings).unwrap();
    assert_eq!(
        home.roles().unwrap(),
        ["server", "worker-0", "worker-1", "worker-2"]
    );
    assert_eq!(
        home.select(&["worker-[01]".into()]).unwrap(),
        ["worker-0", "worker-1"]
    );
    assert_eq!(
        home.select(&["work".into()]).unwrap(),
        Vec::<String>::new(),
        "whole-name match"
    );
    for bad in ["(", "w)|(1"] {
        assert!(
            matches!(home.select(&[bad.into()]), Err(HomeError::BadSearch(_))),
            "{bad:?} must be refused, not select by a half-anchored pattern"
        );
    }
    assert_eq!(home.role("worker-1").unwrap(), settings);

    // All or nothing: one collision refuses the whole add.
    let err = home
        .add(&role_names("worker", Some(2), 2), &settings)
        .unwrap_err();
    assert!(
        matches!(err, HomeError::RoleExists(ref r) if r == "worker-2"),
        "{err}"
    );
    assert!(!home.role_dir("worker-3").exists());

    home.delete("worker-0").unwrap();
    assert!(matches!(home.delete("worker-0"), Err(HomeError::NoRole(_))));
    assert_eq!(home.roles().unwrap().len(), 3);
    home.destroy().unwrap();
    assert!(!path.exists());
    assert!(matches!(Home::open(&path), Err(HomeError::NotAHome(_))));
}

#[test]
fn executables_and_role_names_are_checked_when_added() {
    let tmp = Temp::new("checks");
    let home = Home::create(&tmp.0.join("h"), &GroupSettings::default()).unwrap();
    let not_exec = executable(&tmp.0, "data", 0o644);
    let settings = RoleSettings::new;
    let err = home.add(&["r".into()], &settings(not_exec)).unwrap_err();
    assert!(err.to_string().contains("not executable"), "{err}");
    let err = home
        .add(&["r".into()], &settings(tmp.0.join("missing")))
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    let exe = executable(&tmp.0, "ok", 0o755);
    for bad in ["group", "", ".hidden", "a/b", "sp ace"] {
        assert!(
            matches!(
                home.add(&[bad.into()], &settings(exe.clone())),
                Err(HomeError::BadRoleName(_))
            ),
            "{bad}"
        );
    }
    assert!(resolve_executable("sh").unwrap().is_absolute());
    assert!(resolve_executable("no-such-program-here").is_err());
}

#[test]
fn files_are_pretty_json_and_writes_leave_no_temporaries() {
    let tmp = Temp::new("files");
    let retry = RetryPolicy {
        regular_steps: Some(30.0),
        ..RetryPolicy::default()
    };
    let group = GroupSettings {
        retry: Some(retry),
        ..GroupSettings::default()
    };
    let home = Home::create(&tmp.0.join("h"), &group).unwrap();
    home.save_group(&group).unwrap();
    let text = std::fs::read_to_string(home.path().join("group.json")).unwrap();
    assert!(text.contains("\"regular_steps\": 30.0"), "{text}");
    let names: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "only group.json and roles/: {names:?}");
    // A person's edit that breaks the file is reported with the file's name.
    std::fs::write(home.path().join("group.json"), "{ nope").unwrap();
    assert!(matches!(home.group(), Err(HomeError::BadFile { .. })));
}

#[test]
fn the_originals_retry_settings_are_expressible() {
    let policy: RetryPolicy = serde_json::from_str(r#"{"regular_steps": 30.0}"#).unwrap();
    assert_eq!(policy.regular_steps, Some(30.0));
    policy.validate().unwrap();
    let bad: RetryPolicy = serde_json::from_str(r#"{"min": 5, "max": 1}"#).unwrap();
    assert!(bad.validate().is_err());
    assert!(
        serde_json::from_str::<RetryPolicy>(r#"{"regular_step": 3}"#).is_err(),
        "typos are refused"
    );
}

#[test]
fn the_run_lock_is_exclusive_and_released_with_its_holder() {
    let tmp = Temp::new("lock");
    let home = Home::create(&tmp.0.join("h"), &GroupSettings::default()).unwrap();
    assert!(!home.is_running().unwrap());
    let lock = home.lock().unwrap();
    assert!(home.is_running().unwrap());
    assert!(matches!(home.lock(), Err(HomeError::Running { pid: None, .. })));
    drop(lock);
    assert!(!home.is_running().unwrap());
    assert_eq!(home.running().unwrap(), None);
}

#[test]
fn history_replaces_a_runs_start_with_its_end_and_keeps_the_last_runs() {
    use super::run::{Outcome, Run, HISTORY_LEN};
    let tmp = Temp::new("history");
    let home = Home::create(&tmp.0.join("h"), &GroupSettings::default()).unwrap();
    let start = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let started = Run {
        start,
        end: None,
        pid: Some(7),
        outcome: None,
        returned: None,
    };
    home.record_run("r", &started).unwrap_err(); // no such role folder yet
    std::fs::create_dir_all(home.role_dir("r")).unwrap();
    home.record_run("r", &started).unwrap();
    let ended = Run {
        end: Some(start + jiff::SignedDuration::from_secs(2)),
        outcome: Some(Outcome::Exited { code: 0 }),
        returned: Some(serde_json::json!({"x": 1})),
        ..started.clone()
    };
    home.record_run("r", &ended).unwrap();
    assert_eq!(home.history("r").unwrap(), vec![ended.clone()]);
    for i in 0..HISTORY_LEN as i64 + 5 {
        let run = Run {
            start: start + jiff::SignedDuration::from_secs(10 + i),
            ..ended.clone()
        };
        home.record_run("r", &run).unwrap();
    }
    let runs = home.history("r").unwrap();
    assert_eq!(runs.len(), HISTORY_LEN);
    assert_eq!(
        runs.last().unwrap().start,
        start + jiff::SignedDuration::from_secs(10 + HISTORY_LEN as i64 + 4)
    );
}

#[test]
fn a_roles_log_is_capped_and_read_back_in_order() {
    use super::log::{LogLine, LogWriter};
    let tmp = Temp::new("log");
    let home = Home::create(&tmp.0.join("h"), &GroupSettings::default()).unwrap();
    let mut log = LogWriter::open(&home, "r", crate::home::LogLimits { size: 200, files: 2 }).unwrap();
    let t0 = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    for i in 0..20i64 {
        log.push(
            t0 + jiff::SignedDuration::from_secs(i),
            42,
            format!("line {i}\r\n").as_bytes(),
        );
        log.flush().unwrap();
    }
    let dir = home.log_dir("r");
    let sizes: Vec<u64> = ["current.log", "previous.log"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
        .collect();
    assert!(
        sizes.iter().all(|s| *s < 200 + 120),
        "each file stays near the cap: {sizes:?}"
    );
    let lines = home.log_lines("r").unwrap();
    assert!(lines.len() < 20, "old lines were dropped");
    assert_eq!(
        lines.last().unwrap(),
        &LogLine {
            at: t0 + jiff::SignedDuration::from_secs(19),
            pid: 42,
            text: "line 19".into()
        }
    );
    assert!(lines.windows(2).all(|w| w[0].at < w[1].at), "oldest first");
    assert_eq!(LogLine::parse("not a log line"), None);
}
