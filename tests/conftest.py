"""Shared fixtures: a tiny random model and tokenizer on disk, data files, and recipe writing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests import tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-llama")
    tiny.build_tokenizer(directory)
    tiny.build_model(directory)
    return directory


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    tiny.write_jsonl(directory / "sft.jsonl", tiny.sft_rows())
    tiny.write_jsonl(directory / "pref.jsonl", tiny.preference_rows())
    tiny.write_jsonl(directory / "prompts.jsonl", tiny.prompt_rows())
    tiny.write_jsonl(directory / "text.jsonl", tiny.text_rows())
    return directory


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from a fresh directory (relative paths, runs/ land there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_recipe(tmp_path: Path):  # noqa: ANN201
    def write(data: dict[str, Any], name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub probe aims at a local port nothing listens on (refused at once), and the caller has not set
    HF_HUB_OFFLINE: offline mode is peftrun's own decision (peftrun/hub.py)."""
    import socket

    from huggingface_hub import constants

    from peftrun import hub

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setattr(hub, "HUB_HOST", closed.getsockname())
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that builds or loads a model is `slow` (`make test-fast` runs the others: `-m "not slow"`)."""
    for item in items:
        if "tiny_model_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
