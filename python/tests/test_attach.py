"""The attachment rules on their own (no sockets): nearest first, upgrade, fallback, a failed
publisher skipped until its route comes again or a retry, and cleared routes."""

from layer_cake_client import attach
from layer_cake_client.scope import Scope


def pub(ident: str, process: str = "") -> dict:
    return {"id": ident, "name": "svc", "scope": "HOST", "process": process or f"proc-{ident}", "addr": "127.0.0.1:1"}


def kinds(out):
    """Each action's kind and its publication (a Close names the publisher's process)."""
    return [
        (type(a).__name__, a.process.removeprefix("proc-") if isinstance(a, attach.Close) else a.publisher["id"])
        for a in out
    ]


def test_the_nearest_route_is_opened_a_nearer_one_upgrades_and_a_wider_one_changes_nothing():
    a = attach.Attachments()
    out = []
    a.route("sub", Scope.HOST, pub("far"), out)
    assert kinds(out) == [("Open", "far")]
    a.opened(out[0].session, out := [])
    assert kinds(out) == [("Available", "far")]
    a.route("sub", Scope.LAN, pub("wider"), out := [])
    assert out == []
    a.route("sub", Scope.GROUP, pub("near"), out := [])
    assert kinds(out) == [("Close", "far"), ("Dropped", "far"), ("Open", "near")]
    assert out[1].reason == "upgrade to a nearer publisher"


def test_a_session_that_ends_falls_back_and_skips_the_failed_publisher_until_a_retry():
    a = attach.Attachments()
    a.route("sub", Scope.GROUP, pub("near"), out := [])
    near = out[0].session
    a.route("sub", Scope.HOST, pub("far"), out := [])
    a.opened(near, out := [])
    a.ended(near, "connection lost", out := [])
    assert kinds(out) == [("Dropped", "near"), ("Open", "far")]
    far = out[1].session
    a.ended(far, "refused", out := [])  # never opened: no Dropped, and nothing left to try
    assert out == [] and a.has_idle()
    a.retry(out := [])
    assert kinds(out) == [("Open", "near")]


def test_a_cleared_route_leaves_a_live_session_and_unsubscribe_closes_it():
    a = attach.Attachments()
    a.route("sub", Scope.HOST, pub("p"), out := [])
    a.opened(out[0].session, [])
    a.route_cleared("sub", Scope.HOST, "p", "svc")
    assert [s["open"] for s in a.describe()] == [True]
    a.unsubscribe("sub", out := [])
    assert kinds(out) == [("Close", "p")] and a.describe() == []
