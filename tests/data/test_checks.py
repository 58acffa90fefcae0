"""The data checks (peftrun/data/checks): each rule on data built to trigger it and on data where it must not,
through `peftrun data RECIPE --check --json` on a tiny tokenizer and the labels TRL itself builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import trl
from peftrun.cli import main
from peftrun.data.checks import RULES
from peftrun.recipe import defaults
from peftrun.recipe.hardware import CPU
from tests import tiny
from tests.train.test_runner import LORA, recipe

# ChatML with generation markers that close before <|im_end|>: the end of turn goes to the next turn (trl#1623 ...)
MARKERS_WITHOUT_END = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}{% endgeneration %}"
    "{% else %}{{ message['content'] }}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# ChatML that leaves out the assistant's turns (a template bug: nothing of the reply is rendered)
USER_ONLY = (
    "{% for message in messages %}{% if message['role'] != 'assistant' %}{{ '<|im_start|>' + message['role'] + '\\n' "
    "+ message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# ChatML that skips empty messages, and one that writes the BOS token first
SKIPS_EMPTY = USER_ONLY.replace("{% if message['role'] != 'assistant' %}", "{% if message['content'] %}")
WRITES_BOS = "{{ bos_token }}" + tiny.CHATML


@pytest.fixture(autouse=True)
def _cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("peftrun.recipe.hardware.probe_light", lambda: CPU)


@pytest.fixture(scope="module")
def bos_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer that adds its BOS (<|endoftext|>) to every text it encodes, as Llama tokenizers do."""
    directory = tmp_path_factory.mktemp("bos-tokenizer")
    tiny.build_tokenizer(directory, bos=True)
    return directory


def chat(n: int = 6, reply: str = "fine") -> list[dict[str, Any]]:
    return [{"messages": [{"role": "user", "content": f"How are you {i}?"},
                          {"role": "assistant", "content": f"{reply} {i}"}]} for i in range(n)]


def pairs(n: int = 6) -> list[dict[str, Any]]:
    return [{"prompt": [{"role": "user", "content": f"Date {i}?"}],
             "completion": [{"role": "assistant", "content": f"2024-01-0{i}"}]} for i in range(n)]


class Checks:
    """Writes data, a template and a recipe, and runs `peftrun data --check --json` on them."""

    def __init__(self, model_dir: Path, tmp_path: Path, write_recipe: Any, capsys: pytest.CaptureFixture) -> None:
        self.model_dir, self.tmp, self.write_recipe, self.capsys = model_dir, tmp_path, write_recipe, capsys

    def recipe(self, rows: list[dict[str, Any]], trainer: dict[str, Any] | None = None, template: str | None = None,
               model_dir: Path | None = None, **model: Any) -> Path:
        data = tiny.write_jsonl(self.tmp / "data.jsonl", rows)
        if template is not None and template not in defaults.CHAT_TEMPLATES:
            (self.tmp / "t.jinja").write_text(template)
            template = str(self.tmp / "t.jinja")
        if template is not None:
            model["chat_template"] = template
        body = recipe(model_dir or self.model_dir, data, {"type": "sft", **(trainer or {})}, LORA,
                      model={"name_or_path": str(model_dir or self.model_dir), **model})
        return self.write_recipe(body)

    def __call__(self, rows: list[dict[str, Any]], trainer: dict[str, Any] | None = None, template: str | None = None,
                 expect: int = 0, **model: Any) -> dict[str, dict[str, Any]]:
        assert main(["data", str(self.recipe(rows, trainer, template, **model)), "--check", "--json"]) == expect
        result = json.loads(self.capsys.readouterr().out)
        assert result["ok"] == (expect == 0)
        return {r["rule"]: r for r in result["rules"]}


@pytest.fixture
def checks(tiny_model_dir: Path, tmp_path: Path, write_recipe: Any, capsys: pytest.CaptureFixture) -> Checks:
    return Checks(tiny_model_dir, tmp_path, write_recipe, capsys)


def statuses(found: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: r["status"] for name, r in found.items()}


def test_every_rule_has_one_function_and_a_severity() -> None:
    assert list(RULES) == list(defaults.DATA_CHECKS)
    assert {severity for severity, _ in defaults.DATA_CHECKS.values()} == {"error", "warning"}
    stopping = [name for name, (severity, _) in defaults.DATA_CHECKS.items() if severity == "error"]
    assert stopping == ["no-trained-tokens", "eos-never-trained", "assistant-mask-empty"]


