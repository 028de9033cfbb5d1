"""The one place that knows where a run's artifacts live.

```
<run>/config.json  results.json  results.md  report.html  diagnostics.json  *.png
<run>/data/  <run>/sids/                          shared by every method and seed
<run>/<method>[/seed-<s>]/init/ ground/           a method sharing another's (lcrec -> mean,
<run>/<method>[/seed-<s>]/finetune/ eval/          gti+lcrec -> gti) reads that one's init/ground
<run>/<method>[/seed-<s>]/finetune/points/step-NNNNNN/   budget points (eval.at_steps)
<run>/<anchor>[/seed-<s>]/fit/ eval/               mostpop, sasrec: no init, ground or finetune
<run>/<method>/grid/<point>/finetune/ (or fit/) valid/   a grid point, evaluated on the validation targets
```
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gti.methods import stem, trains_like

SHARED_STAGES = ("init", "ground")
"""Stages that live in the folder of the method a method shares (see `gti.methods.stem`)."""
STAGE_LABELS = {"init": "init", "ground": "grounded", "finetune": "finetuned"}
"""Stage folder -> the name its diagnostics are reported under."""


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run folder, for one training seed (None: the config's seeds, no seed folders)."""

    root: Path
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def with_seed(self, seed: int | None) -> "RunLayout":
        return RunLayout(self.root, seed)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sids(self) -> Path:
        return self.root / "sids"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    def method(self, name: str) -> Path:
        """`<run>/<method>`, or `<run>/<method>/seed-<s>` for one of several seeds."""
        folder = self.root / name
        return folder if self.seed is None else folder / f"seed-{self.seed}"

    def stage(self, name: str, stage: str) -> Path:
        """The folder of one of a method's stages (`init`, `ground`, `finetune`, `eval`)."""
        owner = stem(name) if stage in SHARED_STAGES else name
        return self.method(owner) / stage

    def grid_point(self, name: str, label: str) -> Path:
        """A grid point's folder (`gti.tuning`), in the folder of the method that trains like `name`; not per seed."""
        return self.root / trains_like(name) / "grid" / label

    def points(self, name: str) -> Path:
        """Budget points evaluated during fine-tuning."""
        return self.stage(name, "finetune") / "points"

    @staticmethod
    def describe(stage_folder: Path) -> str:
        """`<method>, <stage>` (with `seed <s>` for a seed folder) for a stage folder, e.g. in plot titles."""
        stage_folder = Path(stage_folder)
        owner = stage_folder.parent
        if owner.name.startswith("seed-"):
            return f"{owner.parent.name} (seed {owner.name[5:]}), {stage_folder.name}"
        return f"{owner.name}, {stage_folder.name}"

    def method_folders(self) -> Iterator[tuple[str, Path]]:
        """(shown name, folder) of every method folder found, seed folders as `<method>/seed-<s>`."""
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            seeds = sorted(p for p in folder.glob("seed-*") if p.is_dir())
            if seeds:
                yield from ((f"{folder.name}/{seed.name}", seed) for seed in seeds)
            else:
                yield folder.name, folder
