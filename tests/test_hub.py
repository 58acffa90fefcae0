"""Offline mode: the CLI decides it for its process; `offline_scope` decides it for one call and then gives the
caller's environment and the libraries' flags back, those of a library first imported inside the call too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants

from peftrun import hub


def test_the_scope_is_offline_inside_and_gives_the_callers_state_back(unreachable_hub: None) -> None:
    with hub.offline_scope() as offline:
        assert offline is True
        assert os.environ["HF_HUB_OFFLINE"] == "1"
        assert huggingface_hub.is_offline_mode() is True  # what transformers asks
    assert "HF_HUB_OFFLINE" not in os.environ
    assert huggingface_hub.is_offline_mode() is False


def test_the_scope_gives_the_state_back_after_an_error(unreachable_hub: None) -> None:
    with pytest.raises(KeyError), hub.offline_scope():
        raise KeyError("inside")
    assert "HF_HUB_OFFLINE" not in os.environ
    assert constants.HF_HUB_OFFLINE is False


def test_the_users_own_setting_wins_and_is_kept(unreachable_hub: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with hub.offline_scope() as offline:
        assert offline is False
        assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_an_inner_scope_keeps_the_outer_decision(unreachable_hub: None) -> None:
    with hub.offline_scope():
        with hub.offline_scope() as inner:
            assert inner is True
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ


def test_the_cli_decision_holds_for_the_process(unreachable_hub: None) -> None:
    assert hub.ensure_offline_mode() is True
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert constants.HF_HUB_OFFLINE is True


def test_a_library_imported_inside_the_scope_reads_the_callers_setting_after_it(tmp_path: Path) -> None:
    """datasets computes its flag once, at import: imported inside the scope, it is set back when the scope ends."""
    script = (
        "import socket, sys\n"
        "from peftrun import hub\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); hub.HUB_HOST = s.getsockname(); s.close()\n"
        "with hub.offline_scope():\n"
        "    import datasets.config\n"
        "    inside = datasets.config.HF_HUB_OFFLINE\n"
        "print(inside, datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                              "HF_DATASETS_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "False", "False"]
