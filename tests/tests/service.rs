//! Boot services: the systemd units `layer-cake service` writes (checked with
//! `systemd-analyze verify` where it exists), and the daemons' readiness notification, read
//! from a fake `NOTIFY_SOCKET` as systemd would.

use layer_cake_tests::home::TestHome;
use layer_cake_tests::{bin, NO_DIRECTORY, WAIT};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};

/// `systemd-analyze verify UNIT`: Some(problems) or None where the tool is missing.
fn verify(unit: &std::path::Path) -> Option<String> {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .ok()?;
    Some(if out.status.success() {
        String::new()
    } else {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn units_are_written_verified_and_removed() {
    let t = TestHome::new();
    t.ok(&["create"]);
    t.ok(&["add", "/bin/sleep", "sleeper", "--", "60"]);
    // One level of waits: the composite's unit gives it a grace period more to stop.
    t.ok(&["add", "/bin/sleep", "late", "--after", "x:.*", "--", "60"]);
    let units = t.dir().join("units");
    let units_arg = units.display().to_string();
    let folder = t.dir().file_name().unwrap().to_string_lossy().into_owned();
    let cases = [
        (
            vec!["host-cake", "--", "--directory-at-lan", "10.1.0.195:54195"],
            "host-cake.service".to_string(),
        ),
        (vec!["lan-cake"], "lan-cake.service".to_string()),
        (vec!["home"], format!("layer-cake-{folder}.service")),
    ];
    for (args, unit) in &cases {
        let mut install = vec!["service", "install", args[0], "--unit-dir", &units_arg];
        install.extend_from_slice(&args[1..]);
        let out = t.ok(&install);
        let path = units.join(unit);
        assert_eq!(
            out,
            format!(
                "wrote {}\nenable and start it with:\n  systemctl daemon-reload\n  systemctl enable --now {unit}\n",
                path.display()
            )
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(
            &regex_escape(&bin("layer-cake").parent().unwrap().display().to_string()),
            "[BIN]",
        );
        settings.add_filter(&regex_escape(&t.dir().display().to_string()), "[DIR]");
        settings.set_snapshot_suffix(args[0]);
        settings.bind(|| insta::assert_snapshot!(text));
        match verify(&path) {
            Some(problems) => assert_eq!(problems, "", "systemd-analyze verify {unit}"),
            None => eprintln!("systemd-analyze is not installed: {unit} not verified"),
        }
        let again = t.fails(&install);
        assert!(again.contains("exists; give --force to replace it"), "{again}");
        install.insert(3, "--force");
        t.ok(&install);
    }
    for (args, unit) in &cases {
        let out = t.ok(&["service", "uninstall", args[0], "--unit-dir", &units_arg]);
        assert!(
            out.starts_with(&format!("removed {}", units.join(unit).display())),
            "{out}"
        );
        assert!(!units.join(unit).exists());
        let again = t.fails(&["service", "uninstall", args[0], "--unit-dir", &units_arg]);
        assert!(again.contains("is not there (nothing to uninstall)"), "{again}");
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// A fake systemd: the socket a `Type=notify` service reports to.
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        NotifySocket {
            _dir: dir,
            path,
            socket,
        }
    }

    /// The next message, waiting at most WAIT.
    fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification within the deadline");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

#[test]
fn directories_tell_systemd_once_they_listen() {
    for (program, args) in [
        (
            "host-cake",
            vec!["--listen", "127.0.0.1:0", "--connect-to-directory", NO_DIRECTORY],
        ),
        ("lan-cake", vec!["--listen", "127.0.0.1:0"]),
    ] {
        let notify = NotifySocket::new();
        let mut daemon = Command::new(bin(program))
            .args(&args)
            .env("NOTIFY_SOCKET", &notify.path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let message = notify.recv();
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert_eq!(message, "READY=1\n", "{program}");
    }
}

#[test]
fn a_composite_tells_systemd_once_its_roles_have_started_and_its_roles_do_not_see_the_socket() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", NO_DIRECTORY]);
    let role = t.script(
        "role.sh",
        r#"echo "notify=${NOTIFY_SOCKET:-none}"; exec sleep 60"#,
    );
    t.ok(&["add", &role, "role"]);
    let notify = NotifySocket::new();
    let mut run = t.command(&["run"]);
    let mut composite = run
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(notify.recv(), "READY=1\n");
    layer_cake_tests::home::wait_for("the role's line", || t.ok(&["log", "role"]).contains("notify="));
    assert!(t.ok(&["log", "role"]).contains(" notify=none\n"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(composite.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = composite.wait().unwrap();
    assert!(status.code().is_some() || status.signal().is_some());
}

use std::os::unix::process::ExitStatusExt;

/// The original's way: an operational home with a `host-cake` role and restarts on. A
/// host-cake that dies is started again, on the same address, and serves again.
#[test]
fn an_operational_home_keeps_host_cake_running() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let t = TestHome::new();
    t.ok(&["create"]);
    let host_cake = bin("host-cake").display().to_string();
    t.ok(&[
        "add",
        &host_cake,
        "--",
        "--listen",
        &listen,
        "--connect-to-directory",
        NO_DIRECTORY,
    ]);
    t.ok(&["update", "group", "--retry", r#"{"min": 0.1, "max": 1}"#]);
    t.ok(&["start"]);
    let listening = format!(" listening {listen}\n");
    layer_cake_tests::home::wait_for("host-cake to listen", || {
        t.ok(&["log", "host-cake"]).contains(&listening)
    });
    let first = t.role_pids()[0].1;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    layer_cake_tests::home::wait_for("host-cake to be started again and listen", || {
        let status = t.status();
        let role = &status["roles"][0];
        role["restarts"] == 1
            && role["state"] == "running"
            && t.ok(&["log", "host-cake"]).matches(&listening).count() == 2
    });
    // It answers: a process joins it and publishes.
    let mut publisher = Command::new(bin("publisher"))
        .args(["--name", "ops:probe", "--directory", &listen])
        .env("LC_DEBUG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = publisher.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(
        line.starts_with("published ops:probe HOST at=HOST active"),
        "{line}"
    );
    t.ok(&["stop"]);
}

/// With a role that declares when it is ready, the composite tells systemd only once it is
/// (it used to as soon as the role had started).
#[test]
fn a_composite_tells_systemd_once_every_role_is_ready() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", NO_DIRECTORY]);
    t.ok(&[
        "add",
        "/bin/sleep",
        "waits",
        "--ready-probe",
        "test -e flag",
        "--",
        "60",
    ]);
    t.ok(&["add", "/bin/sleep", "plain", "--", "60"]);
    let notify = NotifySocket::new();
    let mut composite = t
        .command(&["run"])
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    t.wait_for("both roles running, one not ready", || {
        let (waits, plain) = (t.role_status("waits"), t.role_status("plain"));
        waits.is_some_and(|w| w["state"] == "running" && w["ready"] == false)
            && plain.is_some_and(|p| p["ready"] == true)
    });
    // (group-cake decides before it writes the status it shows: nothing was sent.)
    notify.socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let early = notify.socket.recv(&mut buf);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "told systemd before every role was ready: {early:?}"
    );
    notify.socket.set_nonblocking(false).unwrap();
    std::fs::write(t.dir().join("flag"), "").unwrap();
    assert_eq!(notify.recv(), "READY=1\n");
    assert_eq!(t.role_status("waits").unwrap()["ready"], true);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(composite.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    composite.wait().unwrap();
}
