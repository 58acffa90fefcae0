"""`peftrun eval`: the base model and the tuned one side by side, on held-out data.

Two measures for each: the loss of the reference completion given its prompt
(mean per completion token, tokenized exactly as TRL's SFT trainer does), and
the exact match of greedy generations against the reference completions,
whitespace-normalized. For `messages` data the last assistant turn is the
completion and the turns before it the prompt.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftrun.errors import DataError, RunDirError
from peftrun.train.rewards import message_text
from peftrun.recipe.plan import Plan


@dataclass(frozen=True)
class Example:
    prompt: str | list[dict[str, str]]  # plain text, or chat messages
    reference: str


def normalize(text: str) -> str:
    return " ".join(text.split())


def examples_from(dataset: Any) -> list[Example]:
    """Prompt / reference pairs from prompt-completion or conversational (messages) data."""
    columns = set(dataset.column_names)
    if {"prompt", "completion"} <= columns:
        return [Example(row["prompt"], message_text(row["completion"])) for row in dataset]
    if "messages" in columns:
        out = []
        for row in dataset:
            messages = row["messages"]
            if messages and messages[-1]["role"] == "assistant":
                out.append(Example(messages[:-1], messages[-1]["content"]))
        return out
    raise DataError(
        f"eval needs prompt-completion or messages data to compare generations; the data has {sorted(columns)}"
    )


def eval_dataset(plan: Plan, data_path: str | None) -> Any:
    """The run's own eval split (rebuilt with its seed), or the data at `data_path`."""
    from peftrun.data import load_training_data

    section = plan.recipe.dataset
    if data_path is not None:
        section = section.model_copy(update={"path": data_path, "sources": None, "eval": None, "split": "train",
                                              "max_samples": None})
        plan = plan.with_sections(dataset=section)
        return load_training_data(plan).train
    loaded = load_training_data(plan)
    if loaded.eval is None:
        raise RunDirError("the run has no eval split (dataset.eval): give one with --data PATH")
    return loaded.eval



def _token_pieces(tokenizer: Any, example: Example) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) as TRL's SFT trainer tokenizes a prompt-completion pair: the prompt
    alone and prompt + completion (+ EOS for plain text), split where the two first differ."""
    from peftrun.train.generation import prompt_ids

    prompt = prompt_ids(tokenizer, example.prompt)
    if isinstance(example.prompt, list):
        messages = [*example.prompt, {"role": "assistant", "content": example.reference}]
        full = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    else:
        full = list(tokenizer(text=example.prompt + example.reference + (tokenizer.eos_token or ""))["input_ids"])
    shared = next((i for i, (a, b) in enumerate(zip(prompt, full)) if a != b), min(len(prompt), len(full)))
    return full[:shared], full[shared:]


Pieces = tuple[list[int], list[int]]  # (prompt ids, completion ids)
LOSS_BATCH_TOKENS = 4096  # padded tokens per loss forward pass (rows x longest row)
GENERATION_BATCH = 32
MAX_FAILURES = 20  # failing examples kept with both models' whole outputs
MIN_SHARED_PREFIX = 8  # tokens; a shorter shared prefix is not worth a cache


def _batches(rows: list[Pieces], budget: int) -> list[list[Pieces]]:
    """Rows sorted by length (little padding), grouped so that rows x longest row stays within `budget`."""
    batches: list[list[Pieces]] = []
    for row in sorted(rows, key=lambda r: len(r[0]) + len(r[1])):
        if batches and (len(batches[-1]) + 1) * (len(row[0]) + len(row[1])) <= budget:
            batches[-1].append(row)
        else:
            batches.append([row])
    return batches


def _keeps_logits(model: Any) -> bool:
    """Whether the model's forward takes `logits_to_keep` (computing only the logits the loss reads)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def _shared_prefix(pieces: list[Pieces]) -> list[int]:
    """The prompt tokens every example starts with (a system message, say), short of each prompt's last token."""
    return common_prefix([p for p, _ in pieces])


def common_prefix(prompts: list[list[int]]) -> list[int]:
    """The tokens every prompt starts with, short of each prompt's last token."""
    limit = min(len(p) for p in prompts) - 1
    length = next((i for i in range(limit) if len({p[i] for p in prompts}) > 1), max(limit, 0))
    return prompts[0][:length]


