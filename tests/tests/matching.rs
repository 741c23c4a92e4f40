//! End-to-end matching: real host-cake, group-cake, publisher and subscriber processes on
//! loopback, driven and observed through what they print.

use layer_cake_tests::{field, publisher, subscriber, Daemon};

#[tokio::test]
async fn exact_and_regex_searches_match_whole_names() {
    let host = Daemon::host_cake().await;
    let dir = host.env();
    let mut w1 = publisher("w1", &dir, "worker-10:ab12", "HOST");
    let mut w2 = publisher("w2", &dir, "worker-10:cd-34", "HOST");
    let mut x = publisher("x", &dir, "xworker-10:ab", "HOST");
    for p in [&mut w1, &mut w2, &mut x] {
        p.expect(&["published", "active"]).await;
    }
    let mut regex = subscriber("regex", &dir, "worker-10:[-a-f0-9]+", "HOST");
    let mut exact = subscriber("exact", &dir, "worker-10:ab12", "HOST");
    let name_of = |line: String| line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut names = vec![
        name_of(regex.expect(&["available"]).await),
        name_of(regex.expect(&["available"]).await),
    ];
    names.sort();
    assert_eq!(names, ["worker-10:ab12", "worker-10:cd-34"]);
    let replies = [regex.expect(&["reply"]).await, regex.expect(&["reply"]).await];
    assert!(replies.iter().all(|r| r.contains("seq=")));
    let line = exact.expect(&["available"]).await;
    assert!(line.starts_with("available worker-10:ab12 HOST"), "{line}");
    exact.expect(&["reply worker-10:ab12"]).await;

    // A later match is a synchronisation point: everything routed before it has arrived.
    let mut w3 = publisher("w3", &dir, "worker-10:ef56", "HOST");
    w3.expect(&["published"]).await;
    regex.expect(&["available worker-10:ef56"]).await;
    let all = regex.all_lines();
    assert!(
        !all.iter().any(|l| l.contains("xworker")),
        "a partial match attached: {all:#?}"
    );
    assert_eq!(
        all.iter().filter(|l| l.starts_with("available")).count(),
        3,
        "{all:#?}"
    );
}

#[tokio::test]
async fn duplicate_publisher_is_told_it_is_a_standby_and_takes_over() {
    let host = Daemon::host_cake().await;
    let dir = host.env();
    let mut first = publisher("first", &dir, "svc", "HOST");
    let line = first.expect(&["published svc HOST"]).await;
    assert!(line.contains("active"), "{line}");
    let first_id = field(&line, "id").to_string();
    let mut second = publisher("second", &dir, "svc", "HOST");
    let line = second.expect(&["published svc HOST"]).await;
    assert!(line.contains(&format!("standby holder={first_id}")), "{line}");
    let second_id = field(&line, "id").to_string();

    let mut sub = subscriber("sub", &dir, "svc", "HOST");
    let line = sub.expect(&["available svc HOST"]).await;
    assert_eq!(field(&line, "publisher"), first_id);
    sub.expect(&["reply svc"]).await;

    first.kill9().await;
    let line = sub.expect(&["dropped svc"]).await;
    assert_eq!(field(&line, "publisher"), first_id);
    let line = sub.expect(&["available svc HOST"]).await;
    assert_eq!(field(&line, "publisher"), second_id, "the standby took over");
    sub.expect(&["reply svc"]).await;
    second.expect(&["status svc at=HOST active"]).await;
}

#[tokio::test]
async fn group_beats_host_falls_back_on_sigkill_and_upgrades_when_it_returns() {
    let host = Daemon::host_cake().await;
    let group = Daemon::group_cake(host.addr).await;
    let mut host_pub = publisher("host-pub", &host.env(), "svc", "HOST");
    let host_id = field(&host_pub.expect(&["published", "active"]).await, "id").to_string();
    let mut group_pub = publisher("group-pub", &group.env(), "svc", "GROUP");
    let group_id = field(&group_pub.expect(&["published", "active"]).await, "id").to_string();

    // A HOST-scope subscriber inside the group sees both; the GROUP one is nearer.
    let mut sub = subscriber("sub", &group.env(), "svc", "HOST");
    let line = sub.expect(&["available svc"]).await;
    assert!(line.starts_with("available svc GROUP"), "{line}");
    assert_eq!(field(&line, "publisher"), group_id);

    // Fallback: the GROUP publisher is killed; the HOST one takes over at once.
    group_pub.kill9().await;
    let line = sub.expect(&["dropped svc"]).await;
    assert!(line.starts_with("dropped svc GROUP"), "{line}");
    let line = sub.expect(&["available svc"]).await;
    assert!(line.starts_with("available svc HOST"), "{line}");
    assert_eq!(field(&line, "publisher"), host_id);
    sub.expect(&["reply svc"]).await;

    // Upgrade: a GROUP publisher comes back; the session moves to it.
    let mut group_pub2 = publisher("group-pub2", &group.env(), "svc", "GROUP");
    let group2_id = field(&group_pub2.expect(&["published", "active"]).await, "id").to_string();
    let line = sub.expect(&["dropped svc"]).await;
    assert!(line.starts_with("dropped svc HOST"), "{line}");
    assert!(line.contains("upgrade"), "{line}");
    let line = sub.expect(&["available svc"]).await;
    assert!(line.starts_with("available svc GROUP"), "{line}");
    assert_eq!(field(&line, "publisher"), group2_id);
    sub.expect(&["reply svc"]).await;

    // A wider instance recovering changes nothing: replace the HOST publisher.
    host_pub.kill9().await;
    let mut host_pub2 = publisher("host-pub2", &host.env(), "svc", "HOST");
    let host2_id = field(&host_pub2.expect(&["published", "active"]).await, "id").to_string();
    // Another subscriber finding it shows host-cake has routed it (to everyone) by now.
    let mut witness = subscriber("witness", &host.env(), "svc", "HOST");
    witness.expect(&["available svc HOST"]).await;
    // Then the only way the group subscriber moves is when its GROUP publisher goes.
    group_pub2.kill9().await;
    let line = sub.expect(&["dropped svc"]).await;
    assert!(
        line.starts_with("dropped svc GROUP"),
        "the HOST recovery disturbed the session: {line}"
    );
    let line = sub.expect(&["available svc HOST"]).await;
    assert_eq!(field(&line, "publisher"), host2_id);
}

