"""`peftrun eval`: base vs tuned on held-out data, for a tiny model that learns a fixed answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import peftrun
from peftrun.cli import main
from peftrun.train.evaluate import normalize
from tests import tiny
from tests.train.test_runner import LORA, recipe


@pytest.fixture
def learned_run(in_tmp: Path, tiny_model_dir: Path) -> Path:
    """A run that taught the tiny model to answer every question with ` ok`."""
    rows = [{"prompt": f"Question {i}?", "completion": " ok"} for i in range(40)]
    data = tiny.write_jsonl(in_tmp / "ok.jsonl", rows)
    trainer = {"type": "sft", "max_steps": 40, "learning_rate": 1e-2, "per_device_train_batch_size": 8,
               "save_strategy": "no", "eval_strategy": "no", "logging_steps": 10}
    return peftrun.run(recipe(tiny_model_dir, data, trainer, {**LORA, "r": 8},
                              dataset={"path": str(data), "eval": {"fraction": 0.25}}))


def test_eval_reports_base_and_tuned(learned_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(learned_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 10 and result["wrong"] == 0 and result["failures"] == []
    assert result["base"]["exact_match"] == 0.0
    assert result["tuned"]["exact_match"] == 1.0
    assert result["tuned"]["loss"] < result["base"]["loss"] - 0.3


def test_eval_on_other_data_with_a_cap(learned_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tiny.write_jsonl(learned_run.parent.parent / "other.jsonl",
                             [{"prompt": f"Another {i}?", "completion": " ok"} for i in range(9)])
    assert main(["eval", str(learned_run), "--data", str(other), "--max-samples", "3"]) == 0
    table = capsys.readouterr().out
    assert "exact match" in table and "eval loss" in table and "(3 examples)" in table


def test_eval_needs_comparable_data(learned_run: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(learned_run), "--data", str(data_dir / "text.jsonl")]) == 3
    assert "eval needs prompt-completion or messages data to compare generations; the data has ['text']" in capsys.readouterr().err


def test_normalize() -> None:
    assert normalize("  a \n b\t") == "a b"


@pytest.mark.parametrize("bos", [False, True], ids=["no-bos", "bos"])
@pytest.mark.parametrize("conversational", [False, True], ids=["text", "chat"])
def test_eval_tokenizes_like_trl(tmp_path: Path, bos: bool, conversational: bool) -> None:
    """The prompt / completion split is the one TRL's SFT trainer trains on (BOS, template, EOS included)."""
    from transformers import AutoTokenizer
    from trl.data_utils import _tokenize, common_prefix_length

    from peftrun.train.evaluate import Example, _token_pieces

    tiny.build_tokenizer(tmp_path, bos=bos)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    if conversational:
        prompt, completion = [{"role": "user", "content": "Date?"}], [{"role": "assistant", "content": "2021-03-05"}]
        prompt_ids = _tokenize(tokenizer, prompt, add_generation_prompt=True)["input_ids"]
        full = _tokenize(tokenizer, prompt + completion)["input_ids"]
        example = Example(prompt, "2021-03-05")
    else:
        prompt_ids = _tokenize(tokenizer, "Date?")["input_ids"]
        full = _tokenize(tokenizer, "Date? 2021-03-05" + tokenizer.eos_token)["input_ids"]
        example = Example("Date?", " 2021-03-05")
    shared = common_prefix_length(prompt_ids, full)
    assert _token_pieces(tokenizer, example) == (full[:shared], full[shared:])
    assert (full[0] == tokenizer.bos_token_id) == (bos and not conversational)


def one_at_a_time(model: Any, pieces: list[tuple[list[int], list[int]]]) -> float:
    """The loss as `peftrun eval` computed it before batching: one example per forward pass, the library's loss."""
    import torch

    total, count = 0.0, 0
    for prompt, completion in pieces:
        ids = torch.tensor([prompt + completion])
        labels = torch.tensor([[-100] * len(prompt) + completion])
        with torch.no_grad():
            total += float(model(input_ids=ids, labels=labels).loss) * len(completion)
        count += len(completion)
    return total / count


