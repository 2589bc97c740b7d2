#!/usr/bin/env bash
# before_after.sh: two builds of syncpipe on the same inputs, interleaved, so
# that a change which should not move throughput can be shown not to on a
# machine whose speed drifts (a whole sync_vs_async.sh run per build can
# differ by 2x on a shared VM; rounds that alternate the builds cannot).
#
# Usage:  BEFORE_BIN=old/syncpipe AFTER_BIN=new/syncpipe benches/before_after.sh [DIR]
#   DIR    folder whose *.bin and *.tar files are the inputs (default
#          /tmp/syncpipe-bench, as made by benches/sync_vs_async.sh)
#   ROUNDS rounds (default 7); each runs every input x stage list with both
#          builds back to back, the order of the two alternating by round
#   STAGES ';'-separated stage lists (default the sync_vs_async.sh lists
#          without gzip); lists that encrypt use a random raw key file
#   THREADS -T for both (default 2)
# Prints one Markdown row per input x stage list: median MB/s (input bytes /
# 1e6 / wall s) and median CPU s (user+sys, wait4) of each build, and the
# after/before ratio of MB/s. Outputs go to a temp folder, removed at exit.
set -euo pipefail
: "${BEFORE_BIN:?set BEFORE_BIN to the old binary}" "${AFTER_BIN:?set AFTER_BIN to the new binary}"
DIR=${1:-/tmp/syncpipe-bench}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
head -c 32 /dev/urandom > "$WORK/key"
python3 - "$DIR" "$WORK" "${ROUNDS:-7}" "${THREADS:-2}" \
  "${STAGES:-zstd:3,aes-256-gcm,sha256;lz4,chacha20-poly1305,blake3;zstd:3}" <<'PY'
import os, statistics, subprocess, sys, time
d, work, rounds, threads, stages = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
bins = {"before": os.environ["BEFORE_BIN"], "after": os.environ["AFTER_BIN"]}
inputs = sorted(f for f in os.listdir(d) if f.endswith((".bin", ".tar")))
if not inputs:
    sys.exit(f"no *.bin or *.tar inputs in {d}")
lists = stages.split(";")
runs = {}
for r in range(rounds):
    order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
    for name in inputs:
        path = os.path.join(d, name)
        for st in lists:
            for b in order:
                cmd = [bins[b], "process", path, "-o", os.path.join(work, "out"), "-f", "-q",
                       "-s", st, "-T", threads]
                if "aes" in st or "chacha" in st:
                    cmd += ["--key-file", os.path.join(work, "key")]
                t0 = time.monotonic()
                p = subprocess.Popen(cmd)
                _, status, ru = os.wait4(p.pid, 0)
                wall = time.monotonic() - t0
                if status != 0:
                    sys.exit(f"{' '.join(cmd)}: exit status {status}")
                runs.setdefault((name, st, b), []).append(
                    (os.path.getsize(path) / 1e6 / wall, ru.ru_utime + ru.ru_stime))
print(f"{rounds} interleaved rounds, -T {threads}\n")
print("| input | stages | before MB/s | after MB/s | after/before | before CPU s | after CPU s |")
print("|---|---|---|---|---|---|---|")
for name in inputs:
    for st in lists:
        med = lambda b, i: statistics.median(x[i] for x in runs[(name, st, b)])
        print(f"| {name} | {st} | {med('before', 0):.1f} | {med('after', 0):.1f} | "
              f"{med('after', 0) / med('before', 0):.2f} | {med('before', 1):.2f} | {med('after', 1):.2f} |")
PY
