//! LAN scope across hosts, in the namespace lab (`tests/lab/lab.sh`): lan-cake at the
//! standard 10.0.0.195, a host-cake on each other host, and no address configured anywhere.
//! Where the lab cannot be built (not root, no `ip netns`), each test is reported as ignored,
//! with that reason; where it can, a lab that then fails to build fails the test.

use layer_cake_tests::field;
use layer_cake_tests::lab::Lab;

/// `layer-cake network` on a host shows the LAN directory above the host's, with nothing
/// configured: host-cake at its default address, lan-cake at the standard .195.
#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn network_shows_the_lan_directory_above_the_host() {
    let lab = Lab::new(2).expect("the lab builds where the build found it possible");
    let _directories = lab.directories(None).await;
    // host-cake goes up to the LAN directory once something registers at LAN scope.
    let mut publisher = lab.publisher(1, "publisher@h1", "lab:svc", "LAN", &[]);
    publisher.expect(&["published lab:svc LAN"]).await;
    let folder = tempfile::tempdir().expect("a folder with no home");
    let out = lab.run(1, folder.path(), "layer-cake", &["network", "--long-listing"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\([0-9a-f]{8}\)", "([ID])");
    settings.add_filter(r":\d+\b", ":[PORT]");
    settings.bind(|| insta::assert_snapshot!("network_in_the_lab", tree));
    // The LAN directory answers pings too: through host-cake, across the lab's link.
    let lan_id = &tree[tree.find('(').unwrap() + 1..tree.find(')').unwrap()];
    let out = lab.run(
        1,
        folder.path(),
        "layer-cake",
        &["ping", lan_id, "-c", "2", "--interval-ms", "1"],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with(&format!("PING [LAN] lan-cake ({lan_id}) via host-cake (")),
        "{said}"
    );
    assert!(said.contains("--- 2 sent, 2 answered"), "{said}");
    // Straight to lan-cake, across hosts, with pings further apart than it waits on a silent
    // child: the client's heartbeats keep the link (it was dropped after 3 s before).
    let out = lab.run(
        1,
        folder.path(),
        "layer-cake",
        &[
            "ping",
            lan_id,
            "--directory",
            "10.0.0.195:54195",
            "-c",
            "2",
            "--interval-ms",
            "3500",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("--- 2 sent, 2 answered"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn a_publisher_and_a_subscriber_on_two_hosts_find_each_other_at_lan_scope() {
    let lab = Lab::new(3).expect("the lab builds where the build found it possible");
    let _directories = lab.directories(None).await;
    let mut publisher = lab.publisher(1, "publisher@h1", "lab:svc", "LAN", &[]);
    publisher.expect(&["published lab:svc LAN"]).await;
    let mut subscriber = lab.subscriber(2, "subscriber@h2", "lab:.*", "LAN", &[]);
    let available = subscriber.expect(&["available lab:svc LAN"]).await;
    // The session goes straight to the publisher's host, at the address it is reached by.
    assert!(field(&available, "addr").starts_with("10.0.0.1:"), "{available}");
    subscriber.expect(&["reply lab:svc seq=1"]).await;
    publisher.expect(&["delivered lab:svc LAN"]).await;
}

/// GROUP → HOST → LAN and back: the nearest publisher always wins, the subscriber falls back
/// one level at a time as they go and upgrades as they return.
#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn fallback_and_upgrade_across_group_host_and_lan() {
    let lab = Lab::new(3).expect("the lab builds where the build found it possible");
    let _directories = lab.directories(None).await;
    let mut far = lab.publisher(1, "lan-publisher@h1", "lab:svc", "LAN", &[]);
    far.expect(&["published lab:svc LAN"]).await;
    // A composite on h2: its group-cake under h2's host-cake, a LAN subscriber in it.
    let mut group = lab.spawn(2, "group-cake@h2", "group-cake", &["--listen", "127.0.0.1:0"]);
    let listening = group.expect(&["listening "]).await;
    let group_addr = listening.trim_start_matches("listening ").trim().to_string();
    let group_publisher = || {
        lab.spawn(
            2,
            "group-publisher@h2",
            "publisher",
            &[
                "--name",
                "lab:svc",
                "--scope",
                "GROUP",
                "--directory",
                &group_addr,
            ],
        )
    };
    let host_publisher = || lab.publisher(2, "host-publisher@h2", "lab:svc", "HOST", &[]);
    let mut near = group_publisher();
    near.expect(&["published lab:svc GROUP"]).await;
    let mut mid = host_publisher();
    mid.expect(&["published lab:svc HOST"]).await;
    let mut subscriber = lab.spawn(
        2,
        "subscriber@h2",
        "subscriber",
        &[
            "--search",
            "lab:svc",
            "--scope",
            "LAN",
            "--directory",
            &group_addr,
        ],
    );
    let first = subscriber.expect(&["available lab:svc"]).await;
    assert!(
        first.starts_with("available lab:svc GROUP"),
        "nearest first: {first}"
    );

    near.kill9().await;
    subscriber.expect(&["dropped lab:svc GROUP"]).await;
    let host = subscriber.expect(&["available lab:svc"]).await;
    assert!(host.starts_with("available lab:svc HOST"), "{host}");
    mid.kill9().await;
    subscriber.expect(&["dropped lab:svc HOST"]).await;
    let lan = subscriber.expect(&["available lab:svc"]).await;
    assert!(lan.starts_with("available lab:svc LAN"), "{lan}");
    assert!(field(&lan, "addr").starts_with("10.0.0.1:"), "{lan}");
    subscriber.expect(&["reply lab:svc seq=3"]).await;

    // Back up: HOST, then GROUP.
    let mut mid = host_publisher();
    mid.expect(&["published lab:svc HOST"]).await;
    subscriber.expect(&["dropped lab:svc LAN", "upgrade"]).await;
    let host = subscriber.expect(&["available lab:svc"]).await;
    assert!(host.starts_with("available lab:svc HOST"), "{host}");
    let mut near = group_publisher();
    near.expect(&["published lab:svc GROUP"]).await;
    subscriber.expect(&["dropped lab:svc HOST", "upgrade"]).await;
    let group_again = subscriber.expect(&["available lab:svc"]).await;
    assert!(
        group_again.starts_with("available lab:svc GROUP"),
        "{group_again}"
    );
    subscriber.expect(&["reply lab:svc seq=5"]).await;
}

#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn lan_cake_killed_and_restarted_gets_every_listing_back_and_sessions_carry_on() {
    let lab = Lab::new(3).expect("the lab builds where the build found it possible");
    let mut directories = lab.directories(None).await;
    let mut publisher = lab.publisher(1, "publisher@h1", "lab:svc", "LAN", &[]);
    publisher.expect(&["published lab:svc LAN"]).await;
    let mut before = lab.subscriber(2, "subscriber@h2", "lab:.*", "LAN", &[]);
    before.expect(&["reply lab:svc seq=1"]).await;

    directories.remove(0).kill9().await;
    let mut lan = lab.spawn(0, "lan-cake (again)", "lan-cake", &[]);
    lan.expect(&["listening 0.0.0.0:54195"]).await;
    // The host-cakes reconnect by themselves and register everything again: a subscriber
    // that comes only now finds the publisher on the other host.
    let mut after = lab.subscriber(2, "late-subscriber@h2", "lab:.*", "LAN", &[]);
    let available = after.expect(&["available lab:svc LAN"]).await;
    assert!(field(&available, "addr").starts_with("10.0.0.1:"), "{available}");
    after.expect(&["reply lab:svc"]).await;
    // The first subscriber's session never ended.
    assert!(
        !before.all_lines().iter().any(|l| l.starts_with("dropped")),
        "{:#?}",
        before.seen
    );
}

#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn a_host_whose_link_goes_down_is_dropped_and_comes_back_with_it() {
    let lab = Lab::new(3).expect("the lab builds where the build found it possible");
    let _directories = lab.directories(None).await;
    let mut publisher = lab.publisher(1, "publisher@h1", "lab:svc", "LAN", &[]);
    publisher.expect(&["published lab:svc LAN"]).await;
    let mut subscriber = lab.subscriber(2, "subscriber@h2", "lab:.*", "LAN", &[]);
    subscriber.expect(&["reply lab:svc seq=1"]).await;

    // h1 vanishes without a word: its link goes down, its sockets stay open.
    lab.ip(1, &["link", "set", "eth0", "down"]);
    let down = std::time::Instant::now();
    let dropped = subscriber.expect(&["dropped lab:svc LAN"]).await;
    eprintln!(
        "h1's name dropped on h2 {:?} after its link went down: {dropped}",
        down.elapsed()
    );
    assert!(dropped.contains("heartbeat"), "{dropped}");

    // It comes back: the name is found again and answers.
    lab.ip(1, &["link", "set", "eth0", "up"]);
    let available = subscriber.expect(&["available lab:svc LAN"]).await;
    assert!(field(&available, "addr").starts_with("10.0.0.1:"), "{available}");
    subscriber.expect(&["reply lab:svc seq=2"]).await;
}

#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn lan_cake_refuses_a_host_that_runs_host_cake_and_says_why() {
    let lab = Lab::new(2).expect("the lab builds where the build found it possible");
    let _directories = lab.directories(None).await; // host-cake on h1
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.netns(1)])
        .arg(layer_cake_tests::bin("lan-cake"))
        .output()
        .expect("lan-cake runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot listen on 0.0.0.0:54195")
            && stderr.contains("one host runs either host-cake or lan-cake, not both"),
        "{stderr}"
    );
}

