#!/usr/bin/env bash
# Seeds the fuzz corpora from real containers: the golden files of
# tests/data/ (every codec, checksum and cipher the format knows). libFuzzer
# mutates from there, so it starts deep inside valid containers instead of
# having to discover the magic and the CRCs by chance.
set -euo pipefail
cd "$(dirname "$0")"
data=../tests/data
for target in container header encrypted_container zst gz age; do
    mkdir -p "corpus/$target"
done
for f in "$data"/*.spipe; do
    name=$(basename "$f")
    cp "$f" "corpus/container/$name"
    cp "$f" "corpus/header/$name"
    case "$name" in
        *v2-*) cp "$f" "corpus/encrypted_container/$name" ;;
    esac
done
# The .zst golden files: syncpipe's own (seek table) and zstd's (one
# frame, a stream of unknown size, frames concatenated).
for f in "$data"/*.zst; do
    cp "$f" "corpus/zst/$(basename "$f")"
done
# The .gz golden files: syncpipe's gz and bgzf, gzip's (one member, two
# members), pigz's and bgzip's.
for f in "$data"/*.gz; do
    cp "$f" "corpus/gz/$(basename "$f")"
done
# The .age golden files: age's (X25519, scrypt, empty, a last full
# piece, a .zst inside) and syncpipe's.
for f in "$data"/*.age; do
    cp "$f" "corpus/age/$(basename "$f")"
done
echo "seeded from $(ls "$data"/*.spipe | wc -l) golden containers, $(ls "$data"/*.zst | wc -l) .zst files and $(ls "$data"/*.gz | wc -l) .gz files"
