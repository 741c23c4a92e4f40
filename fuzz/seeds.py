#!/usr/bin/env python3
"""Writes the fuzzers' starting inputs (fuzz/corpus/TARGET/seed-*): real frames, as
docs/protocol.md shows them. The fuzzer mutates from there; what it keeps is committed too."""
import json, os, struct

P = "00000000-0000-0000-0000-0000000000%02d"
HELLO = {"magic": "layer-cake", "version": 1, "codec": "json", "kind": "process", "id": P % 1, "scope": "PROCESS", "name": "publisher"}
PUB = {"id": P % 2, "name": "svc", "scope": "HOST", "process": P % 1, "addr": "127.0.0.1:40001"}
SUB = {"id": P % 3, "search": "s.c", "scope": "HOST", "process": P % 4}
ROUTE = {"sub": P % 3, "at": "HOST", "publisher": PUB}
KEY = {"sub": P % 3, "at": "HOST", "publication": P % 2, "name": "svc"}


def frame(msg):
    body = msg if isinstance(msg, bytes) else json.dumps(msg, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


def write(target, name, data):
    d = os.path.join(os.path.dirname(__file__), "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


up = [
    {"Hello": HELLO},
    {"Publish": PUB},
    {"Publish": dict(PUB, id=P % 5, process=P % 6)},
    {"Subscribe": SUB},
    {"Subscribe": dict(SUB, id=P % 7, search="svc")},
    {"Subscribe": dict(SUB, id=P % 8, search="(", scope="LAN")},
    {"Publish": dict(PUB, id=P % 9, scope="GROUP")},
    {"Retract": {"id": P % 2}},
    {"Unsubscribe": {"id": P % 3}},
    "Heartbeat",
    {"Inspect": {"query": 1}},
    {"Ping": {"seq": 2, "target": P % 1}},
    {"Pong": {"seq": 7}},
    {"AskSessions": {"query": 3, "target": P % 4}},
    {"Sessions": {"query": 8, "sessions": []}},
]
write("directory_up", "all", b"".join(frame(m) for m in up))
write("directory_up", "publish-subscribe", frame(up[1]) + frame(up[3]) + frame(up[4]))
write("directory_up", "oversized", struct.pack(">I", 1 << 30) + b"{")

down = [
    {"Hello": dict(HELLO, kind="directory", scope="HOST", name="host-cake", listen="127.0.0.1:54195")},
    {"PubStatus": {"id": P % 2, "at": "HOST", "state": "active"}},
    {"PubStatus": {"id": P % 2, "at": "HOST", "state": {"standby": {"holder": P % 9}}}},
    {"PubStatus": {"id": P % 2, "at": "HOST", "state": {"refused": {"reason": "no"}}}},
    {"SubRefused": {"id": P % 3, "at": "HOST", "reason": "regex parse error"}},
    {"Route": ROUTE},
    {"Route": dict(ROUTE, at="LAN", publisher=dict(PUB, id=P % 5, scope="LAN", addr="0.0.0.0:4000"))},
    {"RouteCleared": KEY},
    "Heartbeat",
    {"Ping": {"seq": 7}},
    {"Pong": {"seq": 2}},
    {"AskSessions": {"query": 8}},
    {"Report": {"query": 1, "report": {"node": {"kind": "directory", "scope": "HOST", "name": "host-cake", "id": P % 9}, "parent_addr": None, "parent": None, "children": []}}},
]
write("directory_down", "all", b"".join(frame(m) for m in down))
write("directory_down", "route-cleared", frame(down[5]) + frame(down[7]) + frame(down[6]))

session = [
    {"Hello": HELLO},
    {"Open": {"session": 1, "publication": P % 2, "name": "svc", "subscription": P % 3, "at": "HOST"}},
    {"Opened": {"session": 1}},
    {"Refused": {"session": 2, "reason": "no publication"}},
    b'{"Data":{"session":1,"corr":7,"type":"Xy","body":{"x":2,"y":2}}}',
    b'{"Data":{"session":1,"reply":7,"type":"Vec<Vec<f64>>","body":[[1.5,2.0]]}}',
    b'{"Data":{"session":1,"type":"Esc\\"aped","body":"\\u00e9"}}',
    {"Close": {"session": 1, "reason": "publication retracted"}},
    "Heartbeat",
]
write("session", "all", b"".join(frame(m) for m in session))
write("session", "data", frame(session[4]))

write("handshake", "process", frame({"Hello": HELLO}))
write("handshake", "hello", frame(HELLO))
write("handshake", "wrong-version", frame(dict(HELLO, version=2)))

write("http_query", "get", b"\x00x=2&y=3")
write("http_query", "get-all", b"\x00x=2&y=3&name=a%20b&scale=1.5e3&exact=true")
write("http_query", "post", b'\x01{"x":2,"y":3,"name":"\\u00e9","scale":-0.0,"exact":false}')
write("http_query", "post-bad", b'\x01{"x":-1}')

# noise: what a stranger sends an encrypted listener (a short message, a plain greeting, noise).
write("noise", "short", b"\x00\x30" + b"0" * 48)
write("noise", "plain-hello", b'\x00\x00\x00\x10{"Hello":{}}....')
write("noise", "random", b"\x00\x30" + bytes(range(48)))