/// An encrypted LAN: lan-cake and the host-cakes of h1 and h2 hold the secret; h3's does not.
/// A LAN publisher on h1 and a subscriber on h2 (both given the secret) find each other and talk
/// across hosts, encrypted. A subscriber on h2 without the secret gets the route from its
/// host-cake but is refused by the publisher at the handshake; h3 is refused by lan-cake and
/// sees nothing of the LAN.
#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn an_encrypted_lan_talks_to_holders_of_the_secret_only() {
    let lab = Lab::new(4).expect("the lab builds where the build found it possible");
    let folder = tempfile::tempdir().unwrap();
    let key = folder.path().join("lan.key");
    layer_cake::secure::Secret::create_file(&key).unwrap();
    let key = key.to_str().unwrap();
    let with_key = [("LC_SECRET_FILE", key)];
    // Every host of the lab holds the secret, but h3's host-cake is restarted without it.
    let mut directories = lab.directories(Some(key)).await;
    directories.pop().expect("h3's host-cake").kill9().await;
    let mut keyless_host = lab.spawn(3, "host-cake@h3", "host-cake", &[]);
    keyless_host.expect(&["listening 127.0.0.1:54195"]).await;

    let mut publisher = lab.publisher(1, "publisher@h1", "lab:secret", "LAN", &with_key);
    publisher.expect(&["published lab:secret LAN"]).await;
    let subscribe = |k, label, envs| lab.subscriber(k, label, "lab:.*", "LAN", envs);
    let mut outsider = subscribe(3, "subscriber@h3", &[]);
    outsider.expect(&["subscribed"]).await;
    let mut keyless = subscribe(2, "keyless-subscriber@h2", &[]);
    keyless.expect(&["subscribed"]).await;
    let mut keyed = subscribe(2, "subscriber@h2", &with_key);
    let available = keyed.expect(&["available lab:secret LAN"]).await;
    assert!(field(&available, "addr").starts_with("10.0.0.1:"), "{available}");
    keyed.expect(&["reply lab:secret seq=1"]).await;

    // The others registered first: their attempts have been made, and refused.
    let folder_h3 = tempfile::tempdir().unwrap();
    let out = lab.run(3, folder_h3.path(), "layer-cake", &["network"]);
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.starts_with("[HOST] host-cake"),
        "h3 should not be under lan-cake:\n{tree}"
    );
    let out = lab.run(2, folder_h3.path(), "layer-cake", &["network"]);
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.starts_with("[LAN] lan-cake"),
        "h2 should be under lan-cake:\n{tree}"
    );
    for (who, p) in [
        ("h3", &mut outsider),
        ("the keyless subscriber on h2", &mut keyless),
    ] {
        let lines = p.all_lines();
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("available") || l.starts_with("reply")),
            "{who} reached the encrypted publisher: {lines:#?}"
        );
    }
}

