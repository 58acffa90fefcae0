"""The trust model: which recipe settings execute code, read local files, write outside the run directory or
publish, and the rule that switches them on (docs/trust.md, generated from `table()`).

A capability is honoured only when its value and its provenance come from the user's own top recipe file
or the command line: a base (shipped, git or another local file), an import or a value whose provenance is
unknown is foreign. A value built by an interpolation is trusted only when every key it reads is too.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from peftrun.errors import Problem
from peftrun.hub import is_local
from peftrun.recipe.defaults import SHIPPED_REWARDS
from peftrun.recipe.interpolation import Expr

KINDS = {
    "execute": "runs code on this machine",
    "read": "reads a local file",
    "write": "writes outside the run directory",
    "publish": "sends the run or its data off this machine",
    "load": "loads model files (their code runs only with trust_remote_code)",
}
GATED = ("execute", "read", "write", "publish")  # "load" is allowed from a base
HUB_KERNEL = re.compile(r"^[^/:]+/[^/:]+(?:@[^/:]+)?(?::[^/:]+)?$")
LOCAL_HOSTS = ("0.0.0.0", "localhost", "127.0.0.1", "::1", "")  # TRL's vllm_server_host default is 0.0.0.0


def _truthy(value: Any) -> bool:
    """True as pydantic reads a bool: true, 1, "yes", "on", ..."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on", "t", "y")
    return value is True or (isinstance(value, (int, float)) and value == 1)


TRUSTED_MODULES = ("peftrun", "trl")  # reward functions shipped with the code that runs anyway


def _own_reward(name: str) -> bool:
    return name in SHIPPED_REWARDS or name.split(":")[0].split(".")[0] in TRUSTED_MODULES


def _foreign_rewards(value: Any) -> bool:
    return isinstance(value, list) and any(not _own_reward(str(r)) for r in value)


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _local(value: Any) -> bool:
    """A local file or folder (not a hub id): anything that exists here, or that looks like a path."""
    if isinstance(value, list):
        return any(_local(v) for v in value)
    if isinstance(value, Mapping):
        return any(_local(v) for v in value.values())
    return isinstance(value, str) and (is_local(value) or not HUB_ID.match(value) or ".." in value)


def _outside(value: Any) -> bool:
    """A run directory outside the working directory, or in a hidden folder of it (.git, .ssh, ...)."""
    parts = Path(str(value)).parts
    return str(value).startswith(("/", "~")) or any(p == ".." or p.startswith(".") and p != "." for p in parts)


def _hub_kernel(value: Any) -> bool:
    """transformers 5 loads `org/name[@rev][:fn]` (optionally after `paged|`) from the hub with `kernels`
    (integrations/hub_kernels.py is_kernel)."""
    return isinstance(value, str) and HUB_KERNEL.search(value.split("|")[-1]) is not None


def _remote(value: Any) -> bool:
    return str(value).strip().lower() not in LOCAL_HOSTS


def _set(value: Any) -> bool:
    return value not in (None, False, "", [], {})


def _reports(value: Any) -> bool:
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return any(str(n).lower() not in ("none", "") for n in names)


@dataclass(frozen=True)
class Capability:
    kind: str
    what: str  # what the field does, for the docs and the error
    active: Callable[[Any], bool]  # the value switches the capability on
    when: str  # when it counts as switched on, for the docs


