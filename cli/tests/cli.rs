//! The `layer-cake` binary, run for real in temporary folders: every command's output and its
//! errors, exactly as a person sees them.

use assert_cmd::Command;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

struct Folder(PathBuf);

impl Folder {
    fn new() -> Folder {
        let dir = std::env::temp_dir().join(format!("lc-cli-{}-{:x}", std::process::id(), rand_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        Folder(dir)
    }

    /// `layer-cake` run in this folder.
    fn cmd(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::cargo_bin("layer-cake")
            .unwrap()
            .current_dir(&self.0)
            .env_remove("LC_HOME")
            .args(args)
            .assert()
    }

    fn program(&self, name: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn home_file(dir: &Path, rel: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(".layer-cake").join(rel)).unwrap()).unwrap()
}

#[test]
fn create_add_list_update_delete_destroy() {
    let f = Folder::new();
    let home = f.0.join(".layer-cake");
    let a = f
        .cmd(&["create", "--retry", r#"{"regular_steps": 30.0}"#])
        .success();
    assert_eq!(stdout(&a), format!("created {}\n", home.display()));
    let server = f.program("server");
    let worker = f.program("worker.sh");
    let a = f.cmd(&["add", &server, "--", "--port", "5050"]).success();
    assert_eq!(stdout(&a), "added server\n");
    let a = f
        .cmd(&["add", &worker, "--role-count=3", "--role-start=1"])
        .success();
    assert_eq!(stdout(&a), "added worker-1\nadded worker-2\nadded worker-3\n");

    // A home named as the third argument, as in the original.
    f.cmd(&["create", "other"]).success();
    let a = f.cmd(&["add", &server, "front", "other"]).success();
    assert_eq!(stdout(&a), "added front\n");
    let a = f.cmd(&["list", "--home-path", "other"]).success();
    assert_eq!(stdout(&a), "front\n");

    let a = f.cmd(&["list"]).success();
    assert_eq!(stdout(&a), "server\nworker-1\nworker-2\nworker-3\n");
    let a = f.cmd(&["list", "--long-listing", "server"]).success();
    let line = stdout(&a);
    assert!(
        line.starts_with(&format!("server                   {server} 0/1/")),
        "{line}"
    );
    assert!(line.ends_with(" --port 5050\n"), "{line}");
    let a = f.cmd(&["list", "--json", "worker-[12]"]).success();
    let rows: serde_json::Value = serde_json::from_str(&stdout(&a)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["role"], "worker-1");
    assert_eq!(rows[0]["executable"], worker.as_str());

    let a = f.cmd(&["update", "group", "--main-role", "server"]).success();
    assert_eq!(stdout(&a), "updated group\n");
    let group = home_file(&f.0, "group.json");
    assert_eq!(group["main_role"], "server");
    assert_eq!(group["retry"]["regular_steps"], 30.0);
    // The LAN's secret is kept by its absolute path (group-cake runs elsewhere), and cleared by "".
    f.cmd(&["secret", "lan.key"]).success();
    f.cmd(&["update", "group", "--secret-file", "lan.key"]).success();
    let key = f.0.join("lan.key").display().to_string();
    assert_eq!(home_file(&f.0, "group.json")["secret_file"], key.as_str());
    f.cmd(&["update", "group", "--secret-file", ""]).success();
    assert!(home_file(&f.0, "group.json").get("secret_file").is_none());
    let a = f.cmd(&["update", "worker-.*", "--", "--size=4"]).success();
    assert_eq!(
        stdout(&a),
        "updated worker-1\nupdated worker-2\nupdated worker-3\n"
    );
    assert_eq!(home_file(&f.0, "roles/worker-2/role.json")["args"][0], "--size=4");

    // An unbalanced parenthesis cannot escape the whole-name anchors: `s)|(3` is refused,
    // not read as "starts with s, or ends with 3" (which would delete server and worker-3).
    let a = f.cmd(&["delete", "s)|(3"]).failure();
    assert!(stderr(&a).contains("unopened group"), "{}", stderr(&a));
    let a = f.cmd(&["status", "s)|(3"]).failure();
    assert!(stderr(&a).contains("unopened group"), "{}", stderr(&a));
    assert!(home.join("roles/server").exists() && home.join("roles/worker-3").exists());
    let a = f.cmd(&["delete", "worker-[23]"]).success();
    assert_eq!(stdout(&a), "deleted worker-2\ndeleted worker-3\n");
    let a = f.cmd(&["delete", "--all-roles"]).success();
    assert_eq!(stdout(&a), "deleted server\ndeleted worker-1\n");
    let a = f.cmd(&["destroy"]).success();
    assert_eq!(stdout(&a), format!("destroyed {}\n", home.display()));
    assert!(!home.exists());
}

#[test]
fn mistakes_are_refused_with_a_reason() {
    let f = Folder::new();
    let a = f.cmd(&["list"]).failure().code(1);
    assert_eq!(
        stderr(&a),
        "layer-cake: .layer-cake is not a layer-cake home (no group.json); create one with `layer-cake create`\n"
    );
    f.cmd(&["create"]).success();
    let a = f.cmd(&["create"]).failure().code(1);
    assert_eq!(stderr(&a), "layer-cake: .layer-cake already exists\n");
    let a = f.cmd(&["add", "no-such-program-anywhere"]).failure();
    assert_eq!(
        stderr(&a),
        "layer-cake: no-such-program-anywhere: not found (give a path, or put it on PATH)\n"
    );
    std::fs::write(f.0.join("data.txt"), "x").unwrap();
    let a = f.cmd(&["add", "./data.txt"]).failure();
    assert_eq!(
        stderr(&a),
        "layer-cake: ./data.txt: not executable (no x permission)\n"
    );
    let prog = f.program("prog");
    f.cmd(&["add", &prog]).success();
    let a = f.cmd(&["add", &prog]).failure();
    assert_eq!(stderr(&a), "layer-cake: role \"prog\" already exists\n");
    let a = f.cmd(&["add", &prog, "group"]).failure();
    assert!(
        stderr(&a).contains("invalid role name \"group\""),
        "{}",
        stderr(&a)
    );
    let a = f
        .cmd(&["create", "elsewhere", "--retry", r#"{"min": 5, "max": 1}"#])
        .failure()
        .code(2);
    assert!(stderr(&a).contains("min (5) is over max (1)"), "{}", stderr(&a));
    let a = f
        .cmd(&[
            "create",
            "elsewhere",
            "--directory-at-host",
            "127.0.0.1:1",
            "--directory-at-lan",
            "127.0.0.1:2",
        ])
        .failure()
        .code(2);
    assert!(stderr(&a).contains("cannot be used with"), "{}", stderr(&a));
    // A secret file is checked when it is given, not when the composite first needs it.
    let a = f
        .cmd(&["create", "elsewhere", "--secret-file", "missing.key"])
        .failure()
        .code(2);
    assert!(stderr(&a).contains("missing.key"), "{}", stderr(&a));
    assert!(!f.0.join("elsewhere").exists());
    let a = f.cmd(&["delete", "nobody"]).failure();
    assert_eq!(stderr(&a), "layer-cake: no role matches nobody\n");
    let a = f.cmd(&["delete", "("]).failure();
    assert!(
        stderr(&a).starts_with("layer-cake: invalid search \"(\""),
        "{}",
        stderr(&a)
    );
    let a = f.cmd(&["update", "prog"]).failure();
    assert_eq!(
        stderr(&a),
        "layer-cake: nothing to update: give --executable, --retry, --log-size, --log-files, --env, --env-file, --cwd, --user, --after, --ready-when-published, --ready-probe or arguments after --\n"
    );
    let a = f.cmd(&["update", "prog", "--main-role", "x"]).failure();
    assert!(
        stderr(&a).contains("use `layer-cake update group"),
        "{}",
        stderr(&a)
    );
}

/// Every command's `--help`, as a person reads it, kept as a snapshot
/// (`cli/tests/snapshots/`): a change to any of them shows up in review.
#[test]
fn every_command_explains_itself() {
    let f = Folder::new();
    let a = f.cmd(&["--help"]).success();
    insta::assert_snapshot!("help", stdout(&a));
    for command in [
        "create",
        "add",
        "update",
        "delete",
        "edit",
        "list",
        "destroy",
        "run",
        "start",
        "stop",
        "status",
        "history",
        "returned",
        "log",
        "service",
        "network",
        "ping",
        "call",
        "secret",
        "completions",
        "man",
    ] {
        let a = f.cmd(&[command, "--help"]).success();
        let text = stdout(&a);
        assert!(
            text.lines().next().is_some_and(|l| l.len() > 10),
            "{command} has a one-line description"
        );
        insta::assert_snapshot!(format!("help-{command}"), text);
    }
}

/// Completions and manual pages come from the same definitions as `--help`: one page per
/// command, each naming its command; completions for each shell know every command.
#[test]
fn completions_and_manual_pages_cover_every_command() {
    let f = Folder::new();
    for shell in ["bash", "zsh", "fish"] {
        let text = stdout(&f.cmd(&["completions", shell]).success());
        for command in ["create", "start", "network", "call", "completions"] {
            assert!(text.contains(command), "{shell} completions know {command}");
        }
    }
    let a = f.cmd(&["completions", "tcsh"]).failure().code(2);
    assert!(stderr(&a).contains("tcsh"), "{}", stderr(&a));
    let out = f.0.join("man");
    f.cmd(&["man", out.to_str().unwrap()]).success();
    let page = std::fs::read_to_string(out.join("layer-cake-start.1")).unwrap();
    assert!(
        page.contains("layer\\-cake\\-start") || page.contains("layer-cake-start"),
        "{page}"
    );
    assert!(
        page.contains("main\\-role") || page.contains("main-role"),
        "the start page lists --main-role"
    );
    let pages = std::fs::read_dir(&out).unwrap().count();
    assert!(pages >= 22, "{pages} pages");
    // Piped into a reader that stops early: quiet, not a panic.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("layer-cake"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );
}