def _prefix_cache(model: Any, prefix: list[int]) -> Any:
    """The key/value cache of the shared prefix, computed once (None when there is none worth it, or for
    prompt-learning adapters, which bring their own cache)."""
    import torch

    config = getattr(model, "peft_config", {}).get(getattr(model, "active_adapter", None))
    if len(prefix) < MIN_SHARED_PREFIX or getattr(config, "is_prompt_learning", False):
        return None
    with torch.no_grad():
        return model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True).cache


def _batch_nll(model: Any, batch: list[Pieces], pad: int, shared: int = 0, cache: Any = None) -> tuple[float, int]:
    """(summed NLL, token count) of the completions of one right-padded batch: padding follows every real
    token, so under the causal mask each row's logits are those of the row alone. With a cache of the
    `shared` first tokens (the same in every row), only the rest of each row is computed."""
    import copy

    import torch
    import torch.nn.functional as F

    width = max(len(p) + len(c) for p, c in batch)
    ids = torch.tensor([p + c + [pad] * (width - len(p) - len(c)) for p, c in batch], device=model.device)
    labels = torch.tensor([[-100] * len(p) + c + [-100] * (width - len(p) - len(c)) for p, c in batch])
    mask = torch.tensor([[1] * (len(p) + len(c)) + [0] * (width - len(p) - len(c)) for p, c in batch],
                        device=model.device)
    keep = width - max(min(len(p) for p, _ in batch) - 1, 0)  # from the last prompt token on
    kwargs: dict[str, Any] = {"logits_to_keep": keep} if _keeps_logits(model) else {}
    if cache is not None:
        kwargs["cache"] = copy.deepcopy(cache)
        kwargs["cache"].batch_repeat_interleave(len(batch))
        ids = ids[:, shared:]
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, **kwargs).logits[:, -keep:]
    targets = labels[:, width - keep + 1:].to(logits.device)
    nll = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum")
    return float(nll), int((targets != -100).sum())


def completion_loss(model: Any, tokenizer: Any, pieces: list[Pieces]) -> float:
    """Mean negative log-likelihood per completion token, in padded batches; a prompt prefix that every
    example shares is computed once."""
    total, count = 0.0, 0
    model.eval()
    rows = [p for p in pieces if p[1]]
    prefix = _shared_prefix(rows) if rows else []
    cache = _prefix_cache(model, prefix)
    for batch in _batches(rows, LOSS_BATCH_TOKENS):
        nll, tokens = _batch_nll(model, batch, tokenizer.pad_token_id or 0, len(prefix), cache)
        total, count = total + nll, count + tokens
    return total / max(count, 1)


def may_still_match(text: str, reference: str) -> bool:
    """Whether a generation that begins with `text` can still be an exact match of `reference`.

    Exact match compares whitespace-normalized text, and decoding more tokens only appends characters or
    removes spaces (tokenizers' clean-up), so with all whitespace removed a match's beginning is a prefix of
    the reference; a trailing replacement character is a multi-byte character not yet complete."""
    def squeeze(s: str) -> str:
        return "".join(s.split())

    return squeeze(reference).startswith(squeeze(text).rstrip("\ufffd"))


def _stop_mismatches(tokenizer: Any, references: list[str]) -> Any:
    """A stopping-criteria factory for `generate`: a row stops as soon as it can no longer match."""
    import torch
    from transformers import StoppingCriteria

    class CannotMatch(StoppingCriteria):
        def __init__(self, rows: list[int], width: int) -> None:
            self.references, self.width = [references[i] for i in rows], width

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            texts = tokenizer.batch_decode(input_ids[:, self.width:], skip_special_tokens=True)
            done = [not may_still_match(t, r) for t, r in zip(texts, self.references, strict=True)]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return CannotMatch


def _new_tokens(tokenizer: Any, examples: list[Example]) -> int:
    """Enough new tokens for the longest reference, and a few more to see what follows it."""
    return max(len(tokenizer(e.reference, add_special_tokens=False)["input_ids"]) for e in examples) + 8


