#!/usr/bin/env bash
# compare.sh: syncpipe's CLI against the peer tools (zstd, lz4, cp) on the same
# inputs and under the same conventions for every tool: page cache warm, one
# untimed warm-up run, then the median of RUNS timed runs;
# MB/s = input bytes / 1e6 / median wall seconds (restore and zstd -d: bytes of
# decompressed output); CPU s = median user+sys of the command, threads and
# children included; peak RSS = largest single process (wait4 rusage), max over
# the timed runs; ratio = input bytes / output bytes.
#
# Usage:  benches/compare.sh [DIR]          (DIR default /tmp/syncpipe-bench)
#
#   DIR holds the inputs, generated when absent and reused otherwise:
#     mixed.bin   SIZE_MB MiB of regular files from /usr/share, /usr/lib, /usr/bin
#                 in md5(path) order, cut at SIZE_MB MiB (the peers' recipe: at
#                 512 MiB it is byte for byte the peers' mixed.bin on a machine
#                 with the same packages; compare the printed sha256 and zstd -3
#                 ratio before comparing speeds across machines)
#     random.bin  RANDOM_MB MiB of AES-256-CTR keystream (all-zero key and IV,
#                 as the peers'), or of /dev/urandom when openssl is missing
#     rss-64MiB.bin, big-2GiB.bin  for the peak-RSS flatness rows (copies of
#                 mixed.bin concatenated and cut)
#   DIR/out receives every output and log; it is emptied at the start.
#   DIR/compare.tsv holds the rows (rewritten at every invocation).
#
# Env:
#   SIZE_MB=512     size of mixed.bin in MiB
#   RANDOM_MB=256   size of random.bin in MiB
#   RUNS=3          timed runs per row (median reported), after one untimed warm-up
#   BIG=1           BIG=0 skips the 2 GiB row (and the 2 GiB of disk it needs)
#   IDLE_WAIT=120   before each run, wait up to this many seconds for the machine
#                   to be quiet (< 5% of one core busy for 1 s); 0 disables
#   REDO=2          a timed run during which other processes burnt > 5% of a core
#                   is redone up to REDO times; the note column shows "other CPU"
#   SYNCPIPE_BIN=   use this binary instead of building with cargo
#   SECTIONS=all    comma list of sections to run: zstd, lz4, passthrough, restore,
#                   random, rss, crypto, reader, chunks (e.g. SECTIONS=crypto for
#                   the encryption rows only; chunks is the chunk-size sweep,
#                   64 KiB to 16 MiB and the filesize/hillclimb methods, for
#                   zstd:3, lz4 and passthrough; not part of the default "all")
#
# Builds with `cargo build --release` (CARGO_TARGET_DIR is respected: the
# binary is found through `cargo metadata`). Needs python3; zstd and lz4 rows
# are skipped, with a note, when the tool is missing (a row is skipped when any
# command of its pipeline is missing: the crypto rows need age and age-keygen,
# `apt-get install age`). Installs nothing.
#
# Full run at the defaults on 2 quiet cores: about 3 minutes once the inputs
# exist and the binary is built (~90 s of timed runs, ~70 s of idle checks and
# syncs, the 2 GiB row alone ~25 s); the first run adds ~40 s to make the
# inputs (3 GiB of disk with BIG=1) and the release build (2-3 min from scratch).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-bench}
SIZE_MB=${SIZE_MB:-512}
RANDOM_MB=${RANDOM_MB:-256}
RUNS=${RUNS:-3}
BIG=${BIG:-1}
IDLE_WAIT=${IDLE_WAIT:-120}
REDO=${REDO:-2}
SECTIONS=${SECTIONS:-all}
export RUNS IDLE_WAIT REDO
export SCENARIO_LIB_DIR=$ROOT/benches   # the harness imports busy/wait_idle from it

