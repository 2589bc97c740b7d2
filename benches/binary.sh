# binary.sh: sourced by the bench scripts. Sets BIN to the syncpipe binary
# to measure: $SYNCPIPE_BIN when given (made absolute), else a fresh
# `cargo build --release` of the crate at $ROOT, found through `cargo
# metadata` so that CARGO_TARGET_DIR is respected. Exits 2 if none.
if [ -n "${SYNCPIPE_BIN:-}" ]; then
  BIN=$(cd "$(dirname "$SYNCPIPE_BIN")" && pwd)/$(basename "$SYNCPIPE_BIN")
else
  echo "building: cargo build --release (in $ROOT)" >&2
  (cd "$ROOT" && cargo build --release --quiet --bin syncpipe)
  BIN=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/syncpipe
fi
[ -x "$BIN" ] || { echo "no syncpipe binary at $BIN" >&2; exit 2; }
