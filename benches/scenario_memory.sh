#!/usr/bin/env bash
# scenario_memory.sh: scenario 4, memory stress. Several large files at once;
# peak RSS of the obvious approach, which reads each whole file into memory
# and then compresses it (examples/whole_file.rs: std::fs::read, then the
# library's Pipeline::run on the buffer, one thread per file, all files at
# once), against syncpipe streaming the same files in one batch (bounded
# chunk buffers, reused), with `zstd -T2` for reference (one file after
# the other). What it shows: the baseline's peak grows with the files'
# total size; syncpipe's stays at a few chunks per file in flight.
#
# Usage:  benches/scenario_memory.sh [DIR]   (DIR default /tmp/syncpipe-scen-memory)
#
# Rows (all -s STAGES / zstd -3, page cache warm, outputs in DIR/out):
#   whole-file baseline   whole_file --stages STAGES OUT f1 .. fN
#   syncpipe streaming    syncpipe process f1 .. fN --output-dir OUT --json
#                           -s STAGES --files-in-flight N   (every file at once,
#                           as the baseline)
#   zstd -T2              zstd -q -3 -T2 f1 .. fN --output-dir-flat OUT
# Columns: MB/s (input bytes / 10^6 / wall s), CPU s (user+sys), peak RSS MiB
# (wait4: the process's high-water mark), and for syncpipe from the --json
# summary: buffer_bytes_peak MiB (chunk data held at once) and
# buffer_reuse_rate (share of chunk buffers that were reused, not
# allocated). Median of RUNS runs (peak RSS: the largest).
#
# Env:
#   FILES=4 FILE_MB=512   the inputs (2 GiB in all)
#   CORPUS=generated      or linux: each file is the kernel tarball cut at FILE_MB
#   STAGES=zstd:3,blake3  RUNS=1  IDLE_WAIT=30
#   SVG=docs/scenario-4-memory.svg
#   SYNCPIPE_BIN=         skip the build of syncpipe
#   WHOLE_FILE_BIN=       skip the build of the example (else
#                         `cargo build --release --example whole_file`)
# Output: the table on stdout, DIR/scenario-4-memory.tsv, the SVG (bars of
# peak RSS). Needs python3; the zstd row is skipped without zstd.
# At the defaults 37 s on the 2-core development VM, the inputs' generation
# included (three runs over 2 GiB; 2 GiB of disk, and up to 2 GiB more for
# the outputs; the baseline needs the 2 GiB in memory).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-scen-memory}
export FILES=${FILES:-4} FILE_MB=${FILE_MB:-512} CORPUS=${CORPUS:-generated}
export STAGES=${STAGES:-zstd:3,blake3} RUNS=${RUNS:-1} IDLE_WAIT=${IDLE_WAIT:-30}
export SVG=${SVG:-docs/scenario-4-memory.svg}
command -v python3 >/dev/null || { echo "scenario_memory.sh: python3 is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"
if [ -z "${WHOLE_FILE_BIN:-}" ]; then
  echo "building: cargo build --release --example whole_file" >&2
  (cd "$ROOT" && cargo build --release --quiet --example whole_file)
  WHOLE_FILE_BIN=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/whole_file
fi
[ -x "$WHOLE_FILE_BIN" ] || { echo "no whole_file example at $WHOLE_FILE_BIN" >&2; exit 2; }
mkdir -p "$DIR"
export BIN ROOT DIR WHOLE_FILE_BIN

python3 - <<'PY'
import os, shutil, statistics, subprocess, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
import scenario_lib as sl

env = os.environ
bin_, root, d, whole = env['BIN'], env['ROOT'], env['DIR'], env['WHOLE_FILE_BIN']
nfiles, file_mb, runs, corpus = int(env['FILES']), int(env['FILE_MB']), int(env['RUNS']), env['CORPUS']
big = os.path.join(d, 'big')

# ---- inputs
key = sl.inputs_needed(d, 'big', corpus, nfiles, file_mb)
if key:
    sys.stderr.write(f'generating {nfiles} x {file_mb} MiB in {big}\n')
    shutil.rmtree(big, ignore_errors=True)
    os.makedirs(big)
    if corpus == 'linux':
        seed = sl.linux_corpus()[0]
    else:
        seed = sl.mixed_seed(os.path.join(d, 'seed-64MiB.bin'), 64 << 20)
    for i in range(nfiles):
        sl.repeat_to(seed, file_mb << 20, os.path.join(big, 'f%d.bin' % i))
    sl.inputs_made(key)
inputs = [os.path.join(big, 'f%d.bin' % i) for i in range(nfiles)]
total = sum(os.path.getsize(p) for p in inputs)
sl.warm(inputs)             # memory is the subject, not the disk

out = os.path.join(d, 'out')
cases = [
    ('whole-file baseline', f'whole_file --stages {env["STAGES"]} OUT f1..f{nfiles}',
     [whole, '--stages', env['STAGES'], out] + inputs, False),
    ('syncpipe streaming', f'syncpipe process f1..f{nfiles} --output-dir OUT --json -s {env["STAGES"]} '
     f'--files-in-flight {nfiles}',
     [bin_, 'process'] + inputs + ['--output-dir', out, '--json', '-s', env['STAGES'],
                                   '--files-in-flight', str(nfiles)], True),
]
if shutil.which('zstd'):
    cases.append(('zstd -T2 (reference)', f'zstd -q -3 -T2 f1..f{nfiles} --output-dir-flat OUT',
                  ['zstd', '-q', '-3', '-T2'] + inputs + ['--output-dir-flat', out], False))
else:
    sys.stderr.write('zstd not installed: its row is skipped\n')

rows, bars = [], []
for name, show, cmd, is_sp in cases:
    res = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        subprocess.run(['sync'])
        sl.wait_idle(float(env['IDLE_WAIT']))
        log = os.path.join(d, 'run.out')
        r = sl.measure(cmd, stdout=log, stderr=log + '.err')
        if r.rc != 0:
            sys.exit(f'rc={r.rc}: {" ".join(cmd)}\n' + open(log + '.err').read()[-600:])
        g = sl.summary(log).get('gauges', {}) if is_sp else {}
        res.append(dict(wall=r.wall, cpu=r.cpu, rss=r.rss_mib,
                        bpeak=g.get('buffer_bytes_peak'), reuse=g.get('buffer_reuse_rate')))
    wall = statistics.median(x['wall'] for x in res)
    rss = max(x['rss'] for x in res)
    row = [name, show, f'{total / 1e6 / wall:.0f}', f'{statistics.median(x["cpu"] for x in res):.2f}',
           f'{rss:.0f}',
           f'{res[0]["bpeak"] / 1048576:.1f}' if res[0]['bpeak'] is not None else '',
           f'{statistics.median(x["reuse"] for x in res):.3f}' if res[0]['reuse'] is not None else '']
    rows.append(row)
    bars.append((name, rss))
    sys.stderr.write('  ' + ' | '.join(row) + '\n')
shutil.rmtree(out, ignore_errors=True)

heads = ['what', 'command', 'MB/s', 'CPU s', 'peak RSS MiB', 'buffer_bytes_peak MiB', 'buffer reuse rate']
print(f'scenario 4, memory: {nfiles} x {file_mb} MiB ({corpus}) at once, {total / 1e6:.0f} MB, '
      f'page cache warm, {os.cpu_count()} cores; median of {runs} (peak RSS: max)')
print()
sl.md_table(heads, rows)
sl.write_tsv(os.path.join(d, 'scenario-4-memory.tsv'), heads, rows)
svg = os.path.join(root, env['SVG'])
sl.svg_chart(svg, [dict(kind='bar', title=f'Peak RSS, {nfiles} x {file_mb} MiB at once',
                        xlabel='', ylabel='peak RSS MiB', x=[''],
                        series=[(n, [v]) for n, v in bars])],
             note=sl.run_note(env['STAGES']))
print()
print(f'plot: {svg}; rows: {os.path.join(d, "scenario-4-memory.tsv")}')
PY