have() { command -v "$1" >/dev/null 2>&1; }
# on NAME: is section NAME selected by SECTIONS?
on() { { [ "$SECTIONS" = all ] && [ "$1" != chunks ]; } || [[ ",$SECTIONS," == *",$1,"* ]]; }
say() { echo "$*" >&2; }
have python3 || { say "compare.sh: python3 is required"; exit 2; }

# ---------------------------------------------------------------- build
. "$ROOT/benches/binary.sh"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cd "$DIR"
rm -rf out
mkdir -p out
TSV=$DIR/compare.tsv
: >"$TSV"

MIXED_BYTES=$((SIZE_MB * 1048576))
RANDOM_BYTES=$((RANDOM_MB * 1048576))
RSS_SMALL_BYTES=$((64 * 1048576))
BIG_BYTES=$((2048 * 1048576))

# ---------------------------------------------------------------- harness (python3)
cat >"$DIR/.compare-harness.py" <<'PY'
"""measure: run one command RUNS times (after warm-ups) and append a row to the TSV.
report: print the markdown table and the summary lines from the TSV."""
import argparse, os, statistics, sys, time
sys.path.insert(0, os.environ['SCENARIO_LIB_DIR'])
from scenario_lib import busy, wait_idle   # shared with the scenario scripts

def measure(a):
    idle_wait = float(os.environ.get('IDLE_WAIT', '120'))
    redo_max = int(os.environ.get('REDO', '2'))
    log = os.path.join('out', a.id + '.log')
    walls, cpus, rsss, others = [], [], [], []
    redone, failed, done = 0, 0, 0
    while done < a.warm + a.runs:
        if a.out and os.path.exists(a.out):
            os.remove(a.out)
        os.sync()                       # no writeback of earlier outputs inside the timed run
        if idle_wait > 0:
            wait_idle(idle_wait)
        b0 = busy()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1); os.dup2(fd, 2)
            os.execv('/bin/bash', ['bash', '-c', a.cmd])
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        other = max(0.0, busy() - b0 - (ru.ru_utime + ru.ru_stime))
        rc = os.waitstatus_to_exitcode(status)
        if rc != 0:
            failed = rc
            tail = open(log, errors='replace').read()[-600:]
            sys.stderr.write(f'  !! rc={rc}: {a.cmd}\n{tail}\n')
            break
        if done >= a.warm and other > max(0.05, 0.05 * wall) and redone < redo_max:
            redone += 1
            continue
        done += 1
        if done <= a.warm:
            continue
        walls.append(wall); cpus.append(ru.ru_utime + ru.ru_stime)
        rsss.append(ru.ru_maxrss / 1024.0); others.append(other)
    ratio = ''
    if not failed and a.ratio and a.out and os.path.getsize(a.out) > 0:
        ratio = f'{a.bytes / os.path.getsize(a.out):.3f}'
    if a.out and not a.keep and os.path.exists(a.out):
        os.remove(a.out)
    if failed:
        row = [a.id, a.group, a.label, a.show, a.threads, 'FAILED', f'rc={failed}', '', '', '', '', f'see out/{a.id}.log']
    else:
        med = statistics.median(walls)
        mb = a.bytes / 1e6
        notes = [a.note] if a.note else []
        if max(others) >= 0.1:
            notes.append(f'other CPU {max(others):.2f} s')
        if redone:
            notes.append(f'{redone} run(s) redone')
        row = [a.id, a.group, a.label, a.show, a.threads, f'{mb / med:.1f}',
               f'{mb / max(walls):.0f}–{mb / min(walls):.0f}', f'{statistics.median(cpus):.2f}',
               f'{max(rsss):.1f}', ratio, f'{med:.3f}', '; '.join(notes)]
    with open(a.tsv, 'a') as f:
        f.write('\t'.join(row) + '\n')
    sys.stderr.write('  ' + ' | '.join(row[2:3] + row[5:10]) + '\n')

