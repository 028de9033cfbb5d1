"""The one table of initialization methods: what each method's stages are.

Every other module asks this table; adding a method is one line here.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One method: how the new rows start, whether they are grounded, which tasks fine-tuning mixes in.

    Attributes:
        init: the initialization of the new rows (`mean`, `mean-hf`, `random`, `text`), or `base`
            for the config's `init.base`.
        ground: a grounding stage (only the new rows train on text<->SID prompts) runs after init.
        lcrec_tasks: fine-tuning mixes the LC-Rec tasks (item2index, index2item, fusionseqrec) in.
        shares: the method whose init (and ground) stage folders this one reuses; None: its own.
    """

    init: str
    ground: bool = False
    lcrec_tasks: bool = False
    shares: str | None = None


METHODS: dict[str, Method] = {
    "mean": Method(init="mean"),
    "mean-hf": Method(init="mean-hf"),
    "random": Method(init="random"),
    "text": Method(init="text"),
    "gti": Method(init="base", ground=True),
    "lcrec": Method(init="mean", lcrec_tasks=True, shares="mean"),
    "gti+lcrec": Method(init="base", ground=True, lcrec_tasks=True, shares="gti"),
}
"""Method name -> its stages. `init.method` and `gti compare --methods` accept these names."""

INIT_CHOICES = ("mean", "mean-hf", "random", "text")
"""Initializations of the new rows (`gti.lm.vocab.initialize`)."""

BASE_CHOICES = ("mean", "random", "text")
"""What `init.base` may name: where a grounded method's rows start."""


def method(name: str) -> Method:
    """The table entry of `name` (callers validate names first, so a KeyError is a bug)."""
    return METHODS[name]


def stem(name: str) -> str:
    """The method whose folders hold `name`'s init and ground stages."""
    return METHODS[name].shares or name


def grounded(names: list[str]) -> list[str]:
    """The methods among `names` that train a grounding stage, in order."""
    return [name for name in names if METHODS[name].ground]


def text_stages(name: str) -> tuple[str, ...]:
    """The stages in which `name` reads item text beyond the SIDs (every method's SIDs come from item text).

    `init` for the `text` initialization, `ground` for a grounding stage (text<->SID prompts),
    `finetune` for the LC-Rec tasks (item2index and index2item show every item's text, cold items'
    included; their next-item and fusionseqrec samples come from training sequences and never show
    a cold item). A grounded method started from `init.base = "text"` also reads it in `init`.
    """
    entry = METHODS[name]
    return tuple(stage for stage, used in (("init", entry.init == "text"), ("ground", entry.ground),
                                           ("finetune", entry.lcrec_tasks)) if used)


def uses_text(name: str) -> bool:
    """Whether `name` reads item text beyond the SIDs (`text_stages`); the others are the text-free controls."""
    return bool(text_stages(name))
