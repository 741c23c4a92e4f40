#!/usr/bin/env python3
"""How soon group-cake rejoins a restarted host-cake (loopback only).

    python3 tests/scripts/rejoin.py TARGET_DIR CYCLES UP_SECONDS DOWN_SECONDS
    e.g. cargo build --release --workspace --bins && python3 tests/scripts/rejoin.py target/release 12 2 3

Starts group-cake (its parent a host-cake on 127.0.0.1:47195) with a HOST publisher in it;
then, CYCLES times, starts host-cake there, measures from the moment it prints `listening`
to group-cake's log line `connected to parent directory`, keeps it UP_SECONDS, SIGKILLs it
and waits DOWN_SECONDS. Prints the median and the maximum, in milliseconds. Logs go to
/tmp/rejoin/.
"""
import subprocess, time, re, sys, os, signal, datetime
os.makedirs('/tmp/rejoin', exist_ok=True)
B = sys.argv[1]  # target dir with binaries
port = 47195
def ts(line):
    m = re.match(r'(\S+Z)', line)
    return datetime.datetime.fromisoformat(m.group(1).replace('Z','+00:00')).timestamp() if m else None
glog = open('/tmp/rejoin/group.log','w')
env = dict(os.environ, RUST_LOG='info', NO_COLOR='1')
group = subprocess.Popen([f'{B}/group-cake','--listen','127.0.0.1:0','--connect-to-directory',f'127.0.0.1:{port}'], stdout=subprocess.PIPE, stderr=glog, text=True, env=env)
gaddr = group.stdout.readline().split()[1]
pub = subprocess.Popen([f'{B}/publisher','--name','rejoin:svc','--scope','HOST'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(env, LC_DIRECTORY=gaddr))
gaps = []
for i in range(int(sys.argv[2])):
    hlog = open('/tmp/rejoin/host.log','w')
    host = subprocess.Popen([f'{B}/host-cake','--listen',f'127.0.0.1:{port}','--connect-to-directory','127.0.0.1:9'], stdout=subprocess.PIPE, stderr=hlog, text=True, env=env)
    host.stdout.readline()
    started = time.time()
    # wait for group's "connected to parent" after started
    deadline = started + 10
    seen = None
    while time.time() < deadline and seen is None:
        for line in open('/tmp/rejoin/group.log'):
            if 'connected to parent directory' in line:
                t = ts(line)
                if t and t >= started - 0.002:
                    seen = t
        time.sleep(0.005)
    gaps.append((seen - started) * 1000 if seen else None)
    time.sleep(float(sys.argv[3]))
    host.send_signal(signal.SIGKILL); host.wait()
    time.sleep(float(sys.argv[4]))
pub.kill(); group.kill()
ok = sorted(g for g in gaps if g is not None)
print(f"cycles {len(gaps)}, rejoined {len(ok)}; ms after the new host-cake listened: median {ok[len(ok)//2]:.1f}, max {ok[-1]:.1f}, all {[round(g,1) for g in gaps]}")
