"""The editor schema in the program editors run: yaml-language-server, driven over the Language Server
Protocol. No false errors on the shipped recipes and bases; each realistic mistake is one diagnostic at its
line naming the key, the allowed values or the bound; hover shows the field's own description."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peftrun.recipe.schema.jsonschema import default_schema_path
from peftrun.recipe.starters import starters
from tests.recipe.schema.lsp import YamlLanguageServer

ROOT = Path(__file__).resolve().parents[3]
FILES = list(starters().values())  # the shipped recipes and the package's bases

# (recipe text, (line, column) of the diagnostic, its message): one diagnostic each
BAD = [
    ("peft: lora\n", (0, 6), 'Incorrect type. Expected "Peft".'),
    ("trainer: dpo\n", (0, 9), 'Incorrect type. Expected "Trainer".'),
    ("launch: ddp\n", (0, 8), 'Incorrect type. Expected "Launch".'),
    ("peft:\n  method: lora\n  target_modules: all_linear\n", (2, 18),
     'Value is not accepted. Valid values: "all-linear", "attention", "qv".'),
    ("trainer:\n  type: sft\n  num_train_epochs: -1\n", (2, 20), "Value is below the exclusive minimum of 0."),
    ("trainer:\n  type: sft\n  per_device_train_batch_size: 0\n", (2, 31), "Value is below the minimum of 1."),
    ("trainer:\n  type: dpo\n  beta: -0.1\n", (2, 8), "Value is below the minimum of 0."),
    ("extends: peftrun:sft-lora\npeft:\n  alpha: 32\n", (2, 2), "Property alpha is not allowed."),
    ("peft:\n  method: lora\n  lora_alpah: 16\n", (2, 2), "Property lora_alpah is not allowed."),
    ("trainer:\n  type: sft\n  max_seq_length: 512\n", (2, 2), "Property max_seq_length is not allowed."),
    ("model:\n  name_or_path: m\n  trust_remote_code: yes\n", (2, 21), 'Incorrect type. Expected "boolean".'),
    ("quantization:\n  bits: 3\n", (1, 8), "Value is not accepted. Valid values: 4, 8."),
    ("traner:\n  type: sft\n", (0, 0), "Property traner is not allowed."),
    ("trainer:\n  type: sft\n  max_steps: 0\n", (2, 13), "Value is below the minimum of 1."),
    ("seed: -1\n", (0, 6), "Value is below the minimum of 0."),
    ("trainer:\n  type: dpo\n  loss_type: sigmod\n", (2, 13),
     'Value is not accepted. Valid values: "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", '
     '"sppo_hard", "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm".'),
    ("peft:\n  method: lora\n  lora_dropout: 1.5\n", (2, 16), "Value is above the exclusive maximum of 1."),
    ("model:\n  name_or_path: m\n  dtype: bf16\n", (2, 9),
     'Value is not accepted. Valid values: "auto", "bfloat16", "float16", "float32".'),
]


@pytest.fixture(scope="module")
def server() -> Iterator[YamlLanguageServer]:
    lsp = YamlLanguageServer(default_schema_path())  # fails with the reason when the server is not installed
    yield lsp
    lsp.close()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_false_errors_on_shipped_files(server: YamlLanguageServer, path: Path) -> None:
    assert [d["message"] for d in server.diagnostics(path.read_text(), path)] == []


@pytest.mark.parametrize(("text", "where", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_mistake_is_one_diagnostic_at_its_place(server: YamlLanguageServer, text: str, where: tuple[int, int],
                                                  message: str) -> None:
    found = [((d["range"]["start"]["line"], d["range"]["start"]["character"]), d["message"])
             for d in server.diagnostics(text)]
    assert found == [(where, message)]


@pytest.mark.parametrize(("text", "line", "column", "description"), [
    ("trainer:\n  type: sft\n  learning_rate: 2.0e-4\n", 2, 4, "Peak learning rate; auto = peftrun's learning-rate rule"),
    ("peft:\n  method: lora\n  r: 8\n", 2, 2, "Lora attention dimension"),
    ("trainer:\n  type: sft\n  num_train_epochs: 1\n", 2, 4, "Total number of training epochs to perform."),
])
def test_hover_shows_the_fields_own_description(server: YamlLanguageServer, text: str, line: int, column: int,
                                                description: str) -> None:
    hover = server.hover(text, line, column)
    assert description in hover and "interpolation" not in hover.lower()
