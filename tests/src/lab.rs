//! The multi-host lab from Rust: hosts as network namespaces (see `tests/lab/lab.sh`).
//!
//! [`Lab::new`] builds one, or returns `None` after printing why it cannot (not root, no
//! `ip netns`), so a test can skip. Dropping it ends every process inside and removes the
//! namespaces, whether the test passed or not.

use crate::{bin, Proc};
use std::path::PathBuf;
use std::process::Command as StdCommand;
use tokio::process::Command;

/// A lab of hosts: `h0` is the LAN directory's host at `10.0.0.195`, `hK` is `10.0.0.K`.
pub struct Lab {
    name: String,
    hosts: usize,
}

fn script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/lab/lab.sh"))
}

impl Lab {
    /// Builds a lab of `hosts` hosts, or says why it cannot and returns `None`.
    pub fn new(hosts: usize) -> Option<Lab> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: the namespace lab needs root");
            return None;
        }
        let works = StdCommand::new("ip").args(["netns", "list"]).output();
        if !works.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("skipped: `ip netns` does not work here ({works:?}); install iproute2");
            return None;
        }
        // Every binary is built before any namespace exists.
        bin("lan-cake");
        // Short (interface and namespace names are limited), unique per test process and lab.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("lc{}x{n}", std::process::id());
        let lab = Lab { name, hosts };
        let out = StdCommand::new("bash")
            .arg(script())
            .args(["up", &lab.name, &hosts.to_string()])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "building the lab failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(lab)
    }

    /// How many hosts.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// Host `k`'s namespace.
    pub fn netns(&self, k: usize) -> String {
        assert!(k < self.hosts, "the lab has {} hosts", self.hosts);
        format!("{}-h{k}", self.name)
    }

    /// Host `k`'s address.
    pub fn addr(&self, k: usize) -> String {
        if k == 0 {
            "10.0.0.195".into()
        } else {
            format!("10.0.0.{k}")
        }
    }

    /// Starts one of the workspace's programs on host `k`.
    pub fn spawn(&self, k: usize, label: &str, program: &str, args: &[&str]) -> Proc {
        self.spawn_env(k, label, program, args, &[])
    }

    /// Starts one of the workspace's programs on host `k` with `envs` set.
    pub fn spawn_env(
        &self,
        k: usize,
        label: &str,
        program: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Proc {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns(k)]).arg(bin(program));
        Proc::spawn_command(label, cmd, args, envs)
    }

    /// Starts lan-cake on h0 and a host-cake on every other host, all on their default
    /// addresses (given `secret`, a secret file, as `--secret-file`); returns once each listens.
    pub async fn directories(&self, secret: Option<&str>) -> Vec<Proc> {
        let args: Vec<&str> = secret.map(|f| vec!["--secret-file", f]).unwrap_or_default();
        let mut procs = Vec::new();
        let mut lan = self.spawn(0, "lan-cake", "lan-cake", &args);
        lan.expect(&["listening 0.0.0.0:54195"]).await;
        procs.push(lan);
        for k in 1..self.hosts {
            let mut host = self.spawn(k, &format!("host-cake@h{k}"), "host-cake", &args);
            host.expect(&["listening 127.0.0.1:54195"]).await;
            procs.push(host);
        }
        procs
    }

    /// Starts the publisher demo on host `k`, publishing `name` at `scope`, with `envs`.
    pub fn publisher(&self, k: usize, label: &str, name: &str, scope: &str, envs: &[(&str, &str)]) -> Proc {
        self.spawn_env(k, label, "publisher", &["--name", name, "--scope", scope], envs)
    }

    /// Starts the subscriber demo on host `k`, searching `search` at `scope`, with `envs`.
    pub fn subscriber(
        &self,
        k: usize,
        label: &str,
        search: &str,
        scope: &str,
        envs: &[(&str, &str)],
    ) -> Proc {
        self.spawn_env(
            k,
            label,
            "subscriber",
            &["--search", search, "--scope", scope],
            envs,
        )
    }

    /// Runs one of the workspace's programs on host `k` to the end, in `dir`, and returns what
    /// it printed (the CLI, say).
    pub fn run(&self, k: usize, dir: &std::path::Path, program: &str, args: &[&str]) -> std::process::Output {
        StdCommand::new("ip")
            .args(["netns", "exec", &self.netns(k)])
            .arg(bin(program))
            .args(args)
            .current_dir(dir)
            .env_remove("LC_HOME")
            .env_remove("LC_DIRECTORY")
            .output()
            .expect("ip netns exec runs")
    }

    /// Runs `ip ARGS` in host `k`'s namespace (to take its link down, say).
    pub fn ip(&self, k: usize, args: &[&str]) {
        let status = StdCommand::new("ip")
            .args(["-n", &self.netns(k)])
            .args(args)
            .status()
            .expect("ip runs");
        assert!(status.success(), "ip -n {} {args:?} failed", self.netns(k));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = StdCommand::new("bash")
            .arg(script())
            .args(["down", &self.name])
            .status();
    }
}
