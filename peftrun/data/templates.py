"""Chat templates (shipped by name or from a .jinja file) and special tokens, applied to a tokenizer.

The shipped templates (peftrun/data/templates/*.jinja, written for peftrun) mark each assistant reply with
{% generation %} so that TRL's assistant_only_loss trains on the replies and their end-of-turn token.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from peftrun.errors import ModelLoadError, Problem, RecipeError
from peftrun.recipe import defaults
from peftrun.recipe.plan import Plan
from peftrun.recipe.schema.model import ModelSection

log = logging.getLogger("peftrun")

# Tokens a shipped template writes literally: the tokenizer must hold each as one (special) token.
TEMPLATE_TOKENS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "qwen3": ("<|im_start|>", "<|im_end|>"),
    "qwen3-no-thinking": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "gemma": ("<start_of_turn>", "<end_of_turn>"),
    "phi3": ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
}
# Named variants of one file: name -> (file stem, text put before it)
VARIANTS = {"qwen3-no-thinking": ("qwen3", "{%- set enable_thinking = false -%}\n")}


def template_text(value: str) -> str:
    """The Jinja text of a shipped template name or a .jinja file."""
    if value not in defaults.CHAT_TEMPLATES:
        return Path(value).expanduser().read_text(encoding="utf-8")
    stem, head = VARIANTS.get(value, (value, ""))
    return head + resources.files("peftrun.data").joinpath("templates", f"{stem}.jinja").read_text(encoding="utf-8")


def checked_template(text: str, name: str, where: str) -> str:
    """`text` when transformers can compile it (its own Jinja environment, with the `{% generation %}` tag),
    else a located error naming the template's own line."""
    from jinja2 import TemplateSyntaxError
    from transformers.utils.chat_template_utils import _compile_jinja_template

    try:
        _compile_jinja_template(text)
    except TemplateSyntaxError as exc:
        raise RecipeError(Problem(where, "model.chat_template", f"{name}, line {exc.lineno}: not a valid Jinja "
                                  f"template: {exc.message}; fix the template (transformers renders it with Jinja)"))
    return text


def apply_special_tokens(tokenizer: Any, model: ModelSection) -> list[str]:
    """Set the recipe's pad / eos / bos tokens and add its extra ones; returns the tokens that were new."""
    spec = model.special_tokens
    if spec is None:
        return []
    vocab = tokenizer.get_vocab()
    wanted = [t for t in (spec.pad_token, spec.eos_token, spec.bos_token, *spec.additional) if t is not None]
    new = [t for t in dict.fromkeys(wanted) if t not in vocab]
    named = {k: v for k, v in (("pad_token", spec.pad_token), ("eos_token", spec.eos_token),
                               ("bos_token", spec.bos_token)) if v is not None}
    tokenizer.add_special_tokens({**named, "extra_special_tokens": list(spec.additional)},
                                 replace_extra_special_tokens=False)
    if new:
        log.warning("added %d token(s) to the tokenizer: %s", len(new), ", ".join(new))
    return new


def apply_chat_template(tokenizer: Any, model: ModelSection, where: str) -> None:
    """Put the recipe's chat template on the tokenizer; a shipped one needs its literal tokens in the vocabulary."""
    name = model.chat_template
    if name is None:
        return
    tokenizer.chat_template = checked_template(template_text(name), name, where)
    vocab = tokenizer.get_vocab()
    missing = [t for t in TEMPLATE_TOKENS.get(name, ()) if t not in vocab]
    if missing:
        listed = ", ".join(f'"{t}"' for t in missing)
        raise RecipeError(Problem(where, "model.chat_template", f"the {name} template writes {listed}, which the "
                                  f"tokenizer does not have; add them with model.special_tokens.additional: [{listed}] "
                                  "(their embeddings then train), or pick a template of the model's family"))
    if defaults.CHAT_TEMPLATES.get(name, "") is None and tokenizer.eos_token is None:
        raise RecipeError(Problem(where, "model.chat_template", f"the {name} template ends replies with the "
                                  "tokenizer's EOS, and the tokenizer has none: set model.special_tokens.eos_token"))


def prepare_tokenizer(tokenizer: Any, plan: Plan) -> Any:
    """The recipe's special tokens and chat template on a loaded tokenizer (run and `peftrun data` alike)."""
    model = plan.recipe.model
    apply_special_tokens(tokenizer, model)
    apply_chat_template(tokenizer, model, plan.recipe.where("model.chat_template"))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        log.warning("tokenizer has no pad token: using the eos token %r for padding", tokenizer.eos_token)
    return tokenizer


def require_template(tokenizer: Any, plan: Plan, conversational: bool) -> None:
    """Conversational data needs a chat template: a base model without one is refused with a hint."""
    if not conversational or tokenizer.chat_template:
        return
    model = plan.recipe.model
    name = model.tokenizer or model.name_or_path
    raise RecipeError(Problem(plan.recipe.where("model"), "model.chat_template", (
        f"the data is conversational but the tokenizer of {name} has no chat template (a base model?): set "
        f"model.chat_template to one of {', '.join(defaults.CHAT_TEMPLATES)} (alpaca suits a base model) "
        "or to a .jinja file")))


def trainable_token_ids(plan: Plan, model: Any, tokenizer: Any) -> dict[str, list[int]] | None:
    """PEFT's trainable_token_indices for the plan's trainable tokens: the rows of the input embedding,
    and of the output layer when it is not tied to it (a new EOS must also be predicted)."""
    peft = plan.recipe.peft
    tokens = getattr(peft, "trainable_tokens", None)
    if not tokens:
        return None
    unknown = [t for t in tokens if t not in tokenizer.get_vocab()]
    if unknown:
        raise ModelLoadError(f"peft.trainable_tokens: {unknown} are not tokens of the tokenizer; add them with "
                             "model.special_tokens.additional")
    ids = sorted({tokenizer.convert_tokens_to_ids(t) for t in tokens})
    names = {id(m): n for n, m in model.named_modules()}
    layers = {names[id(model.get_input_embeddings())]: ids}
    output = model.get_output_embeddings()
    if output is not None and output.weight is not model.get_input_embeddings().weight:
        layers[names[id(output)]] = ids
    return layers


def fit_embeddings(model: Any, tokenizer: Any) -> None:
    """Grow the embeddings when the tokenizer has more tokens than the model (new special tokens)."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer))
        log.warning("resized the embeddings from %d to %d tokens", rows, len(tokenizer))
