//! LAN scope across hosts, in the namespace lab (`tests/lab/lab.sh`): lan-cake at the
//! standard 10.0.0.195, a host-cake on each other host, and no address configured anywhere.
//! Each test skips, saying why, where the lab cannot be built (not root, no `ip netns`).

use layer_cake_tests::lab::Lab;
use layer_cake_tests::{field, Proc};

/// Starts lan-cake on h0 and a host-cake on every other host, all on their default addresses.
async fn directories(lab: &Lab) -> Vec<Proc> {
    let mut procs = Vec::new();
    let mut lan = lab.spawn(0, "lan-cake", "lan-cake", &[]);
    lan.expect(&["listening 0.0.0.0:54195"]).await;
    procs.push(lan);
    for k in 1..lab.hosts() {
        let mut host = lab.spawn(k, &format!("host-cake@h{k}"), "host-cake", &[]);
        host.expect(&["listening 127.0.0.1:54195"]).await;
        procs.push(host);
    }
    procs
}

#[tokio::test]
async fn a_publisher_and_a_subscriber_on_two_hosts_find_each_other_at_lan_scope() {
    let Some(lab) = Lab::new(3) else { return };
    let _directories = directories(&lab).await;
    let mut publisher = lab.spawn(
        1,
        "publisher@h1",
        "publisher",
        &["--name", "lab:svc", "--scope", "LAN"],
    );
    publisher.expect(&["published lab:svc LAN"]).await;
    let mut subscriber = lab.spawn(
        2,
        "subscriber@h2",
        "subscriber",
        &["--search", "lab:.*", "--scope", "LAN"],
    );
    let available = subscriber.expect(&["available lab:svc LAN"]).await;
    // The session goes straight to the publisher's host, at the address it is reached by.
    assert!(field(&available, "addr").starts_with("10.0.0.1:"), "{available}");
    subscriber.expect(&["reply lab:svc seq=1"]).await;
    publisher.expect(&["delivered lab:svc LAN"]).await;
}

#[tokio::test]
async fn a_group_publisher_wins_over_the_lan_one_and_falls_back_to_it() {
    let Some(lab) = Lab::new(3) else { return };
    let _directories = directories(&lab).await;
    let mut far = lab.spawn(
        1,
        "publisher@h1",
        "publisher",
        &["--name", "lab:svc", "--scope", "LAN"],
    );
    far.expect(&["published lab:svc LAN"]).await;
    // A composite on h2: its group-cake under h2's host-cake, a GROUP publisher and a LAN
    // subscriber in it.
    let mut group = lab.spawn(2, "group-cake@h2", "group-cake", &["--listen", "127.0.0.1:0"]);
    let listening = group.expect(&["listening "]).await;
    let group_addr = listening.trim_start_matches("listening ").trim().to_string();
    let mut near = lab.spawn(
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
    );
    near.expect(&["published lab:svc GROUP"]).await;
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
    let fallback = subscriber.expect(&["available lab:svc"]).await;
    assert!(fallback.starts_with("available lab:svc LAN"), "{fallback}");
    assert!(field(&fallback, "addr").starts_with("10.0.0.1:"), "{fallback}");
    subscriber.expect(&["reply lab:svc seq=2"]).await;
}

#[tokio::test]
async fn lan_cake_killed_and_restarted_gets_every_listing_back_and_sessions_carry_on() {
    let Some(lab) = Lab::new(3) else { return };
    let mut directories = directories(&lab).await;
    let mut publisher = lab.spawn(
        1,
        "publisher@h1",
        "publisher",
        &["--name", "lab:svc", "--scope", "LAN"],
    );
    publisher.expect(&["published lab:svc LAN"]).await;
    let mut before = lab.spawn(
        2,
        "subscriber@h2",
        "subscriber",
        &["--search", "lab:.*", "--scope", "LAN"],
    );
    before.expect(&["reply lab:svc seq=1"]).await;

    directories.remove(0).kill9().await;
    let mut lan = lab.spawn(0, "lan-cake (again)", "lan-cake", &[]);
    lan.expect(&["listening 0.0.0.0:54195"]).await;
    // The host-cakes reconnect by themselves and register everything again: a subscriber
    // that comes only now finds the publisher on the other host.
    let mut after = lab.spawn(
        2,
        "late-subscriber@h2",
        "subscriber",
        &["--search", "lab:.*", "--scope", "LAN"],
    );
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
