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
# Roles: every syncpipe run is given -v, whose summary has the CPU time of
# each serial thread as the OS accounts it (CLOCK_THREAD_CPUTIME_ID, read
# by each thread as it ends; `thread_cpu` in the library's Report). The
# table under the rows gives, per stage list at the highest thread count,
# each role's CPU time per input byte: reader, hasher, dispatcher, writer,
# and rest = the process's CPU time (wait4's rusage) minus those four: the
# CPU workers, the parallel part, plus the main thread's set-up.
# From them, the model of docs/performance.md ("Scaling"):
#   ceiling(N) = 1000 / max(busiest serial role ns/B, rest ns/B / N) MB/s
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

ROLE = re.compile(r'thread cpu: reader ([0-9.]+)s, hasher ([0-9.]+)s, '
                  r'dispatcher ([0-9.]+)s, writer ([0-9.]+)s')

def timed(cmd):
    """Runs cmd (stdout to /dev/null); returns (wall s, {role: cpu s})."""
    with open(os.devnull, 'wb') as null:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=null, stderr=subprocess.PIPE)
        err = p.stderr.read().decode(errors='replace')
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f'{cmd} exited {p.returncode}: {err}')
    roles = {}
    m = ROLE.search(err)
    if m:
        roles = dict(zip(('reader', 'hasher', 'dispatcher', 'writer'), map(float, m.groups())))
    # The rest of the process's CPU time: the CPU workers, and the main
    # thread's start-up and clean-up.
    roles['rest'] = usage.ru_utime + usage.ru_stime - sum(roles.values())
    return wall, roles

def measure(cmd):
    timed(cmd)  # warm-up
    results = [timed(cmd) for _ in range(runs)]
    results.sort(key=lambda r: r[0])
    return results[len(results) // 2]

rows, roles_at, model_eff = [], {}, {}
for stages in lists.split() + ['zstd -3']:
    base = None
    for t in threads:
        if stages == 'zstd -3':
            cmd = ['zstd', '-q', '-3', f'-T{t}', '-c', path]
        else:
            cmd = [binary, 'process', '-v', '-T', str(t), '-c', path]
            if stages != 'default':
                cmd[3:3] = ['-s', stages]
        wall, roles = measure(cmd)
        mbs = size / 1e6 / wall
        base = base or mbs
        rows.append((stages, t, mbs, mbs / base, mbs / base / t))
        roles_at[stages] = (t, roles)

print(f"\n{'command':<22} {'-T':>3} {'MB/s':>8} {'speedup':>8} {'effic.':>7}")
for stages, t, mbs, sp, eff in rows:
    name = stages if stages == 'zstd -3' else f'syncpipe {stages}'
    print(f'{name:<22} {t:>3} {mbs:>8.0f} {sp:>8.2f} {eff:>7.2f}')

cols = ['reader', 'hasher', 'dispatcher', 'writer', 'rest']
print(f"\nCPU ns per input byte by role, at the highest -T ({size} bytes):")
print(f"{'stages':<10} {'-T':>3} " + ' '.join(f'{c:>10}' for c in cols)
      + f" {'ceiling MB/s at N = ' + ', '.join(map(str, sorted(set(threads + [model_n])))):>}")
for stages in lists.split():
    t, roles = roles_at[stages]
    ns = {c: roles.get(c, 0) * 1e9 / size for c in cols}
    serial = max(ns[c] for c in cols if c != 'rest')
    ceil = [1000 / max(serial, ns['rest'] / k) for k in sorted(set(threads + [model_n]))]
    print(f'{stages:<10} {t:>3} ' + ' '.join(f'{ns[c]:>10.3f}' for c in cols)
          + '  ' + ', '.join(f'{c:.0f}' for c in ceil))
    model_eff[stages] = 1000 / max(serial, ns['rest'] / model_n) / model_n / (1000 / max(serial, ns['rest']))

# Amdahl's law fitted to the measured speedup S at the highest -T (T): the
# serial share s = (T/S - 1)/(T - 1), then efficiency(N) = 1/(N s + 1 - s).
# The same extrapolation for every command, zstd's included, as a cross-check
# of the role model (two points on a shared machine: a rough one).
def amdahl(t, sp, n):
    if t < 2:
        return float('nan')
    s = min(max((t / sp - 1) / (t - 1), 0.0), 1.0)
    return 1 / (n * s + 1 - s)

print(f"\nPredicted efficiency at {model_n} threads:")
print(f"{'command':<22} {'role model':>10} {'Amdahl':>8}")
top = {}
for stages, t, mbs, sp, eff in rows:
    top[stages] = (t, sp)
for stages, (t, sp) in top.items():
    name = stages if stages == 'zstd -3' else f'syncpipe {stages}'
    m = model_eff.get(stages)
    print(f"{name:<22} {('%.2f' % m) if m is not None else '-':>10} {amdahl(t, sp, model_n):>8.2f}")
if 'zstd:3' in model_eff:
    ours, theirs = model_eff['zstd:3'], amdahl(*top['zstd -3'], model_n)
    ok = ours >= 0.85 and not ours < theirs
    print(f"goal: syncpipe zstd:3 at {model_n} threads >= 0.85 and >= zstd -3's: "
          f"{ours:.2f} against zstd's {theirs:.2f} (Amdahl): {'met' if ok else 'not met'}")
PY
