#!/usr/bin/env bash
# The layer-cake quickstart: builds the workspace, runs a composite through the CLI as a user
# would (a home with the multihosting server and eight workers, the server started after
# them: start until every role is ready, a request answered,
# status, the live tree, a worker killed and replaced with no failed request, stop), then
# shows nearest-scope matching live:
#
#   host-cake ─┬─ publisher "demo:svc" at HOST scope
#              └─ group-cake ─┬─ publisher "demo:svc" at GROUP scope
#                             └─ subscriber "demo:.*"  (HOST scope)
#
# The subscriber attaches to the nearest publisher (GROUP), falls back to the HOST one when the
# GROUP publisher is killed with SIGKILL, and upgrades back when a GROUP publisher returns.
# Every daemon listens on a free loopback port (so nothing clashes with a host-cake you may
# already run); every process started here is stopped at the end, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --bins --quiet
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE TEXT: wait (at most 15 s) until FILE has a line containing TEXT; print it.
wait_for() {
    for _ in $(seq 150); do
        if line=$(grep -m1 -F -- "$2" "$1" 2>/dev/null); then
            echo "$line"
            return 0
        fi
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

# The n-th line of FILE that contains TEXT (waiting for it).
wait_for_nth() {
    for _ in $(seq 150); do
        if line=$(grep -F -- "$2" "$1" 2>/dev/null | sed -n "$3p") && [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        sleep 0.1
    done
    echo "timed out waiting for line $3 with '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

export LC_DEBUG_LEVEL=warn
# (No LAN parent: this demo stays on loopback and never looks for a lan-cake.)
"$bin/host-cake" --listen 127.0.0.1:0 --connect-to-directory 127.0.0.1:1 >"$work/host" 2>"$work/host.log" & pids+=($!)
host=$(wait_for "$work/host" listening | cut -d' ' -f2)
"$bin/group-cake" --listen 127.0.0.1:0 --connect-to-directory "$host" >"$work/group" 2>"$work/group.log" & pids+=($!)
group=$(wait_for "$work/group" listening | cut -d' ' -f2)
echo "host-cake at $host, group-cake at $group"

# get PORT PATH: an HTTP GET on loopback (bash's /dev/tcp: nothing to install); prints the
# status code, then the body on the next line.
get() {
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    local reply
    reply=$(cat <&3)
    exec 3<&-
    printf '%s\n%s\n' "$(head -1 <<<"$reply" | cut -d' ' -f2)" "$(tail -1 <<<"$reply")"
}

lc() { "$bin/layer-cake" --home-path "$work/home" "$@"; }
echo; echo "1. A composite, made as a user makes one: the multihosting server and eight workers"
lc create --directory-at-host "$host" --retry '{"min": 0, "max": 0.1}' | sed 's/^/  $ layer-cake create: /'
# The server starts once a worker has published, and every worker is ready once it has.
workers='test-multihosting:worker-10:.*'
lc add "$bin/multihosting-server" server --after "$workers" -- --listen 127.0.0.1:0 | sed 's/^/  $ layer-cake add: /'
lc add "$bin/multihosting-worker" worker --role-count=8 --ready-when-published "$workers" | tail -1 | sed 's/^/  $ layer-cake add: ... /'
lc start --wait | sed 's/^/  $ layer-cake start --wait: /'
for _ in $(seq 150); do
    port=$(lc log server --count 1000 | grep -m1 -o ' listening 127.0.0.1:[0-9]*' | cut -d: -f2) && [ -n "$port" ] && break
    sleep 0.1
done
for _ in $(seq 150); do [ "$(get "$port" '/Xy?x=2&y=2' | head -1)" = 200 ] && break; sleep 0.1; done
echo "  GET /Xy?x=2&y=2 -> $(get "$port" '/Xy?x=2&y=2' | tail -1)"
lc status | sed 's/^/  $ layer-cake status: /' | head -4; echo "  ..."
lc network | sed 's/^/  $ layer-cake network: /' | head -5; echo "  ..."

echo; echo "2. SIGKILL a worker: requests go on being answered, and it is replaced:"
victim=$(lc status --json | tr -d ' \n' | grep -o '"role":"worker-3","state":"running","pid":[0-9]*' | grep -o '[0-9]*$')
kill -9 "$victim"
failed=0
for _ in $(seq 100); do [ "$(get "$port" '/Xy?x=1&y=1' | head -1)" = 200 ] || failed=$((failed + 1)); done
for _ in $(seq 150); do
    now=$(lc status --json | tr -d ' \n' | grep -o '"role":"worker-3","state":"running","pid":[0-9]*' | grep -o '[0-9]*$' || true)
    [ -n "$now" ] && [ "$now" != "$victim" ] && break
    sleep 0.1
done
echo "  worker-3: pid $victim killed, now pid $now; 100 requests after the kill, $failed failed"
lc stop | sed 's/^/  $ layer-cake stop: /'
[ "$failed" -eq 0 ] || { echo "a request failed" >&2; exit 1; }

LC_DIRECTORY=$host "$bin/publisher" --name demo:svc --scope HOST >"$work/hpub" 2>>"$work/procs.log" & pids+=($!)
wait_for "$work/hpub" published | sed 's/^/  host publisher  | /'
LC_DIRECTORY=$group "$bin/publisher" --name demo:svc --scope GROUP >"$work/gpub" 2>>"$work/procs.log" & gpub=$!; pids+=($gpub)
wait_for "$work/gpub" published | sed 's/^/  group publisher | /'
LC_DIRECTORY=$group "$bin/subscriber" --search 'demo:.*' --scope HOST >"$work/sub" 2>>"$work/procs.log" & pids+=($!)

echo; echo "3. The subscriber attaches to the nearest publisher (GROUP):"
wait_for "$work/sub" "available demo:svc GROUP" | sed 's/^/  subscriber | /'
wait_for "$work/sub" "reply demo:svc" | sed 's/^/  subscriber | /'

echo; echo "4. SIGKILL the GROUP publisher: the subscriber falls back to HOST at once:"
kill -9 "$gpub"
wait "$gpub" 2>/dev/null || true
wait_for "$work/sub" "dropped demo:svc GROUP" | sed 's/^/  subscriber | /'
wait_for "$work/sub" "available demo:svc HOST" | sed 's/^/  subscriber | /'

echo; echo "5. A GROUP publisher returns: the subscriber upgrades back to it:"
LC_DIRECTORY=$group "$bin/publisher" --name demo:svc --scope GROUP >"$work/gpub2" 2>>"$work/procs.log" & pids+=($!)
wait_for "$work/sub" "dropped demo:svc HOST" | sed 's/^/  subscriber | /'
wait_for_nth "$work/sub" "available demo:svc GROUP" 2 | sed 's/^/  subscriber | /'

echo; echo "Done: nearest first, fallback, upgrade. No process named another: each was told only which"
echo "directory to join (LC_DIRECTORY, needed here only because these daemons use free ports)."