/// A HOST directory bound on every interface (host-cake refuses to be; a library user might)
/// still serves its own host only: a connection from another host is closed before any
/// greeting, while one over loopback is served.
#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn a_host_directory_turns_away_other_hosts_even_when_bound_on_every_interface() {
    let lab = Lab::new(3).expect("the lab builds where the build found it possible");
    let mut exposed = lab.spawn(1, "exposed-directory@h1", "exposed-directory", &[]);
    let line = exposed.expect(&["listening 0.0.0.0:"]).await;
    let port = line.rsplit(':').next().unwrap().trim().to_string();
    let folder = tempfile::tempdir().unwrap();
    let from_h2 = lab.run(
        2,
        folder.path(),
        "layer-cake",
        &["network", "--directory", &format!("10.0.0.1:{port}")],
    );
    let err = String::from_utf8_lossy(&from_h2.stderr);
    assert!(
        !from_h2.status.success(),
        "served another host: {}",
        String::from_utf8_lossy(&from_h2.stdout)
    );
    assert!(err.contains("no directory answers at 10.0.0.1"), "{err}");
    let from_h1 = lab.run(
        1,
        folder.path(),
        "layer-cake",
        &["network", "--directory", &format!("127.0.0.1:{port}")],
    );
    assert!(
        from_h1.status.success(),
        "{}",
        String::from_utf8_lossy(&from_h1.stderr)
    );
    assert!(String::from_utf8_lossy(&from_h1.stdout).starts_with("[HOST] exposed-directory"));
}

