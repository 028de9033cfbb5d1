"""The rules a `RunConfig` must keep beyond its types: choices, positive counts, budget points.

`gti.config.from_dict` applies them (this module sits between the schema, `gti.config_schema`,
and the loader, `gti.config`) to every config it builds; each broken rule is one line
naming the key.
"""

from gti.config_schema import RunConfig
from gti.data.split import SPLITS
from gti.errors import GtiError
from gti.methods import BASE_CHOICES, METHODS

CHOICES = {
    ("data", "format"): (None, "ml-100k", "normalized", "lcrec", "recbole"),
    ("data", "split"): SPLITS,
    ("data", "catalog"): ("sampled", "all"),
    ("init", "method"): tuple(METHODS),
    ("sids", "quantizer"): ("rq-kmeans", "rq-kmeans-balanced", "rq-vae"),
    ("sids", "precision"): ("auto", "float32", "bfloat16"),
    ("sids", "collisions"): ("extra-level", "reassign"),
    ("init", "base"): BASE_CHOICES,
    ("prompts", "style"): ("compact", "paper"),
    ("ground", "directions"): ("text2sid", "sid2text", "both"),
    ("finetune", "samples"): ("last", "sliding", "sequence"),
    ("train", "precision"): ("auto", "float32", "bfloat16"),
    ("eval", "precision"): ("auto", "float32", "bfloat16"),
    ("eval", "sample"): ("random", "first"),
    ("finetune", "mode"): ("full", "lora"),
    ("finetune", "schedule"): ("linear", "constant"),
}


def validate(config: RunConfig) -> RunConfig:
    """Reject impossible values (choices, positive counts) with one line naming the key."""
    for (section, key), choices in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            shown = ", ".join(str(c) for c in choices if c is not None)
            raise GtiError(f"{section}.{key}: {value!r} is not one of {shown}")
    positive = [
        ("sids", "levels"), ("sids", "codes"), ("data", "max_history"), ("prompts", "history"),
        ("ground", "batch_size"), ("finetune", "batch_size"), ("eval", "beams"), ("eval", "batch_size"),
        ("train", "grad_accum"), ("train", "validate_users"),
        ("finetune", "lora_r"), ("model", "scratch_layers"), ("model", "scratch_hidden"), ("model", "scratch_heads"),
        ("sasrec", "hidden"), ("sasrec", "layers"), ("sasrec", "heads"),
        ("sasrec", "batch_size"), ("sasrec", "epochs"),
    ]
    for section, key in positive:
        if getattr(getattr(config, section), key) < 1:
            raise GtiError(f"{section}.{key}: must be at least 1")
    prompts = config.prompts
    for index, template in enumerate(prompts.text_to_sid):
        if "{title}" not in template and "{description}" not in template:
            raise GtiError(f"prompts.text_to_sid[{index}]: needs {{title}} or {{description}}")
    for index, pair in enumerate(prompts.sid_to_text):
        if len(pair) != 2 or "{sid}" not in pair[0]:
            raise GtiError(f"prompts.sid_to_text[{index}]: expected [question with {{sid}}, answer template]")
    for section in ("ground", "finetune"):
        if getattr(config, section).epochs is not None and getattr(config, section).epochs <= 0:
            raise GtiError(f"{section}.epochs: must be positive")
    if config.finetune.epochs is not None and config.eval.at_steps:
        raise GtiError("eval.at_steps: cannot be combined with finetune.epochs (the steps are then known only "
                       "once the samples are); give finetune.steps")
    if any(size < 1 for size in config.eval.pool_sizes):
        raise GtiError("eval.pool_sizes: every pool size must be at least 1")
    if config.sids.codes < 2:
        raise GtiError("sids.codes: must be at least 2")
    for section, key in [("ground", "steps"), ("ground", "unfreeze_steps"), ("finetune", "steps"), ("finetune", "warmup_steps"),
                         ("train", "checkpoint_every"), ("train", "checkpoint_minutes"), ("train", "validate_every"), ("train", "patience"),
                         ("sasrec", "patience"), ("sasrec", "validate_users"), ("train", "max_seconds"), ("eval", "invalid_users")]:
        if getattr(getattr(config, section), key) < 0:
            raise GtiError(f"{section}.{key}: must not be negative")
    for section, key in [("ground", "lr"), ("ground", "unfreeze_lr"), ("finetune", "lr"), ("finetune", "new_rows_lr"),
                         ("finetune", "lora_alpha"), ("sasrec", "lr")]:
        value = getattr(getattr(config, section), key)
        if value is not None and value <= 0:
            raise GtiError(f"{section}.{key}: must be positive")
    for section, key in [("finetune", "lora_dropout"), ("sasrec", "dropout")]:
        if not 0 <= getattr(getattr(config, section), key) < 1:
            raise GtiError(f"{section}.{key}: must be in [0, 1)")
    if config.model.scratch_hidden % config.model.scratch_heads:
        raise GtiError(f"model.scratch_heads: must divide model.scratch_hidden = {config.model.scratch_hidden}")
    if config.sasrec.hidden % config.sasrec.heads:
        raise GtiError(f"sasrec.heads: must divide sasrec.hidden = {config.sasrec.hidden}")
    _check_at_steps(config)
    _check_cold(config)
    for key in ("item2index", "index2item", "fusionseqrec"):
        if getattr(config.lcrec, key) < 0:
            raise GtiError(f"lcrec.{key}: must not be negative")
    return config


def _check_at_steps(config: RunConfig) -> None:
    """`eval.at_steps` must name steps of the fine-tuning whose model equals a shorter run's final model."""
    at_steps, steps = config.eval.at_steps, config.finetune.steps
    if not at_steps:
        return
    if sorted(set(at_steps)) != at_steps or at_steps[0] < 1 or at_steps[-1] > steps:
        raise GtiError(f"eval.at_steps: expected increasing distinct steps in [1, finetune.steps = {steps}], got {at_steps}")
    if at_steps[0] < steps and config.finetune.schedule != "constant":
        raise GtiError("eval.at_steps: needs finetune.schedule = \"constant\" (a linear decay depends on the total steps, "
                       "so the model at step s would not be the model a run of s steps ends with)")
    if config.train.validate_every:
        raise GtiError("eval.at_steps: cannot be combined with train.validate_every (it keeps the best, not the last, weights)")
    if config.finetune.mode != "full":
        raise GtiError('eval.at_steps: supported for finetune.mode = "full" only (LoRA adapters are merged at the end)')


def _check_cold(config: RunConfig) -> None:
    """The cold-items split's shares: `data.cold_fraction` in (0, 1), `eval.cold_beams` in [0, 1]."""
    if not 0 < config.data.cold_fraction < 1:
        raise GtiError(f"data.cold_fraction: expected a share in (0, 1), got {config.data.cold_fraction}")
    if not 0 <= config.eval.cold_beams <= 1:
        raise GtiError(f"eval.cold_beams: expected a share of the beams in [0, 1], got {config.eval.cold_beams}")