def test_clean_prompt_completion_data_passes(checks: Checks) -> None:
    found = checks(tiny.sft_rows())
    assert statuses(found) == {
        "no-trained-tokens": "pass", "eos-never-trained": "pass", "assistant-mask-empty": "skip",
        "examples-without-loss": "pass", "eos-not-always-trained": "pass", "double-bos": "skip",
        "completion-truncated": "pass", "chosen-equals-rejected": "skip", "saved-template-differs": "skip",
        "sequences-see-each-other": "skip"}
    assert found["eos-never-trained"]["message"] == "'<|im_end|>' carries loss in 32 of 32 examples"


def test_pad_equal_to_eos_under_completion_only_loss_still_trains_eos(checks: Checks) -> None:
    """The classic cause (trl#1623, unsloth#416): a collator that masks every pad token also masks EOS when
    pad == eos. TRL 1.16 builds labels from the completion mask and pads them with -100 on their own, so EOS
    carries loss: the check, reading TRL's real labels, passes."""
    found = checks(tiny.sft_rows(), special_tokens={"pad_token": "<|im_end|>"})
    assert found["eos-never-trained"]["status"] == found["eos-not-always-trained"]["status"] == "pass"
    assert found["eos-never-trained"]["message"] == "'<|im_end|>' carries loss in 32 of 32 examples"


def test_markers_that_leave_out_the_end_of_turn_stop_the_run(checks: Checks) -> None:
    found = checks(chat(), {"assistant_only_loss": True}, MARKERS_WITHOUT_END, expect=3)
    eos = found["eos-never-trained"]
    assert eos["status"] == "fail" and eos["rows"] == [0, 1, 2, 3, 4, 5]
    assert eos["message"] == (
        "the stop token '<|im_end|>' (id 2) carries loss in none of the 6 examples, so the model never learns to end "
        "its reply: in 6, the template's {% generation %} block ends before '<|im_end|>', so the assistant mask "
        "gives it to the next turn: put it inside the block (peftrun's shipped templates do)")
    assert found["assistant-mask-empty"]["status"] == "pass"


def test_shipped_template_trains_the_end_of_turn(checks: Checks) -> None:
    found = checks(chat(), {"assistant_only_loss": True}, "chatml")
    assert found["eos-never-trained"]["status"] == "pass"
    assert found["assistant-mask-empty"]["status"] == "pass"
    assert found["saved-template-differs"]["status"] == "pass"


def test_an_eos_the_template_never_writes(checks: Checks) -> None:
    """A base model's EOS under a chat template that ends turns with another token (torchtune#949)."""
    found = checks(chat(), special_tokens={"eos_token": "<|endoftext|>"}, expect=3)
    assert found["eos-never-trained"]["message"].startswith(
        "the stop token '<|endoftext|>' (id 0) carries loss in none of the 6 examples, so the model never learns "
        "to end its reply: in 6, the input never contains it: the chat template ends turns with another token")


def test_some_examples_end_without_eos(checks: Checks) -> None:
    rows = pairs(4) + [{"prompt": [{"role": "user", "content": "Long?"}],
                        "completion": [{"role": "assistant", "content": "yes " * 40}]}] * 2
    found = checks(rows, {"max_length": 60})
    assert statuses(found)["eos-never-trained"] == "pass"
    partly = found["eos-not-always-trained"]
    assert partly["status"] == "fail" and partly["rows"] == [4, 5]
    assert "carries no loss in 2 of 6 example(s) (rows 4, 5)" in partly["message"]
    assert "in 2, max_length 60 cuts it off (raise trainer.max_length)" in partly["message"]


def test_no_trained_tokens_anywhere(checks: Checks) -> None:
    found = checks(pairs(), template=USER_ONLY, expect=3)
    assert found["no-trained-tokens"]["message"].startswith(
        "none of the 6 examples has a token that carries loss (completion-only loss: the completion's tokens)")
    assert found["examples-without-loss"]["status"] == "skip"
    assert checks(pairs())["no-trained-tokens"]["status"] == "pass"