/// A process on lan-cake's own host (it joins lan-cake over loopback: that host has no
/// host-cake) publishes at LAN scope; a subscriber on another host reaches it at the host's
/// LAN address, not at its own loopback.
#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn a_publisher_on_the_lan_directorys_own_host_is_reached_from_others() {
    let lab = Lab::new(2).expect("the lab builds where the build found it possible");
    let _directories = lab.directories(None).await;
    let mut publisher = lab.publisher(
        0,
        "publisher@h0",
        "lab:at-195",
        "LAN",
        &[("LC_DIRECTORY", "127.0.0.1:54195")],
    );
    publisher.expect(&["published lab:at-195 LAN"]).await;
    let mut subscriber = lab.subscriber(1, "subscriber@h1", "lab:.*", "LAN", &[]);
    let available = subscriber.expect(&["available lab:at-195 LAN"]).await;
    assert!(
        field(&available, "addr").starts_with("10.0.0.195:"),
        "{available}"
    );
    subscriber.expect(&["reply lab:at-195 seq=1"]).await;
}

/// A composite made with `create --directory-at-lan ADDR --secret-file FILE` joins an encrypted
/// LAN: group-cake's own link to lan-cake holds the secret, and so do its roles' sessions with
/// other hosts. (group-cake once ignored the secret, and lan-cake refused it.)
#[tokio::test]
#[cfg_attr(
    not(lab),
    ignore = "needs the namespace lab: root and a working `ip netns` (set at build time)"
)]
async fn a_composite_made_for_an_encrypted_lan_joins_it() {
    let lab = Lab::new(3).expect("the lab builds where the build found it possible");
    let folder = tempfile::tempdir().unwrap();
    let key = folder.path().join("lan.key");
    layer_cake::secure::Secret::create_file(&key).unwrap();
    let key = key.to_str().unwrap();
    let _directories = lab.directories(Some(key)).await;
    let here = folder.path().join("composite");
    std::fs::create_dir(&here).unwrap();
    let cli = |args: &[&str]| {
        let out = lab.run(2, &here, "layer-cake", args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(&[
        "create",
        "--directory-at-lan",
        "10.0.0.195:54195",
        "--secret-file",
        key,
    ]);
    let publisher = layer_cake_tests::bin("publisher");
    cli(&[
        "add",
        publisher.to_str().unwrap(),
        "publisher",
        "--",
        "--name",
        "lab:composite",
        "--scope",
        "LAN",
    ]);
    let home = here.join(".layer-cake");
    let mut group = lab.spawn(
        2,
        "group-cake@h2",
        "group-cake",
        &["--home", home.to_str().unwrap()],
    );
    group.expect(&["listening 127.0.0.1:"]).await;
    let mut subscriber = lab.subscriber(
        1,
        "subscriber@h1",
        "lab:composite",
        "LAN",
        &[("LC_SECRET_FILE", key)],
    );
    let available = subscriber.expect(&["available lab:composite LAN"]).await;
    assert!(field(&available, "addr").starts_with("10.0.0.2:"), "{available}");
    subscriber.expect(&["reply lab:composite seq=1"]).await;
    // The encrypted lan-cake can be inspected from another host by a holder of the secret.
    let lan = ["network", "--directory", "10.0.0.195:54195"];
    let out = lab.run(
        1,
        folder.path(),
        "layer-cake",
        &[&lan[..], &["--secret-file", key]].concat(),
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(tree.starts_with("[LAN] lan-cake"), "{tree}");
    assert!(
        tree.contains("group-cake"),
        "the composite is under lan-cake:\n{tree}"
    );
    // Without it, it is refused, plainly.
    let out = lab.run(1, folder.path(), "layer-cake", &lan);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
