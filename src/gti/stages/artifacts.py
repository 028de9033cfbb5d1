"""What the stages hand each other: typed artifacts (a stage key, a folder, what was read back)."""

from dataclasses import dataclass, field
from pathlib import Path

from gti.config import PromptConfig
from gti.data import Dataset, Split
from gti.lm.prompts import PromptBuilder
from gti.sid import SemanticIds


@dataclass(frozen=True)
class DataArtifact:
    """The `data` stage: the (sampled) dataset and its leave-one-out split."""

    key: str
    folder: Path
    dataset: Dataset
    split: Split


@dataclass(frozen=True)
class SidsArtifact:
    """The `sids` stage: every item's semantic id, and the folder holding the codebooks and report."""

    key: str
    folder: Path
    sids: SemanticIds

    @property
    def codebooks(self) -> Path:
        return self.folder / "codebooks.safetensors"


@dataclass(frozen=True)
class Weights:
    """The output of `init`, `ground` or `finetune`: a `new_rows.safetensors` file or a whole model folder."""

    key: str
    path: Path

    @property
    def is_model(self) -> bool:
        return self.path.is_dir()


@dataclass(frozen=True)
class EvalArtifact:
    """The `evaluate` stage: predictions, metrics and output measures of the test users."""

    key: str
    folder: Path


@dataclass
class Shared:
    """What every method of a run reads: the data, the SIDs, and one prompt builder.

    The extended tokenizer is the same in every stage of a run that uses one backbone, so prompts are
    tokenized once across stages and methods (`builder`, one per backbone).
    """

    data: DataArtifact
    sids: SidsArtifact | None
    """None in a run of anchors only (they read no SIDs)."""
    prompts: PromptConfig
    sequence: bool = False
    """The sequence layout of next-item prompts (`finetune.samples = "sequence"`), in training and evaluation alike."""
    _builders: dict[str, PromptBuilder] = field(default_factory=dict, repr=False)

    def builder(self, tokenizer, backbone: str) -> PromptBuilder:
        """The prompt builder of `backbone`'s extended tokenizer (a method's `model.name`: the `scratch` method has
        its own vocabulary), made once per backbone."""
        if backbone not in self._builders:
            self._builders[backbone] = PromptBuilder(tokenizer, self.sids.sids, self.data.dataset.items, self.prompts,
                                                     self.sequence)
        return self._builders[backbone]
