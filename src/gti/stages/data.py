"""Stage `data`: load the dataset, sample users, split leave-one-out."""

from pathlib import Path

from gti.artifacts import read_json, run_stage, stage_key, write_json
from gti.config import DataConfig, to_dict
from gti.data import Dataset, leave_one_out, load_dataset, sample_users, split_from_json, split_to_json
from gti.stages.artifacts import DataArtifact


def load(config: DataConfig) -> Dataset:
    """The dataset as the config selects it (source, format, user sample)."""
    return sample_users(load_dataset(config.source, config.format), config.users, config.seed)


def data_key(config: DataConfig) -> str:
    """The key the `data` stage has for these settings (it has no inputs)."""
    return stage_key(to_dict(config), {})


def run_data(config: DataConfig, folder: Path, dataset: Dataset | None = None) -> DataArtifact:
    """Write `stats.json` and `split.json` into `folder` (once); return the dataset and its split.

    Args:
        dataset: the dataset already loaded with `load(config)`, to avoid reading it twice.
    """
    dataset = dataset if dataset is not None else load(config)

    def build(out: Path) -> dict:
        split = leave_one_out(dataset, config.max_history)
        write_json(out / "stats.json", dataset.stats())
        write_json(out / "split.json", split_to_json(split))
        return {"users": len(dataset.sequences), "test_examples": len(split.test)}

    manifest, _ = run_stage(folder, to_dict(config), {}, build)
    return DataArtifact(manifest["key"], folder, dataset, split_from_json(read_json(folder / "split.json")))
