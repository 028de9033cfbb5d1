"""The one table of methods: what each method's stages are.

Every other module asks this table; adding a method is one line here. A method is either a
language-model method (`kind` "lm": init -> [ground] -> finetune -> evaluate) or a non-LM
anchor (`kind` "anchor": fit -> evaluate, ranking the catalog without any SID token).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One method: its kind, how the new rows start, whether and on what they are grounded, its tasks.

    Attributes:
        init: the initialization of the new rows (`mean`, `mean-hf`, `random`, `text`), `base` for
            the config's `init.base`, or None (anchors have no new rows).
        ground: a grounding stage (only the new rows train) runs after init.
        ground_on: what grounding trains on: `text` (text<->SID prompts, GTI) or `next-item` (the
            fine-tuning's next-item prompts: the `rows-first` control).
        lcrec_tasks: fine-tuning mixes the LC-Rec tasks (item2index, index2item, fusionseqrec) in.
        shares: the method whose init (and ground) stage folders this one reuses; None: its own.
        kind: `lm` (a language model with SID tokens) or `anchor` (`mostpop`, `sasrec`: no init,
            ground or finetune stage; a fit stage, then the same evaluation files).
        tunes_rows_lr: in a learning-rate grid (`gti compare --grid`), the grid's
            `finetune.new_rows_lr` values are tried for this method; False: its new rows train at
            `finetune.lr` in every grid point (standard practice, `mean`).
        backbone: a model this method always runs on, whatever `model.name` says (`scratch`: the random
            decoder of `gti.lm.scratch`, its shape `model.scratch_*`); None: `model.name`.
    """

    init: str | None
    ground: bool = False
    ground_on: str = "text"
    lcrec_tasks: bool = False
    shares: str | None = None
    kind: str = "lm"
    tunes_rows_lr: bool = True
    backbone: str | None = None


METHODS: dict[str, Method] = {
    "mean": Method(init="mean", tunes_rows_lr=False),
    "mean-rowlr": Method(init="mean", shares="mean"),
    "mean-hf": Method(init="mean-hf"),
    "random": Method(init="random"),
    "text": Method(init="text"),
    "gti": Method(init="base", ground=True),
    "rows-first": Method(init="base", ground=True, ground_on="next-item"),
    "lcrec": Method(init="mean", lcrec_tasks=True, shares="mean"),
    "gti+lcrec": Method(init="base", ground=True, lcrec_tasks=True, shares="gti"),
    "scratch": Method(init="random", backbone="scratch"),
    "mostpop": Method(init=None, kind="anchor"),
    "sasrec": Method(init=None, kind="anchor"),
}
"""Method name -> its stages. `init.method` and `gti compare --methods` accept these names.

`mean-rowlr` is `mean` whose new rows' learning rate is tuned too in a grid (without a grid it
trains exactly as `mean`); `rows-first` is GTI's grounding stage on next-item prompts; `scratch` is a decoder with
random weights over the SID tokens (TIGER's idea), trained with the same objective: what pretraining adds."""

INIT_CHOICES = ("mean", "mean-hf", "random", "text")
"""Initializations of the new rows (`gti.lm.vocab.initialize`)."""

BASE_CHOICES = ("mean", "random", "text")
"""What `init.base` may name: where a grounded method's rows start."""


def stages_line(name: str) -> str:
    """What a method runs, in words, for progress headers: e.g. `init from init.base, ground, fine-tune, evaluate`."""
    entry = METHODS[name]
    if entry.kind == "anchor":
        return "fit, evaluate (no language model)"
    init = "init from init.base" if entry.init == "base" else f"init {entry.init}"
    ground = [f"ground ({'next-item prompts' if entry.ground_on == 'next-item' else 'text <-> SID prompts'})"] if entry.ground else []
    finetune = "fine-tune" + (" with LC-Rec tasks" if entry.lcrec_tasks else "")
    where = f" on the {entry.backbone} decoder" if entry.backbone else ""
    return ", ".join([init, *ground, finetune, "evaluate"]) + where


def method(name: str) -> Method:
    """The table entry of `name` (callers validate names first, so a KeyError is a bug)."""
    return METHODS[name]


def stem(name: str) -> str:
    """The method whose folders hold `name`'s init and ground stages."""
    return METHODS[name].shares or name


def grounded(names: list[str]) -> list[str]:
    """The methods among `names` that train a grounding stage, in order."""
    return [name for name in names if METHODS[name].ground]


def language_models(names: list[str]) -> list[str]:
    """The methods among `names` that are language models (not anchors), in order."""
    return [name for name in names if METHODS[name].kind == "lm"]


def anchors(names: list[str]) -> list[str]:
    """The non-LM anchors among `names`, in order."""
    return [name for name in names if METHODS[name].kind == "anchor"]


def trains_like(name: str) -> str:
    """The method whose fine-tuning, at equal settings, is `name`'s: its stem when they differ only in
    which grid settings they try (`mean-rowlr` -> `mean`), else `name` itself. Grid points live in
    that method's folder, so equal points are trained once."""
    own, owner = METHODS[name], METHODS[stem(name)]
    same = (own.init, own.ground, own.ground_on, own.lcrec_tasks) == (owner.init, owner.ground, owner.ground_on,
                                                                      owner.lcrec_tasks)
    return stem(name) if same else name


def text_stages(name: str) -> tuple[str, ...]:
    """The stages in which `name` reads item text beyond the SIDs (every method's SIDs come from item text).

    `init` for the `text` initialization, `ground` for a grounding stage on text<->SID prompts (not
    `rows-first`'s, on next-item prompts from the training sequences), `finetune` for the LC-Rec
    tasks (item2index and index2item show every item's text, cold items' included; their next-item
    and fusionseqrec samples come from training sequences and never show a cold item). A grounded
    method started from `init.base = "text"` also reads it in `init`. Anchors (`mostpop`, `sasrec`)
    read no text at all.
    """
    entry = METHODS[name]
    return tuple(stage for stage, used in (("init", entry.init == "text"),
                                           ("ground", entry.ground and entry.ground_on == "text"),
                                           ("finetune", entry.lcrec_tasks)) if used)


def uses_text(name: str) -> bool:
    """Whether `name` reads item text beyond the SIDs (`text_stages`); the others are the text-free controls."""
    return bool(text_stages(name))