# Field name -> capability, in whatever section (and trainer type, PEFT method) the schema has it.
BY_NAME: dict[str, Capability] = {
    "trust_remote_code": Capability("execute", "runs the Python code of a model repository", _truthy, "true"),
    "reward_funcs": Capability("execute", "imports and calls the named Python functions", _foreign_rewards,
                               "names a function that is not peftrun's own"),
    "attn_implementation": Capability("execute", "a hub repository (`org/name`) is a compiled kernel transformers "
                                      "downloads and runs", _hub_kernel, "a hub kernel repository"),
    "tokenizer_kwargs": Capability("execute", "keyword arguments of a tokenizer load (may hold trust_remote_code)",
                                   _set, "set"),
    "data_files": Capability("read", "reads the named local files as data", _local, "a local path"),
    "path": Capability("read", "reads a local data file or folder", _local, "a local path"),
    "chat_template": Capability("read", "reads a .jinja file as the chat template",
                                lambda v: isinstance(v, str) and v.endswith(".jinja"), "a .jinja path"),
    "chat_template_path": Capability("read", "reads a chat template file", _set, "set"),
    "accelerator_config": Capability("read", "a string is read as a JSON file", lambda v: isinstance(v, str), "a path"),
    "accelerate_config": Capability("read", "reads an accelerate config file", _set, "set"),
    "prompt_tuning_init_state_dict_path": Capability("read", "loads a state dict file", _set, "set"),
    "covariance_file": Capability("read", "loads a covariance file", _set, "set"),
    "cache_file": Capability("write", "writes a cache file", _set, "set"),
    "cache_dir": Capability("write", "writes the datasets cache there", _set, "set"),
    "dir": Capability("write", "chooses where the run writes", _outside, "absolute, `~`, `..` or a hidden folder"),
    "push_to_hub": Capability("publish", "uploads the run to the Hugging Face Hub", _truthy, "true"),
    "hub_model_id": Capability("publish", "the repository the run is uploaded to", _set, "set"),
    "private": Capability("publish", "the visibility of the uploaded repository",
                          lambda v: v is False, "false (public)"),
    "hub_private_repo": Capability("publish", "TRL's visibility of a hub repository", _set, "set"),
    "hub_strategy": Capability("publish", "TRL's upload schedule", _set, "set"),
    "hub_revision": Capability("publish", "TRL's upload branch", _set, "set"),
    "hub_always_push": Capability("publish", "TRL's upload schedule", _truthy, "true"),
    "report_to": Capability("publish", "sends metrics to tracking services", _reports, "not none"),
    "log_completions_hub_repo": Capability("publish", "uploads generated completions", _set, "set"),
    "vllm_server_base_url": Capability("publish", "sends prompts to a server", _set, "set"),
    "vllm_server_host": Capability("publish", "sends prompts and the trained weights to a vLLM server on that host",
                                   _remote, "a host other than this machine"),
    "name_or_path": Capability("load", "the model (or dataset source) to load", _set, "set"),
    "tokenizer": Capability("load", "the tokenizer to load", _set, "set"),
    "tokenizer_name_or_path": Capability("load", "the tokenizer to load", _set, "set"),
    "gguf_file": Capability("load", "a GGUF file of the model", _set, "set"),
    "teacher_model_name_or_path": Capability("load", "the teacher model to load", _set, "set"),
}
ANYWHERE = ("trust_remote_code",)  # also counted inside mappings (e.g. generation_kwargs, dataset_kwargs)

# Names that look capability-bearing but are not: each with why (tests/security checks the schema against
# SUSPECT, so a new field is classified in BY_NAME or here).
_IN_RUN = "weights or logs inside the run directory"
_OPTIONS = "options of an installed library (trust_remote_code inside is still caught)"
HARMLESS: dict[str, str] = {
    "save": _IN_RUN, "save_on_each_node": _IN_RUN, "save_only_model": _IN_RUN, "save_steps": _IN_RUN,
    "save_strategy": _IN_RUN, "save_total_limit": _IN_RUN, "save_indices": _IN_RUN, "save_projection": _IN_RUN,
    "save_only_topk_weights": _IN_RUN, "save_precomputed_indices": _IN_RUN, "modules_to_save": _IN_RUN,
    "log_completions": _IN_RUN, "log_level": _IN_RUN, "log_level_replica": _IN_RUN, "log_multimodal": _IN_RUN,
    "log_on_each_node": _IN_RUN, "log_unique_prompts": _IN_RUN, "precompute_ref_log_probs": _IN_RUN,
    "revision": "a revision of the model named elsewhere",
    "teacher_model_revision": "a revision of the teacher named elsewhere",
    "chat_template_kwargs": _OPTIONS, "dataset_kwargs": _OPTIONS, "generation_kwargs": _OPTIONS,
    "activation_checkpointing_kwargs": _OPTIONS, "lr_scheduler_kwargs": _OPTIONS, "liger_kernel_config": _OPTIONS,
    "transformers_continuous_batching_config": _OPTIONS, "megatron_config": _OPTIONS, "target_svd_config": _OPTIONS,
    "config_A_B": _OPTIONS, "config_C": _OPTIONS, "config_D_E": _OPTIONS,
    "module_dropout": "a dropout rate",
    "vllm_server_port": "a port of the vLLM server named by vllm_server_host",
    "vllm_server_timeout": "how long to wait for the vLLM server named by vllm_server_host",
    "restore_callback_states_from_checkpoint": "the callbacks peftrun sets itself",
}
SUSPECT = re.compile(r"(^|_)(remote|code|funcs?|callbacks?|path|files?|dir|template|hub|push|script|url|host|server|repo|"
                     r"report|plugins?|private|kwargs|config|import|module|tokenizer|save|log)(_|$)")


