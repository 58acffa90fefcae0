"""A converted-once cache for GGUF checkpoints.

transformers loads a GGUF file by dequantizing every tensor, which takes about
14 s for a 135M-parameter model on two CPU cores, and the model it returns can
be neither saved nor trained until its GGUF quantizer is detached. This module
does that work once and keeps the result as an ordinary transformers model
directory (safetensors + config + tokenizer) that reloads in well under a
second:

    path = cached_gguf_model_dir("models/smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                 Path(".cache/peftrun/gguf"))
    model = AutoModelForCausalLM.from_pretrained(path)

The cache key is a fingerprint of the GGUF file (size and a hash of its first
and last MiB) plus the transformers version that dequantized it, so a new or
replaced file, or a transformers upgrade, converts again. Entries are written
to a temporary directory and renamed into place, so a crash or a concurrent
run never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

MARKER = "peftrun-gguf-cache.json"
_CHUNK = 1 << 20


def resolve_gguf_path(name_or_path: str, gguf_file: str) -> Path:
    """The GGUF file on local disk: inside a local directory, or in the hub cache."""
    local = Path(name_or_path) / gguf_file
    if local.is_file():
        return local
    if Path(name_or_path).is_dir():
        raise FileNotFoundError(f"{gguf_file} is not in {name_or_path}")
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(name_or_path, gguf_file))


def gguf_fingerprint(path: Path) -> str:
    """Size plus sha256 of the first and last MiB: cheap, and changes when the file does."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(_CHUNK))
        if size > _CHUNK:
            f.seek(max(size - _CHUNK, _CHUNK))
            digest.update(f.read(_CHUNK))
    return digest.hexdigest()[:16]


def cache_key(source: Path, gguf_file: str) -> str:
    import transformers

    return f"{Path(gguf_file).stem}-{gguf_fingerprint(source)}-tf{transformers.__version__}"


def cached_gguf_model_dir(name_or_path: str, gguf_file: str, cache_root: Path) -> Path:
    """Return a directory holding the dequantized model and its tokenizer.

    Converts on the first call (load with ``gguf_file=``, detach the GGUF
    quantizer, ``save_pretrained`` model and tokenizer); later calls for the same
    file return the existing directory without loading any model.
    """
    source = resolve_gguf_path(name_or_path, gguf_file)
    key = cache_key(source, gguf_file)
    target = Path(cache_root) / key
    if (target / MARKER).is_file():
        return target
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_root))
    try:
        _convert(source, gguf_file, tmp)
        _publish(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(source: Path, gguf_file: str, out: Path) -> None:
    """Dequantize the GGUF checkpoint into an ordinary transformers model directory."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    if getattr(model, "hf_quantizer", None) is not None:
        # As loaded, the model is "quantized with gguf and not serializable" (nor trainable).
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    marker = {"source": str(source.resolve()), "gguf_file": gguf_file, "size": source.stat().st_size,
              "transformers": transformers.__version__}
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished entry into place; a concurrent run that got there first wins."""
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the entry should look like any other dir
    try:
        os.rename(tmp, target)
    except OSError:
        if not (target / MARKER).is_file():  # a stale entry without its marker is in the way
            shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)
