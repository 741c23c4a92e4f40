//! A portable composite: `export` packs a home with its executables (and, asked, the roles'
//! own folders) into one archive; `import` unpacks it into a new home, ready to start.

use layer_cake_tests::home::TestHome;

/// `export` packs a home and its executables into one archive; `import` unpacks it into a new
/// home elsewhere that starts as it is, the original untouched and no longer needed.
#[test]
fn an_exported_home_is_imported_elsewhere_and_starts() {
    let t = TestHome::new();
    t.ok(&[
        "create",
        "--directory-at-host",
        "127.0.0.1:1",
        "--retry",
        "on-failure",
    ]);
    let script = t.script("sleepy.sh", "echo \"hello from $LC_ROLE, A=$A\"; exec sleep 600");
    std::fs::write(t.dir().join("vars.env"), "A=from-the-file\n").unwrap();
    let vars = t.dir().join("vars.env").display().to_string();
    t.ok(&["add", &script, "sleepy", "--role-count=2", "--env-file", &vars]);
    t.ok(&["add", "/bin/sleep", "plain", "--", "600"]);
    let archive = t.dir().join("composite.tar.gz");
    let said = t.ok(&["export", archive.to_str().unwrap()]);
    assert!(said.contains("exported 3 roles and 2 executables"), "{said}");
    assert!(t
        .fails(&["export", archive.to_str().unwrap()])
        .contains("exists; give --force"));

    let there = TestHome::new();
    let said = there.ok(&["import", archive.to_str().unwrap()]);
    assert!(said.contains("imported 3 roles"), "{said}");
    // Its executables are its own now: the original ones can go.
    std::fs::remove_file(&script).unwrap();
    std::fs::remove_file(&vars).unwrap();
    let listed = there.ok(&["list", "-l"]);
    assert!(
        listed.contains(&format!("{}/bin/sleepy.sh", there.home().display())),
        "{listed}"
    );
    there.ok(&["start"]);
    there.wait_for("both sleepy roles to say hello", || {
        ["sleepy-0", "sleepy-1"].iter().all(|r| {
            there
                .ok(&["log", r])
                .contains(&format!("hello from {r}, A=from-the-file"))
        })
    });
    assert_eq!(there.role_pids().len(), 3);
    there.ok(&["stop"]);
    assert!(there
        .fails(&["import", archive.to_str().unwrap()])
        .contains("exists"));
    let junk = t.dir().join("junk.tar.gz");
    std::fs::write(&junk, "not an archive").unwrap();
    let fresh = TestHome::new();
    let err = fresh.fails(&["import", junk.to_str().unwrap()]);
    assert!(err.contains("not an archive"), "{err}");
    assert!(!fresh.home().exists(), "a failed import leaves nothing behind");
}

/// `export --with-model` packs each role's own folder (`LC_MODEL`), and `import` puts it back
/// in the same role's, where the role finds it at its next start; links are left out, and an
/// archive entry that would land outside a role's folder is refused, leaving nothing behind.
#[test]
fn a_roles_own_folder_travels_with_model() {
    let t = TestHome::new();
    t.ok(&["create", "--directory-at-host", "127.0.0.1:1"]);
    let keeper = t.script(
        "keeper.sh",
        "echo \"kept: $(cat \"$LC_MODEL/state/count\" 2>/dev/null)\"; exec sleep 600",
    );
    t.ok(&["add", &keeper, "keeper"]);
    let model = t.home().join("roles/keeper/model");
    std::fs::create_dir_all(model.join("state")).unwrap();
    std::fs::write(model.join("state/count"), "41").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", model.join("link")).unwrap();

    let plain = t.dir().join("plain.tar.gz");
    let with = t.dir().join("with.tar.gz");
    t.ok(&["export", plain.to_str().unwrap()]);
    let out = t.run(&["export", "--with-model", with.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("link is not a file or folder: not packed"),
        "{out:?}"
    );

    let there = TestHome::new();
    there.ok(&["import", with.to_str().unwrap()]);
    let moved = there.home().join("roles/keeper/model");
    assert_eq!(std::fs::read_to_string(moved.join("state/count")).unwrap(), "41");
    assert!(
        std::fs::symlink_metadata(moved.join("link")).is_err(),
        "the link is not packed"
    );
    there.ok(&["start"]);
    there.wait_for("the role to read its kept state", || {
        there.ok(&["log", "keeper"]).contains("kept: 41")
    });
    there.ok(&["stop"]);

    // Without --with-model, the folder stays behind.
    let bare = TestHome::new();
    bare.ok(&["import", plain.to_str().unwrap()]);
    assert!(!bare.home().join("roles/keeper/model/state/count").exists());

    // Hand-made archives: a model entry that names no role of the archive, or a file in the
    // place of a role's folder, is refused, all or nothing.
    for (from, file, refused) in [
        (&with, "model/nobody/x", "model/nobody"),
        (&plain, "model/keeper", "model/keeper"),
    ] {
        let forged = forge(&t, from, file);
        let fresh = TestHome::new();
        let err = fresh.fails(&["import", forged.to_str().unwrap()]);
        assert!(
            err.contains("not a role's file: ") && err.contains(refused),
            "{err}"
        );
        assert!(!fresh.home().exists(), "a failed import leaves nothing behind");
    }
}

/// `archive` unpacked, a file added at `file`, and packed again with `tar` (paths as `./...`).
fn forge(t: &TestHome, archive: &std::path::Path, file: &str) -> std::path::PathBuf {
    let staging = tempfile::tempdir_in(t.dir()).unwrap();
    let forged = staging.path().with_extension("tar.gz");
    let tar = |args: &[&str]| {
        assert!(std::process::Command::new("tar")
            .args(args)
            .status()
            .unwrap()
            .success())
    };
    let dir = staging.path().to_str().unwrap();
    tar(&["-xzf", archive.to_str().unwrap(), "-C", dir]);
    let added = staging.path().join(file);
    std::fs::create_dir_all(added.parent().unwrap()).unwrap();
    std::fs::write(&added, "x").unwrap();
    tar(&["-czf", forged.to_str().unwrap(), "-C", dir, "."]);
    forged
}
