#!/usr/bin/env bash
# scenario_io.sh: scenario 2, I/O-bound large sequential reads. Throughput
# against the IO tokens (the queue depth of reads in flight), page cache
# dropped before every run, the knee marked: the smallest depth within 10%
# of the best. A wrapper over benches/io_queue_depth.sh (which does the
# sweep: `syncpipe verify -r` of FILES passthrough containers as one batch,
# --io-tokens QD, 48 files in flight), with the scenario's plot path and
# corpus choice.
#
# Usage:  benches/scenario_io.sh [DIR]     (DIR default /tmp/syncpipe-scen-io;
#         on a disk, not tmpfs: the point is the device)
#
# Env:
#   CORPUS=generated   or linux: the containers are cut from the kernel
#                      tarball (benches/corpus.sh; FILES x FILE_MB must fit
#                      in its 1.3 GB) instead of make_mixed.py's data
#   FILES=16 FILE_MB=64 RUNS=3 DEPTHS="1 2 4 8 12 24 48"
#   SVG=docs/scenario-2-io.svg   SYNCPIPE_BIN= (skip the build)
# Output: the table on stdout (MB/s median and min-max per depth, the knee),
# DIR/io_queue_depth.tsv, the SVG.
# Needs python3. At the defaults 21 runs of 1 GiB of cold-ish reads: 19 s
# in all on the development VM (a virtual disk read at 1-2 GB/s, the
# containers' generation included), about a minute at 500 MB/s, much longer
# on a rotational disk (2 GiB of disk while the containers are made, 1 GiB
# kept).
# On a virtual disk whose host caches the image, "cold" reads are served
# from the host's memory and the curve is flat: a real NVMe or rotational
# disk is where the knee means something (docs/scenarios.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-scen-io}
CORPUS=${CORPUS:-generated}
export SVG=${SVG:-docs/scenario-2-io.svg}
case $CORPUS in
  linux)
    tar=$(python3 "$ROOT/benches/scenario_lib.py" corpus "${CORPUS_DIR:-/tmp/syncpipe-corpus}" | head -1)
    export SEED=$tar ;;
  generated) unset SEED ;;
  *) echo "scenario_io.sh: CORPUS is generated or linux" >&2; exit 2 ;;
esac
echo "scenario 2, I/O-bound: large sequential reads, corpus $CORPUS"
echo
exec "$ROOT/benches/io_queue_depth.sh" "$DIR"
