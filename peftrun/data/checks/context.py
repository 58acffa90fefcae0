"""What the rules read: the training split, the tokenizer, the trainer's arguments, and for SFT the examples as
TRL's own preparation tokenizes and labels them (`preview.sft_prepared`, then max_length as the trainer cuts)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from peftrun.data.loading import TrainingData
from peftrun.data.preview import _truncate, sft_prepared, training_template
from peftrun.recipe.plan import Plan

IGNORE = -100
SHOWN_ROWS = 8  # rows a message names; the JSON result lists them all


@dataclass(frozen=True)
class Result:
    status: Literal["pass", "fail", "skip"]
    message: str = ""
    rows: tuple[int, ...] = ()


def passed(message: str = "") -> Result:
    return Result("pass", message)


def skipped(why: str) -> Result:
    return Result("skip", why)


def failed(message: str, rows: list[int] | tuple[int, ...] = ()) -> Result:
    return Result("fail", message, tuple(rows))


def rows_text(rows: list[int] | tuple[int, ...], total: int) -> str:
    """'3 of 40 examples (rows 0, 5, 9)': rows are positions in the training split, as `peftrun data` counts."""
    shown = ", ".join(str(r) for r in rows[:SHOWN_ROWS]) + (f" and {len(rows) - SHOWN_ROWS} more"
                                                             if len(rows) > SHOWN_ROWS else "")
    return f"{len(rows)} of {total} example(s) (row{'s' if len(rows) > 1 else ''} {shown})"


@dataclass(frozen=True)
class Prepared:
    """The SFT examples as the trainer will see them: token ids, and the tokens that carry loss, before and after
    truncation."""

    ids: list[list[int]]
    seen_ids: list[list[int]]
    trained_before: list[list[int]]
    trained_after: list[list[int]]

    def trained(self, row: int, after_truncation: bool = True) -> list[int]:
        return (self.trained_after if after_truncation else self.trained_before)[row]

    @cached_property
    def kept(self) -> list[int]:
        """Rows that keep a trained token after truncation (TRL drops the others)."""
        return [i for i, trained in enumerate(self.trained_after) if trained]


@dataclass
class Context:
    trainer_type: str
    data: TrainingData
    tokenizer: Any
    args: Any
    plan: Plan
    sft: Prepared | None = None  # None: not SFT, or TRL's preparation refused the data (empty assistant masks)
    empty_masks: list[int] = field(default_factory=list)
    unpatched: bool = False  # assistant-only loss on a template without markers that TRL cannot patch

    @property
    def rows(self) -> int:
        return len(self.data.train)

    @property
    def assistant_only(self) -> bool:
        return self.trainer_type == "sft" and bool(self.args.assistant_only_loss)

    @property
    def stop_token(self) -> str | None:
        """The token the model must learn to end with: the trainer's EOS (the template's end of turn, rule
        template-eos) or the tokenizer's."""
        return getattr(self.args, "eos_token", None) or self.tokenizer.eos_token

    def conversations(self, limit: int) -> list[list[dict[str, Any]]]:
        """The first `limit` examples as whole conversations, when the data is conversational."""
        rows = self.data.train.select(range(min(limit, self.rows)))
        for keys in (("messages",), ("prompt", "completion"), ("prompt", "chosen"), ("chosen",), ("prompt",)):
            if all(isinstance(rows[0].get(k), list) for k in keys):
                return [[m for k in keys for m in row[k]] for row in rows]
        return []


def _trained(ids: list[int], labels: list[int]) -> list[int]:
    return [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE]


def _prepare(data: TrainingData, tokenizer: Any, args: Any) -> Prepared:
    prepared = sft_prepared(data.train, tokenizer, args)
    ids, labels = prepared["input_ids"], prepared["labels"]
    seen = [_truncate(list(zip(i, lab, strict=True)), args) for i, lab in zip(ids, labels, strict=True)]
    seen_ids, seen_labels = [[t for t, _ in s] for s in seen], [[lab for _, lab in s] for s in seen]
    return Prepared(ids, seen_ids, [_trained(i, lab) for i, lab in zip(ids, labels, strict=True)],
                    [_trained(i, lab) for i, lab in zip(seen_ids, seen_labels, strict=True)])


def template_or_none(tokenizer: Any, args: Any) -> tuple[str | None, bool]:
    """(TRL's training template or None, whether TRL refuses to patch a template without generation markers)."""
    try:
        return training_template(tokenizer, args), False
    except ValueError:  # "not training-compatible ... patching is not supported for this template"
        return None, True


def empty_assistant_masks(data: TrainingData, tokenizer: Any, args: Any) -> list[int]:
    """Rows whose assistant mask is empty, computed by TRL's own tokenization call for each example."""
    from trl.data_utils import _tokenize, maybe_convert_to_chatml

    template, _ = template_or_none(tokenizer, args)
    empty = []
    for i, row in enumerate(data.train):
        row = maybe_convert_to_chatml(dict(row))
        messages = row["messages"] if "messages" in row else row["prompt"] + row["completion"]
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
        mask = _tokenize(tokenizer, messages, return_assistant_tokens_mask=True, chat_template=template,
                         tools=tools)["assistant_masks"]
        if 1 not in mask:
            empty.append(i)
    return empty


def context(plan: Plan, data: TrainingData, tokenizer: Any, args: Any) -> Context:
    ctx = Context(plan.trainer_type, data, tokenizer, args, plan)
    if ctx.trainer_type != "sft":
        return ctx
    try:
        ctx.sft = _prepare(data, tokenizer, args)
    except (RuntimeError, ValueError):  # under assistant-only loss TRL refuses an example without assistant
        if not (ctx.assistant_only and data.conversational):  # tokens, and a template it cannot patch
            raise
        ctx.unpatched = template_or_none(tokenizer, args)[1]
        ctx.empty_masks = empty_assistant_masks(data, tokenizer, args)
        if not ctx.empty_masks:
            raise
    return ctx
