"""What the trainer will see: examples tokenized exactly as TRL's SFT trainer prepares them, the tokens that
carry loss, and length statistics (`peftrun data`)."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace
from typing import Any

from peftrun.data.batching import padding_fractions, padding_line
from peftrun.data.loading import TrainingData

MARK_OPEN, MARK_CLOSE = "[[", "]]"


def training_template(tokenizer: Any, args: Any) -> str | None:
    """The template TRL's SFT trainer swaps in (assistant-only loss on a template without generation markers),
    or None when it trains with the tokenizer's own."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    swap = args.assistant_only_loss and not has_generation_markers(tokenizer.chat_template)
    return get_training_chat_template(tokenizer) if swap else None


def sft_prepared(dataset: Any, tokenizer: Any, args: Any) -> Any:
    """`dataset` tokenized with labels by TRL's own SFT preparation (no model needed), without truncation,
    in the dataset's order."""
    from trl import SFTTrainer

    if args.eos_token is not None:  # as SFTTrainer.__init__ does before preparing the data
        tokenizer.eos_token = args.eos_token
    row = dataset[0]
    completion_only = args.completion_only_loss
    if completion_only is None:
        completion_only = "prompt" in row and "completion" in row
    trainer = SimpleNamespace(_tokenizer=tokenizer, completion_only_loss=completion_only,
                              chat_template=training_template(tokenizer, args))
    untruncated = copy.copy(args)
    untruncated.max_length, untruncated.shuffle_dataset = None, False
    return SFTTrainer._prepare_dataset(trainer, dataset, tokenizer, untruncated, packing=False,
                                       formatting_func=None, dataset_name="preview")


def _truncate(ids: list[int], args: Any) -> list[int]:
    if args.max_length is None or len(ids) <= args.max_length:
        return ids
    return ids[-args.max_length:] if args.truncation_mode == "keep_end" else ids[:args.max_length]


def example(tokenizer: Any, input_ids: list[int], labels: list[int]) -> dict[str, str]:
    """The decoded input, the decoded tokens that carry loss, and the input with those tokens marked."""
    marked, run, trained = [], [], None
    for token, label in zip(input_ids, labels, strict=True):
        if (label != -100) != trained and run:
            marked.append(_span(tokenizer, run, bool(trained)))
            run = []
        trained = label != -100
        run.append(token)
    if run:
        marked.append(_span(tokenizer, run, bool(trained)))
    return {"text": tokenizer.decode(input_ids), "trained_text": tokenizer.decode([t for t, l in zip(input_ids, labels) if l != -100]),
            "marked": "".join(marked)}


def _span(tokenizer: Any, ids: list[int], trained: bool) -> str:
    text = tokenizer.decode(ids)
    return f"{MARK_OPEN}{text}{MARK_CLOSE}" if trained else text


def _percentile(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def lengths(all_ids: list[list[int]], max_length: int | None) -> dict[str, Any]:
    sizes = [len(ids) for ids in all_ids]
    truncated = sum(size > max_length for size in sizes) if max_length is not None else 0
    return {"p50": _percentile(sizes, 0.5), "p95": _percentile(sizes, 0.95), "max": max(sizes),
            "truncated": truncated, "max_length": max_length}


def report(data: TrainingData, tokenizer: Any, args: Any, trainer_type: str, show: int) -> dict[str, Any]:
    """Everything `peftrun data` prints, as one object."""
    out: dict[str, Any] = {
        "rows": {"train": len(data.train), "eval": len(data.eval) if data.eval is not None else 0},
        "sources": list(data.sources),
        "format": data.format,
        "examples": [],
        "lengths": None,
    }
    if trainer_type != "sft":  # other trainers tokenize pairs / prompts their own way: show the records
        out["examples"] = [{"text": json.dumps(data.train[i], ensure_ascii=False), "trained_text": None}
                           for i in range(min(show, len(data.train)))]
        return out
    prepared = sft_prepared(data.train, tokenizer, args)
    ids, all_labels = prepared["input_ids"], prepared["labels"]
    out["lengths"] = lengths(ids, args.max_length)
    seen = [_truncate(list(zip(i, lab)), args) for i, lab in zip(ids, all_labels, strict=True)]
    kept = [pairs for pairs in seen if any(lab != -100 for _, lab in pairs)]  # TRL drops the rest
    out["lengths"]["dropped"] = len(seen) - len(kept)
    out["examples"] = [example(tokenizer, [t for t, _ in pairs], [lab for _, lab in pairs]) for pairs in kept[:show]]
    out["padding"] = {"batch_size": args.per_device_train_batch_size,
                      **padding_fractions([len(p) for p in kept], args.per_device_train_batch_size, args.seed)}
    return out


def as_text(result: dict[str, Any]) -> str:
    lines = [f"format: {result['format']}", "rows:"]
    lines += [f"  {s['key']:<22} {s['rows']:>8}  {s['format']:<20} {s['path']}" for s in result["sources"]]
    lines += [f"  {'train':<22} {result['rows']['train']:>8}", f"  {'eval':<22} {result['rows']['eval']:>8}"]
    stats = result["lengths"]
    if stats:
        limit = stats["max_length"]
        lines.append(f"tokens: median {stats['p50']}, p95 {stats['p95']}, max {stats['max']}; "
                     + (f"{stats['truncated']} example(s) longer than max_length {limit} are truncated"
                        if limit is not None else "no max_length: nothing is truncated"))
        if stats["dropped"]:
            lines.append(f"  {stats['dropped']} example(s) keep no trained token after truncation: the trainer drops them")
        lines.append(padding_line(result["padding"]))
    for i, item in enumerate(result["examples"]):
        lines += ["", f"--- example {i + 1}" + (f" (trained tokens marked {MARK_OPEN} {MARK_CLOSE})"
                                                 if item.get("marked") is not None else "")]
        lines.append(item.get("marked") or item["text"])
    return "\n".join(lines)
