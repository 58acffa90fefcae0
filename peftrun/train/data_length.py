"""The data's longest training example, for the plan's tokens per row: padded batches peak at the batch holding
it, so SFT data shorter than max_length is planned at its own length (`peftrun plan`, `--dry-run`)."""

from __future__ import annotations

from dataclasses import replace

from peftrun.plan.settings import Settings, read_settings
from peftrun.recipe.plan import Plan

MAX_ROWS_READ = 20_000  # larger data keeps the max_length assumption (tokenizing it all would make plan slow)


def sized_for(plan: Plan, longest: int | None) -> Settings:
    """The plan's settings, with the tokens per row of the data's longest example when it is known and shorter
    than max_length (padded batches peak at the batch holding it)."""
    settings = read_settings(plan)
    if longest is None or longest >= settings.length:
        return settings
    return replace(settings, length=longest, length_from_data=True)


def longest_example(plan: Plan) -> int | None:
    """Tokens of the longest training example as TRL's SFT preparation makes it, for SFT data in local files (at
    most MAX_ROWS_READ rows) that this machine reads; None otherwise (the plan then assumes max_length)."""
    from peftrun.builders import build_training_args
    from peftrun.data import load_training_data
    from peftrun.data.preview import sft_prepared
    from peftrun.hub import is_local
    from peftrun.recipe.hardware import CPU
    from peftrun.recipe.resolver import resolve
    from peftrun.train.modeling import load_tokenizer
    from peftrun.train.progress import quiet

    sources = [source for _, source in plan.recipe.dataset.all_sources()]
    if plan.trainer_type != "sft" or not all(is_local(str(source.path)) for source in sources):
        return None
    try:
        with quiet():  # the libraries' progress bars and notices stay off the plan's output
            data = load_training_data(plan)
            if not 0 < len(data.train) <= MAX_ROWS_READ:
                return None
            here = resolve(plan.recipe, CPU)  # the data is prepared alike everywhere; TRL refuses GPU precision on a CPU
            prepared = sft_prepared(data.train, load_tokenizer(here), build_training_args(here))
    except Exception:  # noqa: BLE001 - a by-product: the run reports bad data; the plan keeps max_length
        return None
    return max(len(ids) for ids in prepared["input_ids"])
