"""Typed results: one method's (per seed and over seeds) and a comparison's, with their JSON form.

`results.json` is `Comparison.to_json()`; the report reads only these classes.
"""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from gti.artifacts import read_json


@dataclass
class BudgetPoint:
    """A method evaluated after `finetune_steps` steps, with the training compute spent to get there."""

    finetune_steps: int
    train_tokens: float
    """Tokens processed (prompt + answer, padding excluded) by every training stage, grounding included."""
    seconds: float
    """Training seconds of the same stages (evaluation excluded)."""
    metrics: dict[str, float]
    ci: dict[str, list[float]]
    """95% bootstrap interval over users of each metric."""
    output: dict


@dataclass
class MethodResult:
    """One method: test metrics with CIs, output measures, diagnostics by stage, compute, budget curve.

    An anchor (`kind` "anchor": `mostpop`, `sasrec`) has no diagnostics, fine-tuning loss or budget
    curve; it processes no LM tokens (`train_tokens` null) and its `compute["fit"]` holds
    `train_seconds`, `interactions_processed` and, for SASRec, `epochs`, `steps` and `best_epoch`.
    """

    kind: str = "lm"
    """`lm` or `anchor` (`gti.methods.Method.kind`)."""
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_ci: dict[str, list[float]] = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    finetune_final_loss: float | None = None
    """Mean loss of the last 10 fine-tuning steps."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each stage (its manifest's)."""
    diagnostics: dict[str, dict] = field(default_factory=dict)
    """Stage label (init, grounded, finetuned) -> the new rows' diagnostics."""
    compute: dict[str, dict] = field(default_factory=dict)
    """Training stage -> {"train_tokens", "train_seconds"} (an anchor's: `fit` -> what its fit recorded)."""
    train_tokens: float | None = 0
    """LM tokens processed by every training stage (prompt + answer, padding excluded); None for an anchor."""
    train_seconds: float = 0.0
    validations: list[dict] | None = None
    """The validation curve: per validation {"step", "train_tokens", "train_seconds", measures} of the fine-tuning
    (`train.validate_every`), or SASRec's per epoch {"epoch", "recall@10", "loss", "train_loss"}; None without one."""
    best: int | None = None
    """The step (SASRec: epoch) whose weights were kept, when validation chose them."""
    history: int | None = None
    """The most history items the method read per test user (`gti.config.history_items`; None: popularity reads none)."""
    by_budget: list[BudgetPoint] = field(default_factory=list)
    folder: str | None = None
    """The method's folder, relative to the run folder (its first seed's with several)."""
    paired_vs_mean: dict[str, dict] | None = None
    paired_vs_anchors: dict[str, dict[str, dict]] | None = None
    """Anchor -> metric -> paired test (diff, ci, p_value) of this method against it, user by user."""
    metrics_seed_std: dict[str, float] | None = None
    by_seed: dict[str, "MethodResult"] | None = None
    cold_start: dict[str, dict] | None = None
    """Cold-items split: test set (`warm`, `cold`) -> decoding -> {"users", "metrics", "ci", "cold_share"[,
    "paired_vs_mean"]} (`gti.coldstart`); `metrics` above are then the warm test set's with the plain search."""

    def to_json(self) -> dict:
        data = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None and item.name in ("paired_vs_mean", "paired_vs_anchors", "metrics_seed_std", "by_seed",
                                               "folder", "cold_start", "history", "validations", "best"):
                continue
            if item.name == "by_budget":
                value = [asdict(point) for point in value]
            elif item.name == "by_seed":
                value = {seed: result.to_json() for seed, result in value.items()}
            data[item.name] = value
        return data

    @classmethod
    def from_json(cls, data: dict) -> "MethodResult":
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["by_budget"] = [BudgetPoint(**point) for point in data.get("by_budget", [])]
        if data.get("by_seed") is not None:
            values["by_seed"] = {seed: cls.from_json(result) for seed, result in data["by_seed"].items()}
        return cls(**values)


@dataclass
class Matched:
    """A grounded method's budget point against each other method's cheapest point with as many tokens."""

    method: str
    finetune_steps: int
    train_tokens: float
    vs: dict[str, dict | None]
    """Other method -> {"finetune_steps", "train_tokens", metric: {"diff", "ci", "p_value"}}, or None."""


@dataclass
class Comparison:
    """`gti compare`'s result: the config, every method's result, the SID report, the compute-matched table,
    and with a learning-rate grid its record (`gti.tuning`: the grid, every point's validation metrics, the choice)."""

    config: dict
    seeds: list[int] | None
    methods: dict[str, MethodResult]
    sids: dict = field(default_factory=dict)
    compute_matched: list[Matched] = field(default_factory=list)
    cold_start: dict | None = None
    """Cold-items split: the split's counts, the decodings and the text-vs-text-free tests (`gti.coldstart`)."""
    tuning: dict | None = None

    def to_json(self) -> dict:
        data = {
            "config": self.config, "seeds": self.seeds,
            "methods": {name: result.to_json() for name, result in self.methods.items()},
            "sids": self.sids, "compute_matched": [asdict(entry) for entry in self.compute_matched],
        }
        if self.tuning is not None:
            data["tuning"] = self.tuning
        if self.cold_start is not None:
            data["cold_start"] = self.cold_start
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Comparison":
        return cls(
            config=data["config"], seeds=data.get("seeds"),
            methods={name: MethodResult.from_json(result) for name, result in data["methods"].items()},
            sids=data.get("sids", {}), compute_matched=[Matched(**entry) for entry in data.get("compute_matched", [])],
            cold_start=data.get("cold_start"),
            tuning=data.get("tuning"),
        )

    @classmethod
    def read(cls, path: Path) -> "Comparison":
        return cls.from_json(read_json(path))