def test_max_length_cutting_every_trained_token(checks: Checks) -> None:
    found = checks(pairs(), {"max_length": 5}, expect=3)
    assert found["no-trained-tokens"]["message"].startswith(
        "max_length 5 (keep_start) cuts every trained token from all 6 examples: raise trainer.max_length to")


def test_some_examples_without_loss(checks: Checks) -> None:
    rows = pairs(4) + [{"prompt": [{"role": "user", "content": "Empty?"}],
                        "completion": [{"role": "assistant", "content": ""}]}]
    found = checks(rows, template=SKIPS_EMPTY)
    without = found["examples-without-loss"]
    assert without["status"] == "fail" and without["rows"] == [4]
    assert without["message"].startswith("1 of 5 example(s) (row 4) carry no loss")
    assert found["no-trained-tokens"]["status"] == "pass"


def test_a_template_without_generation_markers_under_assistant_only_loss(checks: Checks) -> None:
    """transformers#34172 / trl PR#4201: no {% generation %} markers, so the assistant mask is all zeros."""
    found = checks(chat(), {"assistant_only_loss": True}, expect=3)
    empty = found["assistant-mask-empty"]
    assert empty["rows"] == list(range(6))
    assert empty["message"].startswith(
        "every one of the 6 examples has an empty assistant mask under assistant_only_loss: the chat template "
        "(the tokenizer's own) has no {% generation %} markers and TRL 1.16 has no training version of it")
    assert found["no-trained-tokens"]["status"] == "skip"
    path = checks.recipe(chat(), {"assistant_only_loss": True})
    assert main(["data", str(path)]) == 3  # TRL refuses the data: `peftrun data` shows the checks, not a traceback
    assert "error: data check assistant-mask-empty: every one of the 6 examples" in checks.capsys.readouterr().out


def test_a_conversation_without_an_assistant_turn(checks: Checks) -> None:
    rows = chat(3) + [{"messages": [{"role": "user", "content": "Anyone?"}]}]
    empty = checks(rows, {"assistant_only_loss": True}, "chatml", expect=3)["assistant-mask-empty"]
    assert empty["rows"] == [3] and empty["message"].startswith("1 of 4 example(s) (row 3) have an empty assistant mask")


def test_doubled_bos_from_text_that_already_starts_with_it(checks: Checks, bos_tokenizer_dir: Path) -> None:
    """unsloth#2648: the text was rendered by a template that writes BOS, and the tokenizer adds it again."""
    rows = [{"text": f"<|endoftext|>Hello {i}"} for i in range(3)] + [{"text": "Hello again"}]
    found = checks(rows, name_or_path=str(bos_tokenizer_dir))
    double = found["double-bos"]
    assert double["rows"] == [0, 1, 2]
    assert double["message"].startswith("3 of 4 example(s) (rows 0, 1, 2) start with the BOS token '<|endoftext|>' twice")


def test_a_template_that_writes_bos_under_a_tokenizer_that_adds_it(checks: Checks, bos_tokenizer_dir: Path) -> None:
    """Conversations: transformers 5 tokenizes the rendered template without adding special tokens, so the BOS
    the template writes is the only one."""
    found = checks(chat(), template=WRITES_BOS, name_or_path=str(bos_tokenizer_dir))
    assert found["double-bos"]["status"] == "pass"


def test_completions_truncated_by_max_length(checks: Checks) -> None:
    rows = pairs(3) + [{"prompt": [{"role": "user", "content": "Long?"}],
                        "completion": [{"role": "assistant", "content": "yes " * 40}]}]
    found = checks(rows, {"max_length": 60})
    cut = found["completion-truncated"]
    assert cut["rows"] == [3]
    assert cut["message"].startswith("1 of 4 examples (25.0%) are longer than max_length 60; in 1 of 4 example(s) "
                                     "(row 3) the cut (keep_start) removes trained tokens: raise trainer.max_length to")
    assert checks(rows, {"max_length": 400})["completion-truncated"]["message"] == (
        "0 of 4 examples (0.0%) are longer than max_length 400")


def test_identical_chosen_and_rejected(checks: Checks) -> None:
    rows = tiny.preference_rows(6)
    rows[2]["rejected"] = rows[2]["chosen"]
    found = checks(rows, {"type": "dpo"})
    assert found["chosen-equals-rejected"]["rows"] == [2]
    assert found["no-trained-tokens"]["status"] == "skip"
    assert checks(tiny.preference_rows(6), {"type": "dpo"})["chosen-equals-rejected"]["status"] == "pass"


