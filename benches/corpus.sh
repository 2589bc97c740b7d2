#!/usr/bin/env bash
# corpus.sh [DIR]: prepare the Linux kernel source as the scenarios' real
# corpus (DIR default /tmp/syncpipe-corpus):
#   DIR/linux-source-6.1.tar   xz -dc of /usr/src/linux-source-6.1.tar.xz (~1.3 GB)
#   DIR/linux-tree/            the tarball extracted (~78k files, ~1.2 GB)
# Needs Debian's linux-source-6.1 package (`apt-get install linux-source-6.1`),
# xz and tar; about a minute on 2 cores, 2.5 GB of disk. Made once: a rerun
# finds the marker files and does nothing. The scenario scripts call the
# same code (benches/scenario_lib.py) when run with CORPUS=linux.
set -euo pipefail
exec python3 "$(dirname "$0")/scenario_lib.py" corpus "${1:-/tmp/syncpipe-corpus}"
