#!/usr/bin/env bash
# zst_format.sh: `syncpipe process --format zst` against `zstd -T2` at the
# same level on the same file, and restoring against `zstd -d`, in
# interleaved rounds (each round runs every row once, so a slow moment of
# the machine falls on every row alike). Page cache warm.
#
# Usage:  benches/zst_format.sh [DIR]      (DIR default /tmp/syncpipe-bench)
#
# Every command writes to stdout, redirected to a file in DIR (restores:
# to /dev/null), so neither side pays an fsync: zstd does not make its
# output durable, and `-o`'s durable commit is measured elsewhere.
#
# Rows per input and level:
#   syncpipe    syncpipe process IN --format zst -l L -T T -c > OUT
#   zstd        zstd -q -L -T T -c IN > OUT
# and per input, at the first level:
#   restore own    syncpipe restore of syncpipe's .zst (parallel: seek table)
#   zstd -d own    zstd -d of the same file
#   restore zstd's syncpipe restore of zstd's .zst (one frame per 2^N: the
#                  frames zstd -T writes are one; sequential)
# Columns: median MB/s (input bytes / 1e6 / seconds), output bytes, ratio,
# and the goal lines: size within 1% of zstd's and >= 1.1x its MB/s;
# restore of syncpipe's own .zst >= 1.5x zstd -d.
#
# Env:
#   INPUTS="mixed.bin linux-6.1-512MiB.tar"  under DIR (see compare.sh and
#          chunk_goal.sh for how they are made), cut to SIZE_MB when larger
#   SIZE_MB=256   prefix of each input used (level 19 is slow)
#   LEVELS="3 19" ROUNDS=3 T=$(nproc)
#   SYNCPIPE_BIN= use this binary instead of building with cargo
set -euo pipefail
export ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/syncpipe-bench}
command -v zstd >/dev/null || { echo "zst_format.sh: zstd is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"
SIZE_MB=${SIZE_MB:-256}
echo "# $BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), $(zstd --version)"
SUB=zst . "$ROOT/benches/format_inputs.sh"
exec python3 - "$BIN" "${LEVELS:-3 19}" "${ROUNDS:-3}" "${T:-$(nproc)}" "$DIR/zst" "${inputs[@]}" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
from format_rounds import run_rounds, print_table

binary, levels, rounds, threads, out, *inputs = sys.argv[1:]
levels, rounds = levels.split(), int(rounds)

rows, sizes = {}, {}
for path in inputs:
    name = os.path.basename(path)
    sizes[name] = os.path.getsize(path)
    ours, theirs = f'{out}/ours.zst', f'{out}/theirs.zst'
    cmds = {}
    for lv in levels:
        cmds[(name, lv, 'syncpipe')] = (f'{binary} -q process {path} --format zst -l {lv} '
                                        f'-T {threads} -c > {ours}.{lv}', f'{ours}.{lv}')
        cmds[(name, lv, 'zstd')] = (f'zstd -q -{lv} -T{threads} -c {path} > {theirs}.{lv}',
                                    f'{theirs}.{lv}')
    first = levels[0]
    for what, cmd in [
        ('restore own', f'{binary} -q restore {ours}.{first} -T {threads} -c > /dev/null'),
        ('zstd -d own', f'zstd -q -d -c {ours}.{first} > /dev/null'),
        ("restore zstd's", f'{binary} -q restore {theirs}.{first} -T {threads} -c > /dev/null'),
        ("zstd -d zstd's", f'zstd -q -d -c {theirs}.{first} > /dev/null'),
    ]:
        cmds[(name, first, what)] = (cmd, None)
    rows.update(run_rounds(cmds, rounds, sizes[name]))

print_table(rows, sizes)
for path in inputs:
    name = os.path.basename(path)
    for lv in levels:
        s, z = rows[(name, lv, 'syncpipe')], rows[(name, lv, 'zstd')]
        larger = (s[1] / z[1] - 1) * 100
        speed = s[0] / z[0]
        ok = larger <= 1 and speed >= 1.1
        print(f'goal {name} zstd:{lv}: size {larger:+.2f}% of zstd -T{threads}\'s (<= +1%), '
              f'{speed:.2f}x its MB/s (>= 1.1x): {"met" if ok else "not met"}')
    r, d = rows[(name, levels[0], 'restore own')], rows[(name, levels[0], 'zstd -d own')]
    print(f'goal {name} restore of its own .zst: {r[0] / d[0]:.2f}x zstd -d (>= 1.5x): '
          f'{"met" if r[0] / d[0] >= 1.5 else "not met"}')
PY