def test_training_template_that_renders_unlike_the_saved_one(checks: Checks) -> None:
    """TRL swaps in its own training version of Qwen3's template for assistant-only loss; the run saves the
    original, which drops the earlier turns' thinking: the served model sees another rendering (LLaMA-Factory
    PR#10777). The template is the one TRL ships as Qwen3's (trl/chat_templates/qwen3.jinja)."""
    qwen3 = (Path(trl.__file__).parent / "chat_templates" / "qwen3.jinja").read_text()
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello"},
             {"role": "user", "content": "Again"}, {"role": "assistant", "content": "Hello again"}]
    found = checks([{"messages": turns}] * 3, {"assistant_only_loss": True}, qwen3)
    differs = found["saved-template-differs"]
    assert differs["status"] == "fail" and differs["rows"] == [0]
    assert differs["message"].startswith("TRL's training template (swapped in for assistant-only loss) and the "
                                         "template saved with the tokenizer (what a served model uses) render row 0 "
                                         "differently: from character")


@pytest.mark.parametrize(("trainer", "status"), [
    ({"packing": True, "packing_strategy": "wrapped", "max_length": 64}, "fail"),
    ({"packing": True, "max_length": 64}, "pass"),
    ({"packing": True, "max_length": 64, "padding_free": True}, "pass"),
])
def test_packed_sequences(checks: Checks, trainer: dict[str, Any], status: str) -> None:
    """trl#2834: packed sequences that attend to each other. transformers 5 keeps them apart from the position
    ids for every attention implementation it has a mask function for; the wrapped strategy has no boundaries."""
    found = checks(tiny.sft_rows(), trainer)["sequences-see-each-other"]
    assert found["status"] == status
    if status == "fail":
        assert found["message"].startswith("packing_strategy wrapped cuts the concatenated examples into rows")
    else:
        assert found["message"] == "sdpa keeps the packed sequences apart (position ids restart per sequence)"


def test_an_attention_implementation_without_a_mask_function(checks: Checks) -> None:
    found = checks(tiny.sft_rows(), {"packing": True, "max_length": 64}, attn_implementation="my_kernel")
    assert found["sequences-see-each-other"]["message"].startswith(
        "attn_implementation 'my_kernel' has no mask function in transformers' masking_utils")


def test_an_allowed_error_warns_instead(checks: Checks) -> None:
    path = checks.recipe(chat(), {"assistant_only_loss": True}, MARKERS_WITHOUT_END)
    assert main(["data", str(path), "dataset.checks.allow=[eos-never-trained]", "--check"]) == 0
    out = checks.capsys.readouterr().out
    assert "  eos-never-trained          fail (allowed)" in out
    assert "warning: data check eos-never-trained (allowed by dataset.checks.allow): the stop token" in out


def test_docs_and_readme_list_every_rule() -> None:
    root = Path(__file__).resolve().parents[2]
    docs, readme = (root / "docs" / "data.md").read_text(), (root / "README.md").read_text()
    for name, (severity, _) in defaults.DATA_CHECKS.items():
        assert f"| `{name}` | {severity} |" in docs, name
        assert f"`{name}`" in readme, name


def test_explain_names_the_rule_and_an_unknown_check_is_refused() -> None:
    from peftrun.errors import RecipeError
    from peftrun.recipe import explain
    from peftrun.recipe.loader import load_recipe
    from peftrun.recipe.resolver import resolve

    base = {"model": {"name_or_path": "org/model"}, "trainer": {"type": "sft"}, "dataset": {"path": "org/data"}}
    sources = {v["key"]: (v["value"], v["source"]) for v in explain.as_data(resolve(load_recipe(base), CPU))["values"]}
    assert sources["dataset.checks.allow"] == ([], (
        "rule data-checks: no-trained-tokens, eos-never-trained, assistant-mask-empty stop a run (exit 3) unless "
        "allowed here; the other checks warn"))
    with pytest.raises(RecipeError, match="dataset.checks.allow.0: Input should be 'no-trained-tokens'"):
        load_recipe({**base, "dataset": {"path": "org/data", "checks": {"allow": ["eos-never"]}}})
