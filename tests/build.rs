//! Decides whether the namespace lab can run here (root, and a working `ip netns`), and
//! whether tests may mount a small file system of their own (root: the full-disk tests): when
//! they cannot, those tests are built as ignored, with the reason, instead of passing unrun.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lab)");
    println!("cargo::rustc-check-cfg=cfg(root)");
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
    if root {
        println!("cargo::rustc-cfg=root");
    }
}
