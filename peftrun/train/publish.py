"""Publishing a finished run to the Hugging Face Hub (output.push_to_hub)."""

from __future__ import annotations

from pathlib import Path

from peftrun.hub import hub_reachable, offline


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


def push_run(run_dir: Path, repo_id: str, private: bool = True) -> None:
    """Upload a finished run's adapter with peftrun's card to the hub; a repository it creates is private
    unless the recipe says `output.private: false`."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(run_dir), allow_patterns=PUSHED_FILES,
                      ignore_patterns=["checkpoint-*", "merged/*"], commit_message="Upload adapter trained with peftrun")
    print(f"pushed {run_dir} to https://huggingface.co/{repo_id}")
