//! The directory daemon's tests: where it may listen, and its watch of what its children
//! publish, against real connections.

use super::*;
use crate::ids::PubId;
use crate::wire::directory::PubInfo;
use crate::wire::opening::{self, Opened};
use crate::wire::{MessageCodec, PeerKind, MAX_DIRECTORY_FRAME};
use futures_util::{SinkExt, StreamExt};
use tokio_util::codec::Framed;

type Child = Framed<Opened, MessageCodec<Up, Down>>;

/// A child greeting as process `id` of `role`.
async fn child(addr: SocketAddr, id: ProcessId, role: &str) -> Child {
    let hello = Hello::new(PeerKind::Process, id, Scope::Process, "test").with_role(Some(role.into()));
    let (stream, _) = opening::dial(addr, &hello, None, Duration::from_secs(5))
        .await
        .unwrap();
    Framed::new(stream, MessageCodec::new(MAX_DIRECTORY_FRAME))
}

/// Sends `frame`, then waits for the answer to an inspection sent after it: the directory
/// has handled `frame` by then. Returns how many children the directory has.
async fn handled(c: &mut Child, frame: Up) -> usize {
    c.send(frame).await.unwrap();
    c.send(Up::Inspect { query: 7 }).await.unwrap();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .unwrap();
        if let Some(Ok(Down::Report { report, .. })) = next {
            return report.children.len();
        }
    }
}

fn names(published: &watch::Receiver<Published>) -> Vec<(String, Option<String>)> {
    published
        .borrow()
        .iter()
        .map(|l| (l.name.to_string(), l.role.map(str::to_string)))
        .collect()
}

/// A process that reconnects and publishes again before its old connection's end is
/// handled keeps its name listed (the old link's end used to take it away, though the
/// engine kept it); a retract, or the end of the link that holds it, takes it away.
#[tokio::test]
async fn a_publication_moved_to_a_new_link_stays_listed_until_that_link_goes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = DirectoryConfig::new(Scope::Group, "test");
    let (tx, published) = watch::channel(Published::default());
    config.published = Some(tx);
    let shutdown = CancellationToken::new();
    let directory = tokio::spawn(run(listener, config, shutdown.clone()));

    let process = ProcessId::random();
    let info = PubInfo {
        id: PubId::random(),
        name: "db:main".into(),
        scope: Scope::Group,
        process,
        addr: "127.0.0.1:1".parse().unwrap(),
    };
    let mut old = child(addr, process, "db").await;
    handled(&mut old, Up::Publish(info.clone())).await;
    let listed = vec![("db:main".to_string(), Some("db".to_string()))];
    assert_eq!(names(&published), listed);

    // The same process again, on a new connection, before the old one's end is seen.
    let mut new = child(addr, process, "db").await;
    assert_eq!(handled(&mut new, Up::Publish(info.clone())).await, 2);
    drop(old);
    // Once the directory has seen the old link go (one child left), the name stays.
    let mut watcher = child(addr, ProcessId::random(), "watcher").await;
    while handled(&mut watcher, Up::Heartbeat).await != 2 {}
    assert_eq!(
        names(&published),
        listed,
        "the name is still published, on the new link"
    );

    // A retract on a link that does not hold it changes nothing; on the one that does, it goes.
    handled(&mut watcher, Up::Retract { id: info.id }).await;
    assert_eq!(names(&published), listed);
    handled(&mut new, Up::Retract { id: info.id }).await;
    assert!(names(&published).is_empty());

    // The end of the link that holds a publication takes it away.
    handled(&mut new, Up::Publish(info)).await;
    assert_eq!(names(&published), listed);
    drop(new);
    while handled(&mut watcher, Up::Heartbeat).await != 1 {}
    assert!(names(&published).is_empty());
    shutdown.cancel();
    directory.await.unwrap();
}

#[test]
fn group_and_host_directories_listen_on_loopback_only() {
    let at = |s: &str| s.parse::<SocketAddr>().unwrap();
    for scope in [Scope::Group, Scope::Host] {
        assert!(check_listen(scope, at("127.0.0.1:54195")).is_ok());
        assert!(check_listen(scope, at("127.1.2.3:0")).is_ok());
        assert!(check_listen(scope, at("[::1]:0")).is_ok());
        assert_eq!(
            check_listen(scope, at("0.0.0.0:54195")).unwrap_err().to_string(),
            format!("a {scope} directory serves this host only: listen on loopback (127.0.0.1), not 0.0.0.0:54195")
        );
        assert!(check_listen(scope, at("10.0.0.1:54195")).is_err());
        assert!(check_listen(scope, at("[::]:54195")).is_err());
    }
    assert!(check_listen(Scope::Lan, at("0.0.0.0:54195")).is_ok());
}