def matches(model: Any, tokenizer: Any, examples: list[Example]) -> list[bool]:
    """For each example, whether the greedy generation is an exact match of the reference."""
    from peftrun.train.generation import generate

    references = [e.reference for e in examples]
    outputs = generate(model, tokenizer, [e.prompt for e in examples], max_new_tokens=_new_tokens(tokenizer, examples),
                       batch_size=GENERATION_BATCH, stop_rows=_stop_mismatches(tokenizer, references),
                       prefix_cache=lambda ids: _prefix_cache(model, common_prefix(ids)))
    return [normalize(out) == normalize(e.reference) for out, e in zip(outputs, examples, strict=True)]


def _scores(model: Any, tokenizer: Any, examples: list[Example], pieces: list[Pieces],
            context: AbstractContextManager) -> tuple[dict[str, float], list[bool]]:
    with context:
        hits = matches(model, tokenizer, examples)
        return {"loss": completion_loss(model, tokenizer, pieces), "exact_match": sum(hits) / len(hits)}, hits


def _outputs(model: Any, tokenizer: Any, examples: list[Example], context: AbstractContextManager) -> list[str]:
    """Whole greedy generations (not stopped at the first mismatch), to show what a model answered."""
    from peftrun.train.generation import generate

    if not examples:
        return []
    with context:
        return generate(model, tokenizer, [e.prompt for e in examples], _new_tokens(tokenizer, examples),
                        batch_size=GENERATION_BATCH)


def evaluate_run(run_dir: Path, data_path: str | None = None, max_samples: int | None = None,
                 trust_remote_code: bool = False) -> dict[str, Any]:
    """{"n", "data", "base": {"loss", "exact_match"}, "tuned": {...}, "wrong", "failures": [...]} for a finished
    run; `failures` holds (at most MAX_FAILURES of) the examples the tuned model gets wrong, with both outputs."""
    from peftrun.train.merge import load_tuned
    from peftrun.train.modeling import load_model
    from peftrun.train.rundir import require_finished

    require_finished(run_dir)
    model, tokenizer, plan = load_tuned(run_dir, quantized=True, trust_remote_code=trust_remote_code)
    examples = examples_from(eval_dataset(plan, data_path))
    if max_samples is not None:
        examples = examples[:max_samples]
    if not examples:
        raise DataError("no examples to evaluate")
    pieces = [_token_pieces(tokenizer, e) for e in examples]
    adapter = plan.recipe.peft is not None
    base_model = model if adapter else load_model(plan, tokenizer)
    base_context = model.disable_adapter if adapter else nullcontext
    tuned, hits = _scores(model, tokenizer, examples, pieces, nullcontext())
    base, _ = _scores(base_model, tokenizer, examples, pieces, base_context())
    wrong = [e for e, hit in zip(examples, hits, strict=True) if not hit]
    shown = wrong[:MAX_FAILURES]
    outputs = zip(_outputs(base_model, tokenizer, shown, base_context()), _outputs(model, tokenizer, shown, nullcontext()))
    failures = [{"prompt": e.prompt, "reference": e.reference, "base": b, "tuned": t}
                for e, (b, t) in zip(shown, outputs, strict=True)]
    return {"n": len(examples), "data": data_path, "base": base, "tuned": tuned, "wrong": len(wrong), "failures": failures}


def _prompt_text(prompt: str | list[dict[str, str]]) -> str:
    """The last user turn of a chat prompt, or the text prompt, on one line."""
    text = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "") if isinstance(prompt, list) else prompt
    return " ".join(text.split())


def as_table(result: dict[str, Any], shown: int = 5) -> str:
    rows = [("eval loss", "loss", "{:.4f}"), ("exact match", "exact_match", "{:.2f}")]
    lines = [f"{'':14}{'base':>10}{'tuned':>10}"]
    for label, key, fmt in rows:
        lines.append(f"{label:14}{fmt.format(result['base'][key]):>10}{fmt.format(result['tuned'][key]):>10}")
    lines.append(f"({result['n']} examples)")
    failures = result.get("failures", [])
    if failures:
        lines += ["", f"the tuned model gets {result['wrong']} of {result['n']} wrong; "
                  f"{'the first ' + str(min(shown, len(failures))) + ':' if len(failures) > shown else 'all:'}"]
        for failure in failures[:shown]:
            lines += [f"  prompt     {_prompt_text(failure['prompt'])!r}", f"  reference  {failure['reference']!r}",
                      f"  tuned      {failure['tuned']!r}", f"  base       {failure['base']!r}", ""]
    return "\n".join(lines).rstrip()
