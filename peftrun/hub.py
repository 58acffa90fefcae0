"""Hub reachability: decide offline mode before huggingface_hub reads it, so nothing hangs on retries.

The CLI decides once for its process (`ensure_offline_mode`); the Python API decides for the duration of a
call (`offline_scope`) and leaves its caller's environment and libraries as they were.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

HUB_HOST = ("huggingface.co", 443)


def hub_reachable(timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


# The flags the libraries compute once, when they are imported, from the environment (huggingface_hub/constants.py
# HF_HUB_OFFLINE, read by transformers through `is_offline_mode()`; datasets/config.py HF_HUB_OFFLINE and its alias
# HF_DATASETS_OFFLINE); peft reads the variable itself.
LIBRARY_FLAGS = (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                 ("datasets.config", "HF_DATASETS_OFFLINE"))


def ensure_offline_mode() -> bool:
    """Set HF_HUB_OFFLINE=1 when the hub cannot be reached (unless the user set it), in the environment and in
    the libraries imported already. True when offline. For the whole process: the API uses `offline_scope`."""
    if "HF_HUB_OFFLINE" not in os.environ and not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
        _set_flags(dict.fromkeys(LIBRARY_FLAGS, True))
    return offline()


@contextmanager
def offline_scope() -> Iterator[bool]:
    """Offline mode decided once (`ensure_offline_mode`) and in force until the block ends; then HF_HUB_OFFLINE
    and the libraries' flags are the caller's again, those of a library first imported inside the block too.
    Yields True when offline. A scope inside another one keeps the outer one's decision."""
    before = {flag: _flag(flag) for flag in LIBRARY_FLAGS}
    variable = os.environ.get("HF_HUB_OFFLINE")
    try:
        yield ensure_offline_mode()
    finally:
        if variable is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = variable
        callers = _callers_flags()
        _set_flags({flag: callers[flag] if value is _UNLOADED else value for flag, value in before.items()})


_UNLOADED = object()  # the flag's library was not imported


def _flag(flag: tuple[str, str]) -> object:
    module = sys.modules.get(flag[0])
    return getattr(module, flag[1], _UNLOADED) if module is not None else _UNLOADED


def _set_flags(values: dict[tuple[str, str], object]) -> None:
    for (module_name, name), value in values.items():
        if (module := sys.modules.get(module_name)) is not None and hasattr(module, name):
            setattr(module, name, value)


def _callers_flags() -> dict[tuple[str, str], bool]:
    """The flags as the libraries compute them at import from the caller's environment (same sources as above)."""
    hub = _true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))
    datasets = hub if (own := os.environ.get("HF_DATASETS_OFFLINE")) is None else _true(own)
    return dict(zip(LIBRARY_FLAGS, (hub, datasets, datasets)))


def offline() -> bool:
    return _true(os.environ.get("HF_HUB_OFFLINE"))


def _true(value: str | None) -> bool:
    """A variable's value as huggingface_hub and datasets read a boolean."""
    return (value or "").upper() in ("1", "ON", "YES", "TRUE")


def is_local(name_or_path: str) -> bool:
    return os.path.exists(os.path.expanduser(name_or_path))


def offline_message(what: str, name: str) -> str:
    """The error text for a hub id that is neither local nor cached while offline."""
    return (
        f"{what} {name!r} is not a local path and is not in the Hugging Face cache, and the hub is "
        f"offline (HF_HUB_OFFLINE=1). Download it where the hub is reachable "
        f"(`hf download {name}` for a model) and copy the cache, or point the recipe at a local path."
    )

