"""Hub reachability: decide offline mode before huggingface_hub reads it, so nothing hangs on retries."""

from __future__ import annotations

import os
import socket
from pathlib import Path

HUB_HOST = ("huggingface.co", 443)


def hub_reachable(timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def ensure_offline_mode() -> bool:
    """Set HF_HUB_OFFLINE=1 when the hub cannot be reached (unless the user set it). True when offline.

    Must run before huggingface_hub is imported: it reads the variable once.
    """
    if "HF_HUB_OFFLINE" not in os.environ and not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
    return offline()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def is_local(name_or_path: str) -> bool:
    return os.path.exists(os.path.expanduser(name_or_path))


def offline_message(what: str, name: str) -> str:
    """The error text for a hub id that is neither local nor cached while offline."""
    return (
        f"{what} {name!r} is not a local path and is not in the Hugging Face cache, and the hub is "
        f"offline (HF_HUB_OFFLINE=1). Download it where the hub is reachable "
        f"(`hf download {name}` for a model) and copy the cache, or point the recipe at a local path."
    )