def scoring_model(model_dir: Path, adapter: bool) -> tuple[Any, Any]:
    """(tokenizer, model) of the tiny model, with a random LoRA adapter (not the identity) when asked."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    if adapter:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    return tokenizer, model


@pytest.mark.parametrize("adapter", [False, True], ids=["plain", "lora"])
def test_batched_loss_equals_one_example_at_a_time(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                   adapter: bool) -> None:
    """Rows of very different lengths, several per batch and several batches: padding changes nothing."""
    from peftrun.train import evaluate
    from peftrun.train.evaluate import Example, _token_pieces, completion_loss

    tokenizer, model = scoring_model(tiny_model_dir, adapter)
    examples = [Example(f"Q{i}: " + "x" * (3 * i), " a" * (1 + i % 5)) for i in range(12)]
    examples += [Example([{"role": "user", "content": "y" * i}], "z" * (7 - i)) for i in range(4)]
    pieces = [_token_pieces(tokenizer, e) for e in examples]
    monkeypatch.setattr(evaluate, "LOSS_BATCH_TOKENS", 200)  # several batches of several rows
    assert len(evaluate._batches(pieces, 200)) > 2 and max(map(len, evaluate._batches(pieces, 200))) > 2
    batched = completion_loss(model, tokenizer, pieces)
    assert batched == pytest.approx(one_at_a_time(model, pieces), abs=1e-4)


@pytest.mark.parametrize(("text", "reference", "possible"), [
    ("", "2021-03-05", True),
    ("2021-", "2021-03-05", True),
    (" 2021 -03", "2021-03-05", True),  # whitespace is normalized away by exact match
    ("2021-03-05", "2021-03-05", True),
    ("2021-03-05\ufffd", "2021-03-05x", True),  # a multi-byte character not yet complete
    ("The date", "2021-03-05", False),
    ("2021-03-05.", "2021-03-05", False),
])
def test_a_generation_stops_only_when_it_can_no_longer_match(text: str, reference: str, possible: bool) -> None:
    from peftrun.train.evaluate import may_still_match, normalize

    assert may_still_match(text, reference) is possible
    if normalize(text) == normalize(reference):
        assert possible  # an exact match is never cut short


@pytest.mark.parametrize("adapter", [False, True], ids=["plain", "lora"])
def test_a_shared_prompt_prefix_computed_once_gives_the_same_loss(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  adapter: bool) -> None:
    """Chat prompts that all begin with the same system message: its cache is reused, the loss is unchanged."""
    from peftrun.train import evaluate
    from peftrun.train.evaluate import Example, _prefix_cache, _shared_prefix, _token_pieces, completion_loss

    tokenizer, model = scoring_model(tiny_model_dir, adapter)
    system = {"role": "system", "content": "Rewrite the date as YYYY-MM-DD. Answer with the date only."}
    examples = [Example([system, {"role": "user", "content": "d" * (1 + i)}], "2021-0" + str(i % 9)) for i in range(10)]
    pieces = [_token_pieces(tokenizer, e) for e in examples]
    prefix = _shared_prefix(pieces)
    assert len(prefix) >= evaluate.MIN_SHARED_PREFIX and _prefix_cache(model, prefix) is not None
    monkeypatch.setattr(evaluate, "LOSS_BATCH_TOKENS", 400)  # several batches of several rows
    assert len(evaluate._batches(pieces, 400)) > 1
    assert completion_loss(model, tokenizer, pieces) == pytest.approx(one_at_a_time(model, pieces), abs=1e-4)


def test_generation_from_a_shared_prefix_cache_equals_plain_generation(tiny_model_dir: Path) -> None:
    """Prompts of several lengths that share a system message: batches of one length start from a copy of
    the prefix's cache and give the same greedy text, in the prompts' order."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from peftrun.train.evaluate import _prefix_cache, common_prefix
    from peftrun.train.generation import generate

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    system = {"role": "system", "content": "Rewrite the date as YYYY-MM-DD. Answer with the date only."}
    prompts = [[system, {"role": "user", "content": "d" * (1 + i % 4)}] for i in range(10)]
    used: list[int] = []

    def cache(ids: list[list[int]]) -> object:
        used.append(len(common_prefix(ids)))
        return _prefix_cache(model, common_prefix(ids))

    plain = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=3)
    cached = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=3, prefix_cache=cache)
    assert used and used[0] >= 8
    assert cached == plain


def test_eval_is_kept_in_the_run_directory_manifest_and_card(learned_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from huggingface_hub import ModelCard

    other = tiny.write_jsonl(learned_run.parent.parent / "no.jsonl",
                             [{"prompt": f"Question {i}?", "completion": " no"} for i in range(30)])
    assert main(["eval", str(learned_run), "--data", str(other)]) == 0
    table = capsys.readouterr().out
    assert "the tuned model gets 30 of 30 wrong; the first 5:" in table
    assert "  reference  ' no'\n  tuned      ' ok'" in table
    kept = json.loads((learned_run / "eval.json").read_text())
    assert kept["n"] == 30 and kept["wrong"] == 30 and kept["tuned"]["exact_match"] == 0.0 and kept["data"] == str(other)
    failures = [json.loads(line) for line in (learned_run / "eval_failures.jsonl").read_text().splitlines()]
    assert len(failures) == 20  # MAX_FAILURES
    assert failures[0]["prompt"] == "Question 0?" and failures[0]["reference"] == " no"
    assert normalize(failures[0]["tuned"]) == "ok" and isinstance(failures[0]["base"], str)
    manifest = json.loads((learned_run / "manifest.json").read_text())
    assert manifest["evaluation"] == kept and manifest["training"]["steps"] == 40
    card = ModelCard.load(learned_run / "README.md")
    results = {(r.metric_type, r.metric_name): r for r in card.data.eval_results}
    assert results[("exact_match", "exact match (peftrun eval)")].metric_value == 0.0
    assert results[("loss", "completion loss (peftrun eval)")].metric_value == round(kept["tuned"]["loss"], 4)
    assert results[("loss", "completion loss (peftrun eval)")].dataset_name == str(other)
    assert "| exact match | 0.00 | 0.00 |" in card.text and "`eval_failures.jsonl`" in card.text
