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


def check_can_push(repo_id: str) -> None:
    """Fail before training, not after it, when output.push_to_hub cannot work."""
    from peftrun.errors import HubError

    if offline() or not hub_reachable():
        raise HubError(
            f"output.push_to_hub: the hub is not reachable from here, so {repo_id} could not be pushed after "
            "training; set output.push_to_hub: false (push later with `hf upload`) or run where the hub is reachable"
        )
    from huggingface_hub import get_token

    if get_token() is None:
        raise HubError("output.push_to_hub: no Hugging Face token; run `hf auth login` or set HF_TOKEN")


# What a pushed repository holds: the adapter (or model), its tokenizer, card and recipe; not checkpoints,
# the merged copy or the manifest (host details).
PUSHED_FILES = ["adapter_*", "*.safetensors", "config.json", "generation_config.json", "tokenizer*",
                "special_tokens_map.json", "chat_template.jinja", "README.md", "recipe.resolved.yaml", "loss.png"]


def push_run(run_dir: Path, repo_id: str) -> None:
    """Upload a finished run's adapter with peftrun's card to the hub."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(run_dir), allow_patterns=PUSHED_FILES,
                      ignore_patterns=["checkpoint-*", "merged/*"], commit_message="Upload adapter trained with peftrun")
    print(f"pushed {run_dir} to https://huggingface.co/{repo_id}")
