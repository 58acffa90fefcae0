"""A module PEFT needs and this environment lacks is reported as missing, with the install that fixes it."""

from __future__ import annotations

import importlib

import pytest

from peftrun.builders.peft import missing_module


def real_import_error(module: str) -> ImportError:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return exc
    raise AssertionError(f"{module} imported")


@pytest.mark.parametrize("module,fix", [
    ("peftrun_no_such_extra_module", "pip install peftrun_no_such_extra_module"),
])
def test_an_unknown_module_is_installed_by_its_name(module: str, fix: str) -> None:
    message = missing_module("LoraConfig", real_import_error(module))
    assert message == (f"PEFT's LoraConfig needs {module} for these settings, which is not installed "
                       f"(No module named '{module}'): {fix}")


def test_a_module_of_an_extra_names_the_extra() -> None:
    exc = ImportError("No module named 'sklearn'", name="sklearn")
    assert missing_module("AdamssConfig", exc).endswith(": pip install 'peftrun[adamss]'")
    assert "refuses" not in missing_module("AdamssConfig", exc)