#[tokio::test]
async fn host_cake_killed_and_restarted_every_listing_reattaches_and_sessions_survive() {
    let host = Daemon::host_cake().await;
    let addr = host.addr;
    let dir = host.env();
    let mut p1 = publisher("p1", &dir, "alpha:1", "HOST");
    p1.expect(&["published", "active"]).await;
    let mut sub = subscriber("sub", &dir, "alpha:[0-9]+", "HOST");
    sub.expect(&["available alpha:1"]).await;
    sub.expect(&["reply alpha:1"]).await;

    host.proc.kill9().await;
    let restarted = Daemon::host_cake_at(addr).await;

    // The subscription was re-registered: a new publisher is found.
    let mut p2 = publisher("p2", &restarted.env(), "alpha:2", "HOST");
    p2.expect(&["published", "active"]).await;
    sub.expect(&["available alpha:2"]).await;
    // The publication was re-registered: a new subscriber finds it.
    let mut sub2 = subscriber("sub2", &restarted.env(), "alpha:1", "HOST");
    sub2.expect(&["available alpha:1"]).await;
    sub2.expect(&["reply alpha:1"]).await;
    // The session made before the restart was never dropped.
    let all = sub.all_lines();
    assert!(
        !all.iter().any(|l| l.starts_with("dropped")),
        "a live session was dropped: {all:#?}"
    );
    assert_eq!(
        all.iter().filter(|l| l.starts_with("available alpha:1")).count(),
        1,
        "{all:#?}"
    );
}

#[tokio::test]
async fn group_cake_restart_does_not_drop_live_sessions() {
    let host = Daemon::host_cake().await;
    let group = Daemon::group_cake(host.addr).await;
    let mut p = publisher("p", &group.env(), "beta", "GROUP");
    p.expect(&["published", "active"]).await;
    let mut sub = subscriber("sub", &group.env(), "beta", "GROUP");
    sub.expect(&["available beta GROUP"]).await;
    let group_addr = group.addr;
    group.proc.kill9().await;
    let group2 = Daemon::start("group-cake", &["--listen", &group_addr.to_string()]).await;
    // Both re-register with the restarted group-cake; a second subscriber there finds the publisher.
    let mut sub2 = subscriber("sub2", &group2.env(), "beta", "GROUP");
    sub2.expect(&["available beta GROUP"]).await;
    p.expect(&["delivered beta"]).await;
    p.expect(&["delivered beta"]).await;
    let all = sub.all_lines();
    assert!(!all.iter().any(|l| l.starts_with("dropped")), "{all:#?}");
}

#[tokio::test]
async fn group_cake_contacts_its_parent_only_when_a_listing_reaches_past_the_group() {
    use tokio::io::AsyncReadExt;
    // A stand-in parent that only records who connects.
    let parent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let group = Daemon::group_cake(parent.local_addr().unwrap()).await;
    let mut p = publisher("p", &group.env(), "inner", "GROUP");
    p.expect(&["published", "active"]).await;
    let mut sub = subscriber("sub", &group.env(), "inner", "GROUP");
    sub.expect(&["reply inner"]).await;
    let early = tokio::time::timeout(std::time::Duration::ZERO, parent.accept()).await;
    assert!(
        early.is_err(),
        "group-cake connected upward with only GROUP listings"
    );

    let mut wide = publisher("wide", &group.env(), "outer", "HOST");
    let (mut stream, _) = tokio::time::timeout(layer_cake_tests::WAIT, parent.accept())
        .await
        .expect("group-cake connects upward once a HOST listing arrives")
        .unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).await.unwrap();
    let hello: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(hello["Hello"]["kind"], "directory");
    assert_eq!(hello["Hello"]["scope"], "GROUP");
    assert_eq!(hello["Hello"]["name"], "group-cake");
    drop(wide.expect(&["published"]).await);
}

#[tokio::test]
async fn matching_inside_a_group_carries_on_while_host_cake_is_gone() {
    let host = Daemon::host_cake().await;
    let group = Daemon::group_cake(host.addr).await;
    // Something at HOST scope, so group-cake has connected upward.
    let mut wide = publisher("wide", &group.env(), "wide", "HOST");
    wide.expect(&["published wide HOST at=GROUP"]).await;
    host.proc.kill9().await;
    let mut p = publisher("p", &group.env(), "local", "GROUP");
    p.expect(&["published", "active"]).await;
    let mut sub = subscriber("sub", &group.env(), "local|wide", "HOST");
    sub.expect(&["available local GROUP"]).await;
    sub.expect(&["reply local"]).await;
    // The HOST-scope publication inside the group is matched at GROUP level too.
    sub.expect(&["available wide GROUP"]).await;
}