def report(a):
    rows = [l.rstrip('\n').split('\t') for l in open(a.tsv) if l.strip()]
    by = {r[0]: r for r in rows}
    print('| group | what | command | thr | MB/s (median) | min–max | CPU s | peak RSS MiB | ratio | note |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        cmd = r[3].replace('|', '\\|')
        print(f'| {r[1]} | {r[2]} | `{cmd}` | {r[4]} | {r[5]} | {r[6]} | {r[7]} | {r[8]} | {r[9]} | {r[11]} |')
    def mbs(i):
        r = by.get(i)
        try:
            return float(r[5]) if r else None
        except ValueError:
            return None
    def rss(i):
        r = by.get(i)
        try:
            return float(r[8]) if r else None
        except ValueError:
            return None
    def q(num, den, goal, what):
        a_, b_ = mbs(num), mbs(den)
        if a_ is None or b_ is None:
            return f'- {what}: n/a (row skipped or failed)'
        x = a_ / b_
        return f'- {what}: **{x:.2f}×** ({a_:.0f} / {b_:.0f} MB/s; goal ≥ {goal}×: {"met" if x >= goal else "NOT met"})'
    print()
    print('Summary (against the targets):')
    print(q('z3_sp_t2', 'z3_zstd_t2', 1.0, 'syncpipe zstd:3 -T2 / zstd -3 -T2'))
    print(q('z3_sp_t2_c', 'z3_zstd_t2', 1.0, '  same, syncpipe writing to stdout (-c, no fsync) / zstd -3 -T2'))
    print(q('z3_sp_t2', 'z3_sp_t1', 1.85, 'syncpipe zstd:3 speed-up 1→2 threads'))
    zt = (mbs('z3_zstd_t2'), mbs('z3_zstd_t1'))
    if None not in zt:
        print(f'  (zstd -3 itself: -T2 / -T1 = {zt[0] / zt[1]:.2f}×)')
    print(q('z3_sp_t2_n', 'z3_sp_t1_n', 1.85, '  same, output to /dev/null (the engine alone)'))
    zn = (mbs('z3_zs_t2_n'), mbs('z3_zs_t1_n'))
    if None not in zn:
        print(f'  (zstd -3 to /dev/null: -T2 / -T1 = {zn[0] / zn[1]:.2f}×)')
    tk = (mbs('z3_sp_t2_n'), mbs('z3_sp_tok1'))
    if None not in tk:
        print(f'- CPU tokens = cores (2) / cores - 1 (1): {tk[0] / tk[1]:.2f}× ({tk[0]:.0f} / {tk[1]:.0f} MB/s)')
    print(q('pt_sp_t2', 'pt_cp', 0.8, 'syncpipe passthrough -T2 / cp'))
    print(q('pt_sp_t2_c', 'pt_cp', 0.8, '  same, syncpipe writing to stdout (-c, no fsync) / cp'))
    print(q('rs_sp_t2', 'rs_zstd', 1.5, 'syncpipe restore -T2 / zstd -d'))
    print(q('rs_sp_t2_c', 'rs_zstd', 1.5, '  same, syncpipe writing to stdout (-c, no fsync) / zstd -d'))
    print(q('rs_sp_n', 'rs_zstd_n', 1.5, '  same, both to /dev/null (decoding alone)'))
    s, b = rss('rss_64m'), rss('rss_2g')
    if s is None:
        print('- peak RSS: n/a')
    elif b is None:
        print(f'- peak RSS, zstd:3 -T2: 64 MiB input {s:.1f} MiB; 2 GiB input skipped (BIG=0); goal ≤ 64 MiB: {"met" if s <= 64 else "NOT met"}')
    else:
        flat = b <= s * 1.1 + 4 and max(s, b) <= 64
        print(f'- peak RSS, zstd:3 -T2: 64 MiB input {s:.1f} MiB vs 2 GiB input {b:.1f} MiB '
              f'(×{b / s:.2f}; goal flat and ≤ 64 MiB: {"met" if flat else "NOT met"})')
    def floor(i, goal, what):
        v = mbs(i)
        if v is None:
            return f'- {what}: n/a (row skipped or failed)'
        return f'- {what}: **{v:.0f} MB/s** (goal ≥ {goal}: {"met" if v >= goal else "NOT met"})'
    if 'enc_z3_key' in by:
        print(floor('enc_z3_key', 400, 'syncpipe zstd:3,aes-256-gcm,sha256 -T2'))
        print(q('enc_z3_key', 'enc_z3_age', 1.1, '  same / zstd -3 -T2 | age -r'))
        print(q('enc_z3_pass', 'enc_z3_age', 1.1, '  same with a passphrase (Argon2id in the run) / zstd -3 -T2 | age -r'))
        print(floor('enc_lz4_key', 700, 'syncpipe lz4,chacha20-poly1305,blake3 -T2'))
        print(q('enc_lz4_key', 'enc_lz4_age', 1.0, '  same / lz4 -1 | age -r (no goal; for reference)'))
        print(q('dec_z3_key', 'dec_z3_age', 1.0, 'syncpipe restore (aes-256-gcm) / age -d | zstd -d (no goal; for reference)'))
    print()
    print('syncpipe rows with `-o` write a temp file, fsync it and rename it (a durable commit);')
    print('the peers and the `-c` rows write through the page cache without fsync.')
    if any(r[5] == 'FAILED' for r in rows):
        sys.exit(1)

ap = argparse.ArgumentParser()
ap.add_argument('mode', choices=['measure', 'report'])
ap.add_argument('--tsv', required=True)
ap.add_argument('--id', default='')
ap.add_argument('--group', default='')
ap.add_argument('--label', default='')
ap.add_argument('--show', default='')       # the command as printed in the table
ap.add_argument('--threads', default='1')
ap.add_argument('--bytes', type=int, default=0)
ap.add_argument('--out', default='')        # output file: deleted before every run
ap.add_argument('--ratio', action='store_true')
ap.add_argument('--keep', action='store_true')
ap.add_argument('--note', default='')
ap.add_argument('--warm', type=int, default=1)
ap.add_argument('--runs', type=int, default=int(os.environ.get('RUNS', '3')))
ap.add_argument('--cmd', default='')
args = ap.parse_args()
measure(args) if args.mode == 'measure' else report(args)
PY

# row ID GROUP LABEL THREADS BYTES CMD [harness flags...]: measure one command
# (run in DIR); a command starting with a tool that is not installed gets a
# "skipped" row. "$BIN" in CMD is shown as "syncpipe".
row() {
  local id=$1 group=$2 label=$3 thr=$4 bytes=$5 cmd=$6; shift 6
  local show=${cmd//"$BIN"/syncpipe}
  local seg tool
  IFS='|' read -ra segs <<<"$cmd"
  for seg in "${segs[@]}"; do
    read -r tool _ <<<"$seg"
    if [ "$tool" != "$BIN" ] && ! have "$tool"; then
      printf '%s\t%s\t%s\t%s\t%s\tskipped\t\t\t\t\t\t%s not installed\n' \
        "$id" "$group" "$label" "$show" "$thr" "$tool" >>"$TSV"
      say "  $label | skipped ($tool not installed)"
      return
    fi
  done
  python3 "$DIR/.compare-harness.py" measure --tsv "$TSV" --id "$id" --group "$group" \
    --label "$label" --show "$show" --threads "$thr" --bytes "$bytes" "$@" --cmd="$cmd"
}
warm() { for f in "$@"; do cat "$f" >/dev/null; done; }

# repeat_to SRC BYTES DST: DST = SRC repeated and cut at BYTES (made anew:
# the callers have decided it is stale; scenario_lib.repeat_to does the work)
repeat_to() {
  rm -f "$3"
  python3 -c '
import os, sys
sys.path.insert(0, os.environ["SCENARIO_LIB_DIR"])
from scenario_lib import repeat_to
repeat_to(sys.argv[1], int(sys.argv[2]), sys.argv[3])' "$@"
}
size_of() { stat -c %s "$1"; }

# ---------------------------------------------------------------- inputs
if [ ! -s mixed.bin ] || { [ "$(size_of mixed.bin)" != "$MIXED_BYTES" ] \
     && [ "$(cat .mixed.bin.req 2>/dev/null)" != "$MIXED_BYTES" ]; }; then
  say "generating mixed.bin ($SIZE_MB MiB of files from /usr/share, /usr/lib, /usr/bin in md5(path) order)"
  python3 "$ROOT/benches/make_mixed.py" "$MIXED_BYTES" mixed.bin
  echo "$MIXED_BYTES" >.mixed.bin.req
  rm -f rss-64MiB.bin big-2GiB.bin
fi
if [ ! -s random.bin ] || [ "$(size_of random.bin)" != "$RANDOM_BYTES" ]; then
  if have openssl; then
    say "generating random.bin ($RANDOM_MB MiB of AES-256-CTR keystream, all-zero key and IV)"
    { openssl enc -aes-256-ctr -K "$(printf '%064d' 0)" -iv "$(printf '%032d' 0)" -in /dev/zero 2>/dev/null \
        || true; } | head -c "$RANDOM_BYTES" >random.bin
  else
    say "generating random.bin ($RANDOM_MB MiB from /dev/urandom: openssl is missing, so not reproducible)"
    head -c "$RANDOM_BYTES" /dev/urandom >random.bin
  fi
fi
if [ ! -s rss-64MiB.bin ] || [ "$(size_of rss-64MiB.bin)" != "$RSS_SMALL_BYTES" ] || [ mixed.bin -nt rss-64MiB.bin ]; then
  repeat_to mixed.bin "$RSS_SMALL_BYTES" rss-64MiB.bin
fi
if [ "$BIG" != 0 ]; then
  if [ ! -s big-2GiB.bin ] || [ "$(size_of big-2GiB.bin)" != "$BIG_BYTES" ] || [ mixed.bin -nt big-2GiB.bin ]; then
    say "generating big-2GiB.bin (copies of mixed.bin)"
    repeat_to mixed.bin "$BIG_BYTES" big-2GiB.bin
  fi
fi
MIXED=$(size_of mixed.bin)
RANDOM_SIZE=$(size_of random.bin)

say "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
say "syncpipe: $BIN ($(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo 'no git'))"
for t in zstd lz4 age; do
  if have $t; then say "$t: $($t --version 2>&1 | head -1)"; else say "$t: not installed (its rows are skipped)"; fi
done
say "RUNS=$RUNS SIZE_MB=$SIZE_MB RANDOM_MB=$RANDOM_MB BIG=$BIG IDLE_WAIT=$IDLE_WAIT REDO=$REDO"
say "inputs:"
for f in mixed.bin random.bin; do
  say "$(printf '  %-12s %12d bytes  sha256 %s' "$f" "$(size_of "$f")" "$(sha256sum "$f" | cut -c1-16)")"
done

# Containers kept for the restore rows, and a round-trip check of syncpipe.
warm mixed.bin
"$BIN" -q process mixed.bin -o out/keep.spipe -f --stages zstd:3 -T2
"$BIN" -q restore out/keep.spipe -o out/roundtrip.bin -f -T2
cmp -s mixed.bin out/roundtrip.bin || { say "compare.sh: syncpipe round trip of mixed.bin differs!"; exit 1; }
rm -f out/roundtrip.bin
say "  syncpipe zstd:3 ratio on mixed.bin: $(python3 -c "print(f'{$MIXED / $(size_of out/keep.spipe):.3f}')") (round trip ok)"
if have zstd; then
  zstd -q -3 -T2 -c mixed.bin >out/keep.zst
  say "  zstd -3 ratio on mixed.bin: $(python3 -c "print(f'{$MIXED / $(size_of out/keep.zst):.3f}')") (peers' 512 MiB mixed.bin: 2.553)"
fi

SP=$BIN
# ---------------------------------------------------------------- rows
if on zstd; then
say "== zstd:3, mixed.bin"
warm mixed.bin
row z3_sp_t2   "zstd -3 mixed" "syncpipe zstd:3"        2 "$MIXED" "$SP -q process mixed.bin -o out/m.spipe -f --stages zstd:3 -T2" --out out/m.spipe --ratio
row z3_sp_t2_c "zstd -3 mixed" "syncpipe zstd:3 -c"     2 "$MIXED" "$SP -q process mixed.bin -c --stages zstd:3 -T2 >out/m.spipe" --out out/m.spipe --ratio --note "stdout, no fsync"
row z3_zstd_t2 "zstd -3 mixed" "zstd -3"                2 "$MIXED" "zstd -q -3 -T2 -c mixed.bin >out/m.zst" --out out/m.zst --ratio
row z3_zstd_t1 "zstd -3 mixed" "zstd -3"                1 "$MIXED" "zstd -q -3 -T1 -c mixed.bin >out/m.zst" --out out/m.zst --ratio
row z3_sp_t1   "zstd -3 mixed" "syncpipe zstd:3"        1 "$MIXED" "$SP -q process mixed.bin -o out/m.spipe -f --stages zstd:3 -T1" --out out/m.spipe --ratio
row z3b3_sp_t2 "zstd -3 mixed" "syncpipe zstd:3,blake3 (default)" 2 "$MIXED" "$SP -q process mixed.bin -o out/m.spipe -f --stages zstd:3,blake3 -T2" --out out/m.spipe --ratio
# The engine's own scaling, with the output file out of the picture (the
# page-cache write and the fsync are serial costs that no thread count hides).
row z3_sp_t2_n "zstd -3 mixed, to /dev/null" "syncpipe zstd:3 -c"  2 "$MIXED" "$SP -q process mixed.bin -c --stages zstd:3 -T2 >/dev/null"
row z3_sp_t1_n "zstd -3 mixed, to /dev/null" "syncpipe zstd:3 -c"  1 "$MIXED" "$SP -q process mixed.bin -c --stages zstd:3 -T1 >/dev/null"
row z3_zs_t2_n "zstd -3 mixed, to /dev/null" "zstd -3"             2 "$MIXED" "zstd -q -3 -T2 -c mixed.bin >/dev/null"
row z3_zs_t1_n "zstd -3 mixed, to /dev/null" "zstd -3"             1 "$MIXED" "zstd -q -3 -T1 -c mixed.bin >/dev/null"
# cores - 1 CPU tokens, against syncpipe's default (one per core).
row z3_sp_tok1 "zstd -3 mixed, to /dev/null" "syncpipe zstd:3 -c --cpu-tokens 1" 2 "$MIXED" "$SP -q process mixed.bin -c --stages zstd:3 -T2 --cpu-tokens 1 >/dev/null" --note "cores - 1 tokens"
fi

if on lz4; then
say "== lz4, mixed.bin"
row lz4_sp_t2  "lz4 mixed" "syncpipe lz4"               2 "$MIXED" "$SP -q process mixed.bin -o out/m.spipe -f --stages lz4 -T2" --out out/m.spipe --ratio
row lz4_peer   "lz4 mixed" "lz4 -1"                     1 "$MIXED" "lz4 -q -1 -c mixed.bin >out/m.lz4" --out out/m.lz4 --ratio
fi

if on passthrough; then
say "== passthrough, mixed.bin"
row pt_sp_t2   "passthrough mixed" "syncpipe passthrough"    2 "$MIXED" "$SP -q process mixed.bin -o out/m.spipe -f --stages passthrough -T2" --out out/m.spipe
row pt_sp_t2_c "passthrough mixed" "syncpipe passthrough -c" 2 "$MIXED" "$SP -q process mixed.bin -c --stages passthrough -T2 >out/m.spipe" --out out/m.spipe --note "stdout, no fsync"
row pt_cp      "passthrough mixed" "cp"                      1 "$MIXED" "cp mixed.bin out/cp.bin" --out out/cp.bin
fi

if on restore; then
say "== restore (MB/s of decompressed bytes)"
warm out/keep.*
row rs_sp_t2   "restore mixed" "syncpipe restore (zstd:3)"    2 "$MIXED" "$SP -q restore out/keep.spipe -o out/r.bin -f -T2" --out out/r.bin
row rs_sp_t2_c "restore mixed" "syncpipe restore (zstd:3) -c" 2 "$MIXED" "$SP -q restore out/keep.spipe -c -T2 >out/r.bin" --out out/r.bin --note "stdout, no fsync"
row rs_zstd    "restore mixed" "zstd -d (of -3)"              1 "$MIXED" "zstd -q -d -c out/keep.zst >out/r.bin" --out out/r.bin
row rs_sp_n    "restore mixed, to /dev/null" "syncpipe restore (zstd:3) -c" 2 "$MIXED" "$SP -q restore out/keep.spipe -c -T2 >/dev/null"
row rs_zstd_n  "restore mixed, to /dev/null" "zstd -d (of -3)"              1 "$MIXED" "zstd -q -d -c out/keep.zst >/dev/null"
fi

if on random; then
say "== random.bin (incompressible)"
warm random.bin
row rnd_sp_t2   "zstd -3 random" "syncpipe zstd:3" 2 "$RANDOM_SIZE" "$SP -q process random.bin -o out/r.spipe -f --stages zstd:3 -T2" --out out/r.spipe --ratio
row rnd_zstd_t2 "zstd -3 random" "zstd -3"         2 "$RANDOM_SIZE" "zstd -q -3 -T2 -c random.bin >out/r.zst" --out out/r.zst --ratio
fi

if on rss; then
say "== peak RSS flatness"
warm rss-64MiB.bin
row rss_64m "peak RSS" "syncpipe zstd:3, 64 MiB input" 2 "$RSS_SMALL_BYTES" "$SP -q process rss-64MiB.bin -o out/s.spipe -f --stages zstd:3 -T2" --out out/s.spipe --ratio
if [ "$BIG" != 0 ]; then
  warm big-2GiB.bin
  row rss_2g "peak RSS" "syncpipe zstd:3, 2 GiB input" 2 "$BIG_BYTES" "$SP -q process big-2GiB.bin -o out/s.spipe -f --stages zstd:3 -T2" --out out/s.spipe --ratio
fi
fi

if on chunks; then
say "== chunk size sweep (to /dev/null: the engine and the codec alone)"
warm mixed.bin
# Fixed sizes, then the two adaptive methods, which must find a good size
# without being told (the target: hillclimb within 5% of the best fixed size).
for st in zstd:3 lz4 passthrough; do
  tag=${st%%:*}
  for c in 64KiB 128KiB 256KiB 512KiB 1MiB 4MiB 16MiB filesize hillclimb; do
    case $c in
      filesize|hillclimb) flag="--chunk-method $c" ;;
      *) flag="--chunk-size $c" ;;
    esac
    row "ck_${tag}_$c" "chunk size, $st" "syncpipe $st ${flag#--}" 2 "$MIXED" "$SP -q process mixed.bin -c --stages $st -T2 $flag >out/c.spipe" --out out/c.spipe --ratio
  done
