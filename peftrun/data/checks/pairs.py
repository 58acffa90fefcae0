"""The rules beside the trained tokens: preference pairs, the template the run saves, and what packed sequences see."""

from __future__ import annotations

import tempfile
from typing import Any

from peftrun.data.checks.context import Context, Result, failed, passed, rows_text, skipped, template_or_none

SNIPPET = 60  # characters of each rendering a message shows from where they part
RENDERED_ROWS = 8  # conversations rendered with both templates


def chosen_equals_rejected(ctx: Context) -> Result:
    columns = ctx.data.train.column_names
    if not {"chosen", "rejected"} <= set(columns):
        return skipped("no preference pairs")
    pairs = ctx.data.train.select_columns(["chosen", "rejected"])
    rows = [i for i, (chosen, rejected) in enumerate(zip(pairs["chosen"], pairs["rejected"], strict=True))
            if chosen == rejected]
    if not rows:
        return passed()
    return failed(f"{rows_text(rows, ctx.rows)} have identical chosen and rejected replies: their preference "
                  "loss has nothing to prefer (its gradient is zero) and they only dilute the batch; remove them", rows)


def _saved_tokenizer(tokenizer: Any, trust_remote_code: bool) -> Any:
    """The tokenizer as the run saves it next to the adapter, loaded back (what serving will use)."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as directory:
        tokenizer.save_pretrained(directory)
        return AutoTokenizer.from_pretrained(directory, trust_remote_code=trust_remote_code)


def _parting(trained: str, served: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(trained, served)) if a != b), min(len(trained), len(served)))
    return (f"from character {at}, training renders {trained[at:at + SNIPPET]!r} and the saved tokenizer "
            f"{served[at:at + SNIPPET]!r}")


def saved_template_differs(ctx: Context) -> Result:
    conversations = ctx.conversations(RENDERED_ROWS)
    if not conversations or not ctx.tokenizer.chat_template:
        return skipped("the data is not conversational")
    swapped = template_or_none(ctx.tokenizer, ctx.args)[0] if ctx.trainer_type == "sft" else None
    saved = _saved_tokenizer(ctx.tokenizer, ctx.plan.recipe.model.trust_remote_code)
    fix = ("set model.chat_template to one template with {% generation %} markers (a shipped one) so that "
           "training and serving use the same" if swapped else
           "the template set on the tokenizer does not survive save_pretrained; set model.chat_template")
    if not saved.chat_template:
        return failed(f"the tokenizer the run saves carries no chat template, so a served model renders prompts "
                      f"without it: {fix}")
    where = "TRL's training template (swapped in for assistant-only loss)" if swapped else "the training template"
    for row, conversation in enumerate(conversations):
        trained = ctx.tokenizer.apply_chat_template(conversation, chat_template=swapped, tokenize=False)
        served = saved.apply_chat_template(conversation, tokenize=False)
        if served != trained:
            return failed(f"{where} and the template saved with the tokenizer (what a served model uses) render "
                          f"row {row} differently: {_parting(trained, served)}; {fix}", [row])
        if saved(served, add_special_tokens=False)["input_ids"] != ctx.tokenizer(trained, add_special_tokens=False)["input_ids"]:
            return failed(f"the saved tokenizer renders row {row} as training does but tokenizes it differently "
                          "(its special tokens changed on save)", [row])
    return passed(f"the saved tokenizer renders the first {len(conversations)} conversations as training does")


def sequences_see_each_other(ctx: Context) -> Result:
    """transformers 5 keeps packed sequences apart (masking_utils.find_packed_sequence_indices) when the batch has
    position ids that restart per sequence, no attention mask and no cache (TRL passes use_cache=False), for every
    attention implementation with a mask function (eager, sdpa, flex) and for flash attention (cu_seq_lens)."""
    args = ctx.args
    packing, padding_free = bool(getattr(args, "packing", False)), bool(getattr(args, "padding_free", False))
    if not (packing or padding_free):
        return skipped("no packing, no padding-free batches")
    if packing and args.packing_strategy == "wrapped":
        return failed("packing_strategy wrapped cuts the concatenated examples into rows of max_length without "
                      "sequence boundaries (position ids run on, the attention mask is all ones): every example "
                      "attends to the ones before it in its row; use trainer.packing_strategy: bfd")
    model = ctx.plan.recipe.model
    implementation = model.attn_implementation or "sdpa"
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    if "flash" not in implementation and implementation not in ALL_MASK_ATTENTION_FUNCTIONS.valid_keys():
        return failed(f"attn_implementation {implementation!r} has no mask function in transformers' "
                      "masking_utils, so nothing keeps the packed sequences apart; use sdpa, eager, flex_attention "
                      "or a flash attention kernel")
    if model.trust_remote_code:
        return failed("the model runs its own (remote) code, which may build its attention mask without "
                      "transformers' masking_utils, where packed sequences are kept apart; check that it reads the "
                      "position ids, or turn packing / padding_free off")
    return passed(f"{implementation} keeps the packed sequences apart (position ids restart per sequence)")