def _variants(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _variants(arg)


def schema_fields(model: type[BaseModel] | None = None, prefix: str = "") -> dict[str, set[str]]:
    """Every leaf field of the recipe schema: dotted path (lists as `*`) -> the section variants having it."""
    if model is None:
        from peftrun.recipe.schema import Recipe

        model = Recipe
    out: dict[str, set[str]] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        subs = list(_variants(info.annotation))
        if not subs:
            out.setdefault(path, set()).add(model.__name__)
        origin = typing.get_origin(info.annotation)
        inner = f"{path}.*" if origin is list or any(typing.get_origin(a) is list for a in typing.get_args(info.annotation)) else path
        for sub in subs:
            for key, owners in schema_fields(sub, inner if sub is not model else path).items():
                out.setdefault(key, set()).update(owners)
    return out


def table() -> list[tuple[str, Capability, list[str]]]:
    """(path, capability, the section variants it applies to) for every capability-bearing field."""
    rows = [(p, BY_NAME[p.split(".")[-1]], sorted(o)) for p, o in schema_fields().items() if p.split(".")[-1] in BY_NAME]
    return sorted(rows, key=lambda r: (list(KINDS).index(r[1].kind), r[0]))


def _pattern(path: str) -> str:
    return ".".join("*" if part.isdigit() else part for part in path.split("."))


def _leaves(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from _leaves(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _leaves(value, f"{prefix}.{i}")


FILE_SOURCE = re.compile(r":\d+:\d+( \(.*\))?$")  # "file:line:col" or "label:line:col (commit ...)"


class Provenance:
    """Whether a value comes from the user's own top file (`top`) or the command line, through references."""

    def __init__(self, sources: Mapping[str, str], exprs: Mapping[str, Expr], top: str | None,
                 own: Iterable[str] = ()) -> None:
        self.sources, self.exprs, self.top = sources, exprs, top
        self.own = {top, *own}  # the top file, and for a sweep file the recipe it sweeps
        self._seen: dict[str, bool] = {}

    def source(self, path: str) -> str:
        parts = path.split(".")
        while parts and ".".join(parts) not in self.sources:
            parts.pop()
        return self.sources.get(".".join(parts), "")

    def foreign_file(self, source: str) -> bool:
        """Written in a file other than the user's top recipe file (a default rule or the command line is not)."""
        return bool(FILE_SOURCE.search(source)) and FILE_SOURCE.sub("", source) not in self.own

    def trusted(self, path: str) -> bool:
        """The value at `path` and every key it reads come from the user's own file, the command line or a default."""
        if path not in self._seen:
            self._seen[path] = False  # a cycle is not trusted (and OmegaConf refuses it)
            parts = path.split(".")
            holders = (".".join(parts[:n]) for n in range(len(parts), 0, -1))  # a copied mapping: its `${...}`
            refs = [ref for holder in holders if holder in self.exprs for ref in self.exprs[holder].refs]
            source = self.source(path)  # "" = unknown provenance: foreign
            self._seen[path] = bool(source) and not self.foreign_file(source) and all(self.trusted(r) for r in refs)
        return self._seen[path]


def _fix(path: str, value: Any) -> str:
    shown = "true" if value is True else str(value)
    return f"write `{path.split('.')[-1]}: {shown}` in your own recipe (or pass {path}={shown}) to accept it"


def foreign(data: Mapping[str, Any], prov: Provenance, describe: Callable[[str], str], secret: Callable[[str], bool]
            ) -> list[Problem]:
    """A located problem for every capability switched on by a value that is not the user's own.
    `describe(source)` names where a foreign value came from; `secret(path)` says a value is not to be shown."""
    known = schema_fields()
    problems = []
    for path, value in _leaves(data):
        name = path.split(".")[-1]
        cap = BY_NAME.get(name)
        if cap is None or cap.kind not in GATED or not (name in ANYWHERE or _pattern(path) in known):
            continue
        if not cap.active(value) or prov.trusted(path):
            continue
        source = prov.source(path)
        shown = "(a value from the environment)" if secret(path) else value
        problems.append(Problem(source, path, (
            f"{describe(source)} turns on {name} (it {cap.what}: {KINDS[cap.kind]}); only your own recipe file or "
            f"the command line can: {_fix(path, shown)}")))
    return problems


def runs_code(path: str, value: Any) -> bool:
    """The setting at `path` switches on code execution with `value` (also inside a mapping of arguments)."""
    cap = BY_NAME.get(path.split(".")[-1])
    if cap is not None and cap.kind == "execute" and cap.active(value):
        return True
    return any(key.split(".")[-1] in ANYWHERE and _truthy(inner) for key, inner in _leaves(value))


def docs_table() -> str:
    """The table of docs/trust.md (a test keeps the page equal to it)."""
    lines = ["| field | capability | switched on when | what it does | applies to |", "|---|---|---|---|---|"]
    for path, cap, owners in table():
        where = ", ".join(owners) if len(owners) < 6 else f"{len(owners)} sections"
        gate = cap.kind if cap.kind in GATED else f"{cap.kind} (allowed from a base)"
        lines.append(f"| `{path}` | {gate} | {cap.when} | {cap.what} | {where} |")
    return "\n".join(lines) + "\n"
