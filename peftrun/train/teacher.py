"""The distillation teacher: named by TRL's own field (trainer.teacher_model_name_or_path), loaded with the
student's quantization, dtype and device rules, and refused when its tokenizer is not the student's."""

from __future__ import annotations

from typing import Any

from peftrun.errors import Problem, RecipeError
from peftrun.recipe.plan import Plan

KEY = "trainer.teacher_model_name_or_path"


def teacher_plan(plan: Plan) -> Plan:
    """The student's plan with the teacher as its model (same dtype, quantization, attention, remote-code rule)."""
    trainer = plan.recipe.trainer
    model = plan.recipe.model.model_copy(update={
        "name_or_path": trainer.teacher_model_name_or_path, "revision": trainer.teacher_model_revision,
        "gguf_file": None, "tokenizer": None, "chat_template": None,
    })
    return plan.with_sections(model=model)


def tokenizer_difference(student: Any, teacher: Any) -> str | None:
    """How two tokenizers differ (None when they map the same tokens to the same ids)."""
    ours, theirs = student.get_vocab(), teacher.get_vocab()
    if len(ours) != len(theirs):
        return f"the teacher's vocabulary has {len(theirs)} tokens, the student's {len(ours)}"
    moved = sum(1 for token, index in ours.items() if theirs.get(token) != index)
    return f"{moved} of {len(ours)} tokens have other ids in the teacher's vocabulary" if moved else None


def load_teacher(plan: Plan, tokenizer: Any, local_rank: int = 0) -> Any:
    """The frozen teacher model, after checking that its tokenizer is the student's."""
    from peftrun.train.modeling import load_model, load_tokenizer

    teacher = teacher_plan(plan)
    difference = tokenizer_difference(tokenizer, load_tokenizer(teacher))
    if difference:
        message = (f"the teacher's tokenizer differs from the student's ({difference}); distillation compares the "
                   "two models' next-token distributions over one vocabulary: use a teacher of the student's family")
        raise RecipeError(Problem(plan.recipe.where(KEY), KEY, message), source=str(plan.recipe.path or ""))
    model = load_model(teacher, tokenizer, local_rank)
    model.eval()
    model.requires_grad_(False)
    return model
