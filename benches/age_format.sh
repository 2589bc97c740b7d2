#!/usr/bin/env bash
# age_format.sh: `syncpipe process --format age` against the real `age`
# (one core: age encrypts on one goroutine) on incompressible data, and
# `-s zstd:3 --format age` against the pipe `zstd -3 -T T | age` on
# compressible inputs; then restoring each against `age -d` (and
# `age -d | zstd -d`). Interleaved rounds (format_rounds.py), page cache
# warm, every output to a file in DIR (restores to /dev/null), so no side
# pays an fsync.
#
# Usage:  benches/age_format.sh [DIR]      (DIR default /tmp/syncpipe-bench)
#
# Rows:
#   random.bin (SIZE_MB of /dev/urandom, made once under DIR/age):
#     syncpipe age      syncpipe process IN --format age -R RCPT -T T -c > OUT
#     age               age -R RCPT IN > OUT
#     restore age's     syncpipe restore OUT(age's) -i KEY -T T -c
#     age -d            age -d -i KEY OUT(age's)
#   each of INPUTS:
#     syncpipe zst.age  syncpipe process IN --format age -s zstd:3 -R RCPT -T T -c > OUT
#     zstd | age        zstd -3 -T T -c IN | age -R RCPT > OUT
#     restore zst.age   syncpipe restore OUT(ours) -i KEY -T T -c
#     age -d | zstd -d  age -d -i KEY OUT(ours) | zstd -d -c
# Columns: median MB/s (input bytes / 1e6 / seconds), output bytes, ratio,
# and the goal lines: syncpipe age >= 1.8x age; syncpipe zst.age >= 1.1x
# the pipe.
#
# Env:
#   INPUTS="mixed.bin linux-6.1-512MiB.tar"  under DIR (see compare.sh and
#          chunk_goal.sh), cut to SIZE_MB when larger
#   SIZE_MB=256 ROUNDS=3 T=$(nproc)
#   SYNCPIPE_BIN= use this binary instead of building with cargo
set -euo pipefail
export ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/syncpipe-bench}
for tool in age age-keygen zstd; do
    command -v $tool >/dev/null || { echo "age_format.sh: $tool is required (apt-get install age zstd)" >&2; exit 2; }
done
. "$ROOT/benches/binary.sh"
SIZE_MB=${SIZE_MB:-256}
echo "# $BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), age $(age --version), $(zstd --version)"
SUB=age . "$ROOT/benches/format_inputs.sh"
random="$DIR/age/random.bin.${SIZE_MB}M"
[ -f "$random" ] || head -c $((SIZE_MB << 20)) /dev/urandom >"$random"
echo "# input $random: $(stat -c %s "$random") bytes (incompressible)"
[ -f "$DIR/age/key.txt" ] || age-keygen -o "$DIR/age/key.txt" 2>/dev/null
age-keygen -y "$DIR/age/key.txt" >"$DIR/age/recipients"
exec python3 - "$BIN" "${ROUNDS:-3}" "${T:-$(nproc)}" "$DIR/age" "$random" "${inputs[@]}" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
from format_rounds import run_rounds, print_table

binary, rounds, t, out, random, *inputs = sys.argv[1:]
rounds = int(rounds)
key, rcpt = f'{out}/key.txt', f'{out}/recipients'

rows, sizes = {}, {}
name = os.path.basename(random)
sizes[name] = os.path.getsize(random)
theirs = f'{out}/age.age'
cmds = {
    (name, '-', 'syncpipe age'): (f'{binary} -q process {random} --format age -R {rcpt} -T {t} -c > {out}/syncpipe.age', f'{out}/syncpipe.age'),
    (name, '-', 'age'): (f'age -R {rcpt} {random} > {theirs}', theirs),
    (name, '-', "restore age's"): (f'{binary} -q restore {theirs} -i {key} -T {t} -c > /dev/null', None),
    (name, '-', 'age -d'): (f'age -d -i {key} {theirs} > /dev/null', None),
}
rows.update(run_rounds(cmds, rounds, sizes[name]))
for path in inputs:
    name = os.path.basename(path)
    sizes[name] = os.path.getsize(path)
    ours = f'{out}/{name}.zst.age'
    cmds = {
        (name, 3, 'syncpipe zst.age'): (f'{binary} -q process {path} --format age -s zstd:3 -R {rcpt} -T {t} -c > {ours}', ours),
        (name, 3, 'zstd | age'): (f'zstd -q -3 -T{t} -c {path} | age -R {rcpt} > {out}/pipe.zst.age', f'{out}/pipe.zst.age'),
        (name, 3, 'restore zst.age'): (f'{binary} -q restore {ours} -i {key} -T {t} -c > /dev/null', None),
        (name, 3, 'age -d | zstd -d'): (f'age -d -i {key} {ours} | zstd -q -d -c > /dev/null', None),
    }
    rows.update(run_rounds(cmds, rounds, sizes[name]))

print_table(rows, sizes)
name = os.path.basename(random)
s, a = rows[(name, '-', 'syncpipe age')][0], rows[(name, '-', 'age')][0]
r, d = rows[(name, '-', "restore age's")][0], rows[(name, '-', 'age -d')][0]
print(f'goal {name}: syncpipe age {s / a:.2f}x age (>= 1.8x): {"met" if s / a >= 1.8 else "not met"}; '
      f"restore of age's file {r / d:.2f}x age -d")
for path in inputs:
    name = os.path.basename(path)
    s, p = rows[(name, 3, 'syncpipe zst.age')], rows[(name, 3, 'zstd | age')]
    r, d = rows[(name, 3, 'restore zst.age')][0], rows[(name, 3, 'age -d | zstd -d')][0]
    print(f'goal {name}: zstd:3 in age {s[0] / p[0]:.2f}x zstd -3 -T{t} | age (>= 1.1x): '
          f'{"met" if s[0] / p[0] >= 1.1 else "not met"}; size {(s[1] / p[1] - 1) * 100:+.1f}% of the pipe\'s; '
          f'restore {r / d:.2f}x age -d | zstd -d')
PY
