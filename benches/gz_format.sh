#!/usr/bin/env bash
# gz_format.sh: `syncpipe process --format bgzf` against `bgzip -@T` and
# `--format gz` against `pigz -p T`, at the same level on the same file,
# and restoring against `bgzip -d`, `pigz -d` and `gzip -d`, in
# interleaved rounds (format_rounds.py). Page cache warm.
#
# Usage:  benches/gz_format.sh [DIR]      (DIR default /tmp/syncpipe-bench)
#
# Every command writes to stdout, redirected to a file in DIR (restores:
# to /dev/null), so no side pays an fsync.
#
# Rows per input and level:
#   syncpipe bgzf  syncpipe process IN --format bgzf -l L -T T -c > OUT
#   bgzip          bgzip -@T -l L -c IN > OUT      (htslib, libdeflate)
#   syncpipe gz    syncpipe process IN --format gz -l L -T T -c > OUT
#   pigz           pigz -p T -L -c IN > OUT
# and per input, at the first level:
#   restore bgzf / bgzip -d bgzf    syncpipe's BGZF, by each (both parallel)
#   restore gz / pigz -d gz         syncpipe's .gz (ours parallel: SP sizes)
#   restore pigz's / pigz -d pigz's pigz's .gz (no sizes: sequential)
# Columns: median MB/s (input bytes / 1e6 / seconds), output bytes, ratio,
# and the goal line: syncpipe bgzf >= 1.5x bgzip -@T's MB/s.
#
# Env:
#   INPUTS="mixed.bin linux-6.1-512MiB.tar"  under DIR (see compare.sh and
#          chunk_goal.sh for how they are made), cut to SIZE_MB when larger
#   SIZE_MB=256   prefix of each input used
#   LEVELS="6 1" ROUNDS=3 T=$(nproc)
#   SYNCPIPE_BIN= use this binary instead of building with cargo
set -euo pipefail
export ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/syncpipe-bench}
for tool in bgzip pigz gzip; do
    command -v $tool >/dev/null || { echo "gz_format.sh: $tool is required (apt-get install tabix pigz gzip)" >&2; exit 2; }
done
. "$ROOT/benches/binary.sh"
SIZE_MB=${SIZE_MB:-256}
echo "# $BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), $(bgzip --version | head -1), $(pigz --version 2>&1)"
SUB=gz . "$ROOT/benches/format_inputs.sh"
exec python3 - "$BIN" "${LEVELS:-6 1}" "${ROUNDS:-3}" "${T:-$(nproc)}" "$DIR/gz" "${inputs[@]}" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
from format_rounds import run_rounds, print_table

binary, levels, rounds, t, out, *inputs = sys.argv[1:]
levels, rounds = levels.split(), int(rounds)

rows, sizes = {}, {}
for path in inputs:
    name = os.path.basename(path)
    sizes[name] = os.path.getsize(path)
    cmds = {}
    for lv in levels:
        for what, cmd in [
            ('syncpipe bgzf', f'{binary} -q process {path} --format bgzf -l {lv} -T {t} -c'),
            ('bgzip', f'bgzip -@{t} -l {lv} -c {path}'),
            ('syncpipe gz', f'{binary} -q process {path} --format gz -l {lv} -T {t} -c'),
            ('pigz', f'pigz -p {t} -{lv} -c {path}'),
        ]:
            dest = f'{out}/{what.replace(" ", "-")}.{lv}.gz'
            cmds[(name, lv, what)] = (f'{cmd} > {dest}', dest)
    lv = levels[0]
    bgzf, gz, pigz = (f'{out}/{w}.{lv}.gz' for w in ('syncpipe-bgzf', 'syncpipe-gz', 'pigz'))
    for what, cmd in [
        ('restore bgzf', f'{binary} -q restore {bgzf} -T {t} -c'),
        ('bgzip -d bgzf', f'bgzip -@{t} -d -c {bgzf}'),
        ('restore gz', f'{binary} -q restore {gz} -T {t} -c'),
        ('pigz -d gz', f'pigz -p {t} -d -c {gz}'),
        ("restore pigz's", f'{binary} -q restore {pigz} -T {t} -c'),
        ("pigz -d pigz's", f'pigz -p {t} -d -c {pigz}'),
        ("gzip -d pigz's", f'gzip -d -c {pigz}'),
    ]:
        cmds[(name, lv, what)] = (f'{cmd} > /dev/null', None)
    rows.update(run_rounds(cmds, rounds, sizes[name]))

print_table(rows, sizes)
for path in inputs:
    name = os.path.basename(path)
    for lv in levels:
        s, b = rows[(name, lv, 'syncpipe bgzf')], rows[(name, lv, 'bgzip')]
        g, p = rows[(name, lv, 'syncpipe gz')], rows[(name, lv, 'pigz')]
        speed = s[0] / b[0]
        print(f'goal {name} gzip:{lv}: bgzf {speed:.2f}x bgzip -@{t}\'s MB/s (>= 1.5x): '
              f'{"met" if speed >= 1.5 else "not met"}; size {(s[1] / b[1] - 1) * 100:+.1f}% of '
              f'bgzip\'s; gz {g[0] / p[0]:.2f}x pigz -p {t}, size {(g[1] / p[1] - 1) * 100:+.1f}%')
    lv = levels[0]
    r, d = rows[(name, lv, 'restore bgzf')], rows[(name, lv, 'bgzip -d bgzf')]
    print(f'     {name} restore of its own BGZF: {r[0] / d[0]:.2f}x bgzip -d -@{t}')
PY
