#!/usr/bin/env bash
# The multi-host test lab: N hosts as network namespaces on one switch, 10.0.0.0/24.
#
#   lab.sh up LAB N     hosts LAB-h0 .. LAB-h(N-1); LAB-h0 is 10.0.0.195 (the LAN directory's
#                       standard address), LAB-hK is 10.0.0.K; each has loopback and eth0
#   lab.sh down LAB     ends every process inside the lab's namespaces (by PID) and removes them
#   lab.sh addr LAB K   prints host K's address
#
# The switch is a bridge inside a namespace of its own (LAB-sw), joined to each host by a veth
# pair. Nothing is added to the machine's own namespace: it has no address on 10.0.0.0/24 and
# no route to it, so no packet from the lab leaves it and nothing outside reaches in.
# Needs root and iproute2 (`ip netns`).
set -euo pipefail

addr() { # host index -> address
    if [ "$1" -eq 0 ]; then echo 10.0.0.195; else echo "10.0.0.$1"; fi
}

up() {
    local lab=$1 n=$2 sw="$1-sw"
    ip netns add "$sw"
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    ip -n "$sw" link set lo up
    for ((k = 0; k < n; k++)); do
        local host="$lab-h$k"
        ip netns add "$host"
        ip -n "$host" link set lo up
        # Created in the host's namespace, the switch end moved at once to the switch's.
        ip -n "$host" link add eth0 type veth peer name "p$k" netns "$sw"
        ip -n "$host" addr add "$(addr "$k")/24" dev eth0
        ip -n "$host" link set eth0 up
        ip -n "$sw" link set "p$k" master br0
        ip -n "$sw" link set "p$k" up
    done
}

down() {
    local lab=$1 ns pid
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$lab-(h[0-9]+|sw)$" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
}

case "${1:-}" in
up) [ $# -eq 3 ] || { echo "usage: $0 up LAB N" >&2; exit 2; }
    # A half-built lab is taken down again.
    trap 'down "$2"' ERR
    up "$2" "$3" ;;
down) [ $# -eq 2 ] || { echo "usage: $0 down LAB" >&2; exit 2; }
    down "$2" ;;
addr) [ $# -eq 3 ] || { echo "usage: $0 addr LAB K" >&2; exit 2; }
    addr "$3" ;;
*) echo "usage: $0 up LAB N | down LAB | addr LAB K" >&2; exit 2 ;;
esac
