//! Decides whether the namespace lab can run here (root, and a working `ip netns`), and
//! whether tests may mount a small file system of their own (the full-disk tests): when
//! they cannot, those tests are built as ignored, with the reason, instead of passing unrun.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lab)");
    println!("cargo::rustc-check-cfg=cfg(small_disk)");
    println!("cargo::rerun-if-env-changed=LC_NO_LAB");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success());
    if root && netns && std::env::var_os("LC_NO_LAB").is_none() {
        println!("cargo::rustc-cfg=lab");
    }
    if root && can_mount_tmpfs() {
        println!("cargo::rustc-cfg=small_disk");
    }
}

/// Can a tmpfs be mounted here (root, and allowed to by the machine)? Tried once, and undone.
fn can_mount_tmpfs() -> bool {
    let dir = std::env::temp_dir().join(format!("lc-mount-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&dir)
        .output()
        .is_ok_and(|o| o.status.success());
    if mounted {
        let _ = std::process::Command::new("umount").arg(&dir).output();
    }
    let _ = std::fs::remove_dir(&dir);
    mounted
}
