#!/usr/bin/env bash
# scaling.sh: how `syncpipe process` scales with threads, beside
# `zstd -3 -T N`, on one input in one run, and what each thread role costs.
#
# Usage:  benches/scaling.sh [DIR]        (DIR default /tmp/syncpipe-bench)
#
# Input: DIR/mixed.bin, SIZE_MB MiB from benches/make_mixed.py (made once,
# reused; the file the other scripts use). Page cache warm: one untimed
# warm-up run per row, then the median of RUNS timed runs; the output goes
# to /dev/null (`-c`), so the rows time the engine, not the disk.
#
# Rows: for each stage list in LISTS (default "zstd:3 lz4 default", where
# "default" passes no -s) and each thread count in TLIST (default 1,2,4,...
# up to nproc, nproc included): `syncpipe process -T N -c`, and
# `zstd -3 -T N -c` once per thread count. Columns: MB/s (input bytes / 1e6
# / median wall seconds), speedup over the same command at -T 1, and
# efficiency (speedup / threads).
#
# Roles: every run is sampled every 10 ms through /proc/PID/task/*/stat
# (utime + stime of each thread, by thread name); the table under the rows
# gives, per stage list at the highest thread count, each role's CPU time
# per input byte: reader (syncpipe-reader), hasher (syncpipe-hasher),
# dispatcher (syncpipe-dispatch, "syncpipe-dispat" in /proc), writer (syncpipe-writer), main (the CLI's
# own thread), and workers (syncpipe-cpu-*, the parallel part). A thread's
# last 10 ms before it exits can be missed: the serial roles are floors.
# From them, the model of docs/performance.md ("Scaling"):
#   ceiling(N) = 1000 / max(busiest serial role ns/B, workers ns/B / N) MB/s
# printed for N = the thread counts run and MODEL_N (default 16).
#
# Env: SIZE_MB=256 RUNS=3 TLIST= LISTS= MODEL_N=16 SYNCPIPE_BIN= (use this
# binary instead of building `cargo build --release -p syncpipe-cli`).
# Needs python3 and zstd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-/tmp/syncpipe-bench}
mkdir -p "$dir"
size_mb=${SIZE_MB:-256}
input="$dir/mixed.bin"
if [[ ! -f $input || $(stat -c %s "$input") -ne $((size_mb << 20)) ]]; then
    python3 "$here/make_mixed.py" $((size_mb << 20)) "$input"
fi
bin=${SYNCPIPE_BIN:-}
if [[ -z $bin ]]; then
    (cd "$here/.." && cargo build --release -q -p syncpipe-cli)
    bin="$here/../target/release/syncpipe"
fi
n=$(nproc)
if [[ -z ${TLIST:-} ]]; then
    TLIST=1
    t=2
    while ((t < n)); do TLIST+=",$t"; t=$((t * 2)); done
    ((n > 1)) && TLIST+=",$n"
fi
echo "# $(date -u +%F) $(uname -m), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# $bin, input $input ($size_mb MiB), runs ${RUNS:-3}"
exec python3 - "$bin" "$input" "$TLIST" "${LISTS:-zstd:3 lz4 default}" "${RUNS:-3}" "${MODEL_N:-16}" <<'PY'
import os, re, statistics, subprocess, sys, time

binary, path, tlist, lists, runs, model_n = sys.argv[1:]
threads = [int(t) for t in tlist.split(',')]
runs, model_n = int(runs), int(model_n)
size = os.path.getsize(path)
tick = os.sysconf('SC_CLK_TCK')

def role(name):
    for prefix, r in (('syncpipe-reader', 'reader'), ('syncpipe-hasher', 'hasher'),
                      ('syncpipe-dispat', 'dispatcher'), ('syncpipe-writer', 'writer'),
                      ('syncpipe-cpu', 'workers'), ('syncpipe-worker', 'workers')):
        if name.startswith(prefix):
            return r
    return 'main' if name == 'syncpipe' else 'other'

def sampled(cmd):
    """Runs cmd (stdout to /dev/null); returns (wall s, {role: cpu s})."""
    seen = {}
    with open(os.devnull, 'wb') as null:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=null)
        while p.poll() is None:
            task = f'/proc/{p.pid}/task'
            try:
                tids = os.listdir(task)
            except OSError:
                tids = []
            for tid in tids:
                try:
                    with open(f'{task}/{tid}/stat') as f:
                        st = f.read()
                except OSError:
                    continue
                name = st[st.index('(') + 1:st.rindex(')')]
                fields = st[st.rindex(')') + 2:].split()
                seen[tid] = (name, (int(fields[11]) + int(fields[12])) / tick)
            time.sleep(0.01)
        wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f'{cmd} exited {p.returncode}')
    roles = {}
    for name, cpu in seen.values():
        roles[role(name)] = roles.get(role(name), 0) + cpu
    return wall, roles

def measure(cmd):
    sampled(cmd)  # warm-up
    results = [sampled(cmd) for _ in range(runs)]
    results.sort(key=lambda r: r[0])
    return results[len(results) // 2]

rows, roles_at = [], {}
for stages in lists.split() + ['zstd -3']:
    base = None
    for t in threads:
        if stages == 'zstd -3':
            cmd = ['zstd', '-q', '-3', f'-T{t}', '-c', path]
        else:
            cmd = [binary, 'process', '-T', str(t), '-c', path]
            if stages != 'default':
                cmd[2:2] = ['-s', stages]
        wall, roles = measure(cmd)
        mbs = size / 1e6 / wall
        base = base or mbs
        rows.append((stages, t, mbs, mbs / base, mbs / base / t))
        roles_at[stages] = (t, roles)

print(f"\n{'command':<22} {'-T':>3} {'MB/s':>8} {'speedup':>8} {'effic.':>7}")
for stages, t, mbs, sp, eff in rows:
    name = stages if stages == 'zstd -3' else f'syncpipe {stages}'
    print(f'{name:<22} {t:>3} {mbs:>8.0f} {sp:>8.2f} {eff:>7.2f}')

cols = ['reader', 'hasher', 'dispatcher', 'writer', 'main', 'workers']
print(f"\nCPU ns per input byte by role, at the highest -T ({size} bytes):")
print(f"{'stages':<10} {'-T':>3} " + ' '.join(f'{c:>10}' for c in cols)
      + f" {'ceiling MB/s at N = ' + ', '.join(map(str, sorted(set(threads + [model_n])))):>}")
for stages in lists.split():
    t, roles = roles_at[stages]
    ns = {c: roles.get(c, 0) * 1e9 / size for c in cols}
    serial = max(ns[c] for c in cols if c != 'workers')
    ceil = [1000 / max(serial, ns['workers'] / k) for k in sorted(set(threads + [model_n]))]
    print(f'{stages:<10} {t:>3} ' + ' '.join(f'{ns[c]:>10.3f}' for c in cols)
          + '  ' + ', '.join(f'{c:.0f}' for c in ceil))
PY
