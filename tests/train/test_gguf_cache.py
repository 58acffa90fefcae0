"""The GGUF cache: keyed by the file's content, reused without loading anything, never half-written.
(The conversion itself runs on the real SmolLM2 GGUF in `make quickstart`.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from peftrun.train import gguf_cache


def test_fingerprint_follows_the_content(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"a" * 3_000_000)
    first = gguf_cache.gguf_fingerprint(path)
    assert gguf_cache.gguf_fingerprint(path) == first
    path.write_bytes(b"a" * 2_999_999 + b"b")  # the last MiB changed
    assert gguf_cache.gguf_fingerprint(path) != first


def test_an_existing_entry_is_reused_without_converting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models").mkdir()
    source = tmp_path / "models" / "m.gguf"
    source.write_bytes(b"gguf")
    entry = tmp_path / "cache" / gguf_cache.cache_key(source, "m.gguf")
    entry.mkdir(parents=True)
    (entry / gguf_cache.MARKER).write_text("{}")
    monkeypatch.setattr(gguf_cache, "_convert", lambda *a: pytest.fail("must not convert again"))
    assert gguf_cache.cached_gguf_model_dir(str(tmp_path / "models"), "m.gguf", tmp_path / "cache") == entry


def test_a_failed_conversion_leaves_no_entry(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.gguf").write_bytes(b"not a gguf file")
    with pytest.raises(Exception):  # transformers cannot read it
        gguf_cache.cached_gguf_model_dir(str(tmp_path / "models"), "m.gguf", tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="m.gguf is not in"):
        gguf_cache.cached_gguf_model_dir(str(tmp_path), "m.gguf", tmp_path / "cache")