done
fi

if on reader; then
say "== reader: read(2) against a memory map (to /dev/null: the read side alone)"
warm mixed.bin
row rd_pt_buf  "reader mixed, to /dev/null" "syncpipe passthrough --reader buffered" 2 "$MIXED" "$SP -q process mixed.bin -c --stages passthrough -T2 --reader buffered >/dev/null"
row rd_pt_mmap "reader mixed, to /dev/null" "syncpipe passthrough --reader mmap"     2 "$MIXED" "$SP -q process mixed.bin -c --stages passthrough -T2 --reader mmap >/dev/null"
row rd_z3_buf  "reader mixed, to /dev/null" "syncpipe zstd:3 --reader buffered"      2 "$MIXED" "$SP -q process mixed.bin -c --stages zstd:3 -T2 --reader buffered >/dev/null"
row rd_z3_mmap "reader mixed, to /dev/null" "syncpipe zstd:3 --reader mmap"          2 "$MIXED" "$SP -q process mixed.bin -c --stages zstd:3 -T2 --reader mmap >/dev/null"
fi

if on crypto; then
say "== encryption, mixed.bin (syncpipe with a raw key file, as age -r needs no KDF)"
# Keys made fresh in out/ (emptied at every start); nothing secret is kept.
head -c 32 /dev/urandom >out/sp.key
printf 'compare.sh passphrase\n' >out/sp.pass
RCPT=none
if have age-keygen; then
  age-keygen -o out/age.key 2>/dev/null
  RCPT=$(age-keygen -y out/age.key)
