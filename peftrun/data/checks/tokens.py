"""The rules on the tokens that carry loss in SFT: read from the labels TRL itself builds (context.Prepared)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from peftrun.data.checks.context import Context, Prepared, Result, failed, passed, rows_text, skipped


def _on_prepared(rule: Callable[[Context, Prepared], Result]) -> Callable[[Context], Result]:
    """A rule on the labels SFT prepared; skipped, with the reason, where there are none."""
    @functools.wraps(rule)
    def checked(ctx: Context) -> Result:
        if ctx.sft is not None:
            return rule(ctx, ctx.sft)
        if ctx.empty_masks:
            return skipped("TRL refuses this data (see assistant-mask-empty)")
        return skipped(f"the {ctx.trainer_type} trainer builds its own labels")

    return checked


def _loss_mode(ctx: Context) -> str:
    """Which tokens the SFT trainer trains, in words."""
    if ctx.assistant_only:
        return "assistant-only loss: the tokens inside the template's {% generation %} blocks"
    completion_only = ctx.args.completion_only_loss
    if completion_only is None:
        completion_only = "completion" in ctx.data.train.column_names
    return "completion-only loss: the completion's tokens" if completion_only else "every token"


@_on_prepared
def no_trained_tokens(ctx: Context, sft: Prepared) -> Result:
    kept = sft.kept
    if kept:
        return passed(f"{len(kept)} of {ctx.rows} examples carry loss")
    limit = ctx.args.max_length
    if any(sft.trained(i, after_truncation=False) for i in range(ctx.rows)):
        longest = max(len(ids) for ids in sft.ids)
        return failed(f"max_length {limit} ({ctx.args.truncation_mode}) cuts every trained token from all "
                      f"{ctx.rows} examples: raise trainer.max_length to {longest} (the longest example)")
    return failed(f"none of the {ctx.rows} examples has a token that carries loss ({_loss_mode(ctx)}): every "
                  "label TRL builds is -100, so the model learns nothing; check that the completions / assistant "
                  "replies are not empty, or set trainer.completion_only_loss: false")


@_on_prepared
def examples_without_loss(ctx: Context, sft: Prepared) -> Result:
    rows = [i for i in range(ctx.rows) if not sft.trained(i, after_truncation=False)]
    if not rows or len(rows) == ctx.rows:
        return passed() if not rows else skipped("no example carries loss (see no-trained-tokens)")
    fate = ("the trainer drops them" if ctx.args.max_length is not None
            else "they stay in the batches and teach nothing")
    return failed(f"{rows_text(rows, ctx.rows)} carry no loss ({_loss_mode(ctx)}): {fate}; fill in or remove "
                  "their completions / replies", rows)


def _stop_missing(ctx: Context, sft: Prepared) -> tuple[str, int, list[int], list[int]] | Result:
    """(stop token, its id, rows the trainer keeps, kept rows where it carries no loss)."""
    stop = ctx.stop_token
    if stop is None:
        return skipped("the tokenizer has no EOS token and the trainer none")
    stop_id = ctx.tokenizer.convert_tokens_to_ids(stop)
    kept = sft.kept
    if not kept:
        return skipped("no example carries loss (see no-trained-tokens)")
    return stop, stop_id, kept, [i for i in kept if stop_id not in sft.trained(i)]


def _why_stop_untrained(ctx: Context, sft: Prepared, stop: str, stop_id: int, rows: list[int]) -> str:
    """The causes, each with its fix: cut by max_length, never written, or written but masked."""
    cut = {i for i in rows if stop_id in sft.trained(i, after_truncation=False)}
    absent = {i for i in rows if i not in cut and stop_id not in sft.seen_ids[i]}
    masked = [i for i in rows if i not in cut and i not in absent]
    causes = []
    if cut:
        causes.append(f"in {len(cut)}, max_length {ctx.args.max_length} cuts it off (raise trainer.max_length)")
    if absent:
        causes.append(f"in {len(absent)}, the input never contains it: the chat template ends turns with another "
                      "token (set trainer.eos_token to that token, or model.chat_template to a template that ends "
                      f"turns with {stop!r})")
    if masked and ctx.assistant_only:
        causes.append(f"in {len(masked)}, the template's {{% generation %}} block ends before {stop!r}, so the "
                      "assistant mask gives it to the next turn: put it inside the block (peftrun's shipped "
                      "templates do)")
    elif masked:
        causes.append(f"in {len(masked)}, it is in the input but its label is -100 ({_loss_mode(ctx)}): end each "
                      "completion with it, or set trainer.completion_only_loss: false")
    return "; ".join(causes)


def _stop_rule(ctx: Context, sft: Prepared, every: bool) -> Result:
    found = _stop_missing(ctx, sft)
    if isinstance(found, Result):
        return found
    stop, stop_id, kept, rows = found
    if not rows or every != (len(rows) == len(kept)):  # `every`: the rule for "in none", else for "in some"
        return passed(f"{stop!r} carries loss in {len(kept) - len(rows)} of {len(kept)} examples")
    why = _why_stop_untrained(ctx, sft, stop, stop_id, rows)
    head = f"the stop token {stop!r} (id {stop_id})"
    if every:
        return failed(f"{head} carries loss in none of the {len(kept)} examples, so the model never learns to end "
                      f"its reply: {why}", rows)
    return failed(f"{head} carries no loss in {rows_text(rows, len(kept))}, so the model does not always learn to "
                  f"end its reply: {why}", rows)


@_on_prepared
def eos_never_trained(ctx: Context, sft: Prepared) -> Result:
    return _stop_rule(ctx, sft, every=True)


@_on_prepared
def eos_not_always_trained(ctx: Context, sft: Prepared) -> Result:
    return _stop_rule(ctx, sft, every=False)


def assistant_mask_empty(ctx: Context) -> Result:
    if not ctx.assistant_only:
        return skipped("no assistant-only loss")
    rows = ctx.empty_masks
    if not rows:
        return passed()
    template = ctx.plan.recipe.model.chat_template or "the tokenizer's own"
    head = (f"every one of the {ctx.rows} examples has" if len(rows) == ctx.rows else f"{rows_text(rows, ctx.rows)} have")
    cause = ("has no {% generation %} markers and TRL 1.16 has no training version of it" if ctx.unpatched else
             "marks no assistant token with {% generation %} (markers that cover no reply, or a conversation "
             "without an assistant turn)")
    return failed(f"{head} an empty assistant mask under assistant_only_loss: the chat template ({template}) "
                  f"{cause}, and TRL refuses the whole dataset; use a template with generation markers "
                  "(model.chat_template: one of peftrun's shipped templates), or set trainer.assistant_only_loss: "
                  "false", rows)


@_on_prepared
def double_bos(ctx: Context, sft: Prepared) -> Result:
    bos, bos_id = ctx.tokenizer.bos_token, ctx.tokenizer.bos_token_id
    if bos_id is None:
        return skipped("the tokenizer has no BOS token")
    rows = [i for i, ids in enumerate(sft.ids) if ids[:2] == [bos_id, bos_id]]
    if not rows:
        return passed()
    return failed(f"{rows_text(rows, ctx.rows)} start with the BOS token {bos!r} twice: the text already begins "
                  "with it (written by a chat template or by the data) and the tokenizer adds it again; remove it "
                  "from the text, the tokenizer adds it", rows)


@_on_prepared
def completion_truncated(ctx: Context, sft: Prepared) -> Result:
    limit = ctx.args.max_length
    if limit is None:
        return passed("no max_length: nothing is truncated")
    longer = [i for i, ids in enumerate(sft.ids) if len(ids) > limit]
    cut = [i for i in longer if len(sft.trained(i, after_truncation=False)) > len(sft.trained(i))]
    share = f"{len(longer)} of {ctx.rows} examples ({len(longer) / ctx.rows:.1%}) are longer than max_length {limit}"
    if not cut:
        return passed(share + ("; the cut removes no trained token" if longer else ""))
    dropped = [i for i in cut if not sft.trained(i)]
    lost = f"; {len(dropped)} of them lose every trained token and the trainer drops them" if dropped else ""
    longest = max(len(ids) for ids in sft.ids)
    return failed(f"{share}; in {rows_text(cut, ctx.rows)} the cut ({ctx.args.truncation_mode}) removes trained "
                  f"tokens{lost}: raise trainer.max_length to {longest} (the longest example) or shorten them", cut)
