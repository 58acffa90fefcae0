"""Record formats: every named format, the mapping form, mixtures, and bad records located by source, row and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peftrun.data import load_training_data
from peftrun.errors import DataError, RecipeError
from peftrun.recipe.loader import load_recipe
from peftrun.recipe.resolver import resolve
from tests import tiny
from tests.train.test_runner import LORA, recipe


def load(tmp_path: Path, dataset: dict[str, Any], trainer: str = "sft") -> Any:
    data = recipe(Path("m/m"), tmp_path, {"type": trainer}, LORA, dataset=dataset)
    return load_training_data(resolve(load_recipe(data)))


def source(tmp_path: Path, name: str, rows: list[dict], fmt: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": str(tiny.write_jsonl(tmp_path / f"{name}.jsonl", rows))}
    if fmt is not None:
        out["format"] = fmt
    return out


def U(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def A(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def S(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


def test_alpaca_joins_instruction_and_input_into_the_prompt(tmp_path: Path) -> None:
    rows = [{"instruction": "Add", "input": "2 and 3", "output": "5"},
            {"instruction": "Greet", "input": "", "output": "Hi", "system": "Be kind."}]
    data = load(tmp_path, source(tmp_path, "a", rows, "alpaca"))
    assert data.format == "prompt-completion"
    assert data.train[0] == {"prompt": [U("Add\n\n2 and 3")], "completion": [A("5")]}
    assert data.train[1] == {"prompt": [S("Be kind."), U("Greet")], "completion": [A("Hi")]}


def test_sharegpt_maps_roles_and_system(tmp_path: Path) -> None:
    rows = [{"system": "Be brief.", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
        {"from": "tool", "value": "42"}, {"from": "gpt", "value": "It is 42"}]}]
    data = load(tmp_path, source(tmp_path, "s", rows, "sharegpt"))
    assert data.format == "conversational"
    assert data.train[0]["messages"] == [S("Be brief."), U("Hi"), A("Hello"), {"role": "tool", "content": "42"},
                                         A("It is 42")]


def test_sharegpt_preference_and_conversation_pair_give_prompt_chosen_rejected(tmp_path: Path) -> None:
    pref = [{"conversations": [{"from": "human", "value": "2+2?"}],
             "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "5"}}]
    data = load(tmp_path, source(tmp_path, "p", pref, "sharegpt-preference"), trainer="dpo")
    assert data.train[0] == {"prompt": [U("2+2?")], "chosen": [A("4")], "rejected": [A("5")]}
    pairs = [{"chosen": [S("Math."), U("2+2?"), A("4")], "rejected": [S("Math."), U("2+2?"), A("5")]}]
    data = load(tmp_path, source(tmp_path, "c", pairs, "conversation-pair"), trainer="dpo")
    assert data.format == "preference"
    assert data.train[0] == {"prompt": [S("Math."), U("2+2?")], "chosen": [A("4")], "rejected": [A("5")]}


def test_unpaired_shapes_for_kto(tmp_path: Path) -> None:
    kto = [{"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}], "kto_tag": True}]
    data = load(tmp_path, source(tmp_path, "k", kto, "sharegpt-kto"))
    assert data.train[0] == {"prompt": [U("2+2?")], "completion": [A("4")], "label": True}
    pairs = [{"prompt": "2+2?", "chosen": "4", "rejected": "5"}]
    data = load(tmp_path, source(tmp_path, "u", pairs, "unpaired"))
    assert data.train.to_list() == [{"prompt": "2+2?", "completion": "4", "label": True},
                                    {"prompt": "2+2?", "completion": "5", "label": False}]


def test_mapping_of_turns_with_a_role_map(tmp_path: Path) -> None:
    rows = [{"dialog": [{"speaker": "q", "text": "Hi"}, {"speaker": "a", "text": "Ho"}], "sys": "Be brief."}]
    fmt = {"messages": "dialog", "role": "speaker", "content": "text", "roles": {"q": "user", "a": "assistant"},
           "system": "sys"}
    data = load(tmp_path, source(tmp_path, "m", rows, fmt))
    assert data.train[0]["messages"] == [S("Be brief."), U("Hi"), A("Ho")]


def test_mapping_of_field_templates(tmp_path: Path) -> None:
    rows = [{"question": "Capital of France?", "context": "Europe", "answer": "Paris", "n": 3}]
    fmt = {"prompt": "Question: {question}\n{context} ({n}) {{literal}}", "completion": " {answer}"}
    data = load(tmp_path, source(tmp_path, "t", rows, fmt))
    assert data.train[0] == {"prompt": "Question: Capital of France?\nEurope (3) {literal}", "completion": " Paris"}
    chat = load(tmp_path, source(tmp_path, "t", rows, {**fmt, "chat": True}))
    assert chat.train[0] == {"prompt": [U("Question: Capital of France?\nEurope (3) {literal}")],
                             "completion": [A(" Paris")]}


@pytest.mark.parametrize("template,expected", [
    ("{q.upper}", "`{q.upper}` is not a plain field name"),
    ("{q[0]}", "`{q[0]}` is not a plain field name"),
    ("{q:>10}", "`{q:>10}` is not a plain field name"),
    ("{q!r}", "`{q!r}` is not a plain field name"),
    ("{}", "name the field inside braces"),
    ("{q", "expected '}' before end of string"),
])
def test_field_templates_hold_field_names_only(template: str, expected: str) -> None:
    data = recipe(Path("m/m"), Path("d.jsonl"), {"type": "sft"}, LORA,
                  dataset={"path": "d.jsonl", "format": {"prompt": template, "completion": "{a}"}})
    with pytest.raises(RecipeError) as error:
        load_recipe(data)
    assert expected in str(error.value) and "dataset.format.prompt" in str(error.value)


def test_a_mixture_of_three_formats_becomes_one_conversational_dataset(tmp_path: Path) -> None:
    alpaca = source(tmp_path, "a", [{"instruction": f"Say {i}", "output": str(i)} for i in range(4)], "alpaca")
    alpaca["max_samples"] = 3
    sharegpt = source(tmp_path, "s", [{"conversations": [{"from": "human", "value": "Hi"},
                                                         {"from": "gpt", "value": "Ho"}]}] * 2, "sharegpt")
    custom = source(tmp_path, "c", [{"q": "Why?", "a": "Because"}], {"prompt": "{q}", "completion": "{a}", "chat": True})
    data = load(tmp_path, {"sources": [alpaca, sharegpt, custom]})
    assert data.format == "conversational" and len(data.train) == 6
    assert data.train["messages"][0] == [U("Say 0"), A("0")]
    assert data.train["messages"][3] == [U("Hi"), A("Ho")]
    assert data.train["messages"][5] == [U("Why?"), A("Because")]
    assert [(s["key"], s["format"], s["rows"]) for s in data.sources] == [
        ("dataset.sources.0", "alpaca", 3), ("dataset.sources.1", "sharegpt", 2), ("dataset.sources.2", "mapping", 1)]
    assert all(len(s["fingerprint"]) == 16 for s in data.sources)
    mixed = load(tmp_path, {"sources": [alpaca, sharegpt], "interleave": [1, 1], "eval": {"fraction": 0.2}})
    again = load(tmp_path, {"sources": [alpaca, sharegpt], "interleave": [1, 1], "eval": {"fraction": 0.2}})
    assert mixed.train["messages"] == again.train["messages"], "interleaving follows the recipe's seed"


def test_sources_that_cannot_mix_are_named(tmp_path: Path) -> None:
    text = source(tmp_path, "t", tiny.text_rows(2))
    chat = source(tmp_path, "s", [{"conversations": [{"from": "human", "value": "Hi"}]}], "sharegpt")
    with pytest.raises(DataError) as error:
        load(tmp_path, {"sources": [text, chat]})
    assert str(error.value) == ("dataset.sources: the sources convert to different columns and cannot be mixed: "
                                "dataset.sources.0 has ['text']; dataset.sources.1 has ['messages']")


def bad(tmp_path: Path, rows: list[dict], fmt: Any) -> str:
    with pytest.raises(DataError) as error:
        load(tmp_path, {"sources": [source(tmp_path, "ok", tiny.sft_rows(2)), source(tmp_path, "bad", rows, fmt)]})
    return str(error.value)


def test_a_missing_field_names_the_fields_the_data_has(tmp_path: Path) -> None:
    message = bad(tmp_path, [{"instruction": "Add", "answer": "5"}], "alpaca")
    assert message == (f"dataset.sources.1 ({tmp_path}/bad.jsonl): format alpaca needs the field(s) output, but the "
                       "data has ['instruction', 'answer']; if `answer` holds output, rename it in the source: "
                       "`columns: {output: answer}`")
    message = bad(tmp_path, [{"q": "x"}], {"prompt": "{q} {context}", "completion": "{a}"})
    assert message == (f"dataset.sources.1 ({tmp_path}/bad.jsonl): format mapping needs the field(s) context, a, but "
                       "the data has ['q']")


def test_bad_records_name_source_row_and_field(tmp_path: Path) -> None:
    turn = {"from": "human", "value": "Hi"}
    rows = [{"conversations": [turn, {"from": "gpt", "value": "Ho"}]},
            {"conversations": [turn, {"from": "robot", "value": "Beep"}]},
            {"conversations": []},
            {"conversations": [{"from": "gpt", "value": None}]}]
    label = f"dataset.sources.1 ({tmp_path}/bad.jsonl)"
    assert bad(tmp_path, rows, "sharegpt") == "\n  ".join([
        "3 record(s) cannot be converted with format sharegpt:",
        f"{label} row 2: conversations[1].from: role 'robot' is not one of assistant, gpt, human, system, tool, "
        "user; map it with format.roles",
        f"{label} row 3: conversations: empty conversation",
        f"{label} row 4: conversations[0].value: missing (the turn has ['from', 'value'])",
    ])
    nulls = [{"instruction": "Add", "output": "5"}, {"instruction": None, "output": "6"}]
    assert bad(tmp_path, nulls, "alpaca") == ("1 record(s) cannot be converted with format alpaca:\n  "
                                              f"{label} row 2: instruction: missing or null")


def test_mixed_shapes_in_one_source_are_refused(tmp_path: Path) -> None:
    rows = [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}, {"messages": [U("x"), A("y")]}]
    path = tiny.write_jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(DataError) as error:
        load(tmp_path, {"path": str(path)})
    assert str(error.value) == (
        f"dataset ({path}) row 3: completion, messages, prompt: this row has messages, but row 1 has completion, "
        "prompt; one source holds one shape (split the rows into two sources, or give the source a format)")


def test_schema_refuses_both_forms_and_shared_settings() -> None:
    base = recipe(Path("m/m"), Path("d.jsonl"), {"type": "sft"}, LORA)
    for dataset, message in [
        ({"path": "a.jsonl", "sources": [{"path": "b.jsonl"}]}, "give either `path` (one source) or `sources`"),
        ({"sources": [{"path": "b.jsonl"}], "max_samples": 3}, "with `sources`, set max_samples on each source"),
        ({"sources": [{"path": "b.jsonl"}], "interleave": [0.5, 0.5]}, "interleave needs one positive probability"),
    ]:
        with pytest.raises(RecipeError) as error:
            load_recipe({**base, "dataset": dataset})
        assert message in str(error.value)


def test_eval_from_its_own_sources(tmp_path: Path) -> None:
    train = source(tmp_path, "a", [{"instruction": f"Say {i}", "output": str(i)} for i in range(4)], "alpaca")
    held = source(tmp_path, "e", [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Ho"}]}],
                  "sharegpt")
    data = load(tmp_path, {"sources": [train], "eval": {"sources": [held]}})
    assert (len(data.train), data.eval["messages"]) == (4, [[U("Hi"), A("Ho")]])


def test_the_cache_can_be_relocated_and_switched_off(tmp_path: Path) -> None:
    import datasets

    alpaca = source(tmp_path, "a", [{"instruction": "Say 1", "output": "1"}], "alpaca")
    cache = tmp_path / "cache"
    cached = load(tmp_path, {**alpaca, "cache_dir": str(cache)})
    assert cached.train.cache_files and cached.train.cache_files[0]["filename"].startswith(str(cache))
    uncached = load(tmp_path, {**alpaca, "cache_dir": str(cache), "cache": False})
    assert not datasets.is_caching_enabled()
    assert not uncached.train.cache_files[0]["filename"].startswith(str(cache)), "converted data is not kept"
    load(tmp_path, alpaca)
    assert datasets.is_caching_enabled(), "the next run caches again"