fi
warm mixed.bin
ENC_A="--stages zstd:3,aes-256-gcm,sha256 -T2"
ENC_C="--stages lz4,chacha20-poly1305,blake3 -T2"
row enc_z3_ref  "encrypt mixed" "syncpipe zstd:3 (reference: no cipher, no checksum)" 2 "$MIXED" "$SP -q process mixed.bin -o out/e.spipe -f --stages zstd:3 -T2" --out out/e.spipe --ratio
row enc_z3_key  "encrypt mixed" "syncpipe zstd:3,aes-256-gcm,sha256"    2 "$MIXED" "$SP -q process mixed.bin -o out/e.spipe -f $ENC_A --key-file out/sp.key" --out out/e.spipe --ratio
row enc_z3_c    "encrypt mixed" "syncpipe zstd:3,aes-256-gcm,sha256 -c" 2 "$MIXED" "$SP -q process mixed.bin -c $ENC_A --key-file out/sp.key >out/e.spipe" --out out/e.spipe --ratio --note "stdout, no fsync"
row enc_z3_pass "encrypt mixed" "syncpipe zstd:3,aes-256-gcm,sha256 (passphrase)" 2 "$MIXED" "$SP -q process mixed.bin -o out/e.spipe -f $ENC_A --passphrase-file out/sp.pass" --out out/e.spipe --ratio --note "Argon2id m=64MiB,t=3,p=4 included"
row enc_z3_age  "encrypt mixed" "zstd -3 -T2 | age -r"                  2 "$MIXED" "zstd -q -3 -T2 -c mixed.bin | age -r $RCPT >out/e.age" --out out/e.age --ratio
row enc_lz4_key "encrypt mixed" "syncpipe lz4,chacha20-poly1305,blake3" 2 "$MIXED" "$SP -q process mixed.bin -o out/e.spipe -f $ENC_C --key-file out/sp.key" --out out/e.spipe --ratio
row enc_lz4_age "encrypt mixed" "lz4 -1 | age -r"                       2 "$MIXED" "lz4 -q -1 -c mixed.bin | age -r $RCPT >out/e.age" --out out/e.age --ratio
say "== decryption (MB/s of restored bytes)"
"$BIN" -q process mixed.bin -o out/keep-e.spipe -f $ENC_A --key-file out/sp.key
if have age && have zstd; then zstd -q -3 -T2 -c mixed.bin | age -r "$RCPT" >out/keep-e.age; fi
warm out/keep-e.*
row dec_z3_key  "decrypt mixed" "syncpipe restore (zstd:3,aes-256-gcm,sha256)" 2 "$MIXED" "$SP -q restore out/keep-e.spipe -o out/d.bin -f -T2 --key-file out/sp.key" --out out/d.bin
row dec_z3_age  "decrypt mixed" "age -d | zstd -d"                             2 "$MIXED" "age -d -i out/age.key out/keep-e.age | zstd -q -d -c >out/d.bin" --out out/d.bin
rm -f out/keep-e.spipe out/keep-e.age
fi

rm -f out/keep.spipe out/keep.zst
# ---------------------------------------------------------------- table
echo
python3 "$DIR/.compare-harness.py" report --tsv "$TSV"
