"""The writer takes out what peftrun refuses: a tool default for a key the section does not have is a silent
no-op, any other refused tool default is listed; the decision reads the problem's kind, not its wording."""

from __future__ import annotations

from peftrun.interop.keymap import Translation
from peftrun.interop.writer import finish


def test_a_refused_tool_default_is_listed_unless_its_key_does_not_exist() -> None:
    tr = Translation("sometool", {})
    for path, value in (("model.name_or_path", "org/model"), ("trainer.type", "sft"), ("dataset.path", "d.jsonl")):
        tr.write(path, value, path)
    tr.write("trainer.no_such_setting", 1, "no_such_setting", default=True)
    tr.write("model.dtype", "bf16 is a field of the trainer", "torch_dtype", default=True)  # text that looked like it
    imported = finish(tr, "r", "a test config")
    assert "no_such_setting" not in imported.recipe.get("trainer", {})
    assert "dtype" not in imported.recipe["model"]
    assert list(imported.translation.not_carried) == ["torch_dtype (default)"]
    assert "sometool's default, model.dtype: 'bf16 is a field of the trainer', not taken by this peftrun" in \
        imported.translation.not_carried["torch_dtype (default)"]
