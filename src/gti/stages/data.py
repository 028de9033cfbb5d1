"""Stage `data`: load the dataset, sample users, split (leave-one-out or cold items)."""

from pathlib import Path

from gti.artifacts import read_json, run_stage, stage_key, write_json
from gti.config import DataConfig, to_dict
from gti.data import Dataset, load_dataset, make_split, sample_users, split_from_json, split_stats, split_to_json
from gti.stages.artifacts import DataArtifact

COLD_KEYS = ("split", "cold_fraction")
"""Settings of the cold-items split: left out of a leave-one-out run's key, which then stays what it was
before they existed (run folders and `gti sids` folders made earlier keep matching)."""
EXCLUDE_KEYS = ("exclude_users", "exclude_seed")
"""Left out of the key when no draw is excluded, for the same reason as `COLD_KEYS`."""


def load(config: DataConfig) -> Dataset:
    """The dataset as the config selects it (source, format, user sample)."""
    return sample_users(load_dataset(config.source, config.format), config.users, config.seed, excluded(config),
                        config.catalog)


def excluded(config: DataConfig) -> tuple[int, int] | None:
    """The (users, seed) draw a sample leaves out (`data.exclude_users`), or None."""
    return None if config.exclude_users is None else (config.exclude_users, config.exclude_seed)


def data_settings(config: DataConfig) -> dict:
    """The settings that change the data stage's result (the cold-items keys only for that split).

    Every later stage depends on this key (sids on it, the rest through sids), so a cold-items
    run never reuses a stage of a leave-one-out run.
    """
    settings = to_dict(config)
    if config.split == "leave-one-out":
        settings = {key: value for key, value in settings.items() if key not in COLD_KEYS}
    if config.exclude_users is None:
        settings = {key: value for key, value in settings.items() if key not in EXCLUDE_KEYS}
    if config.users is None or config.catalog == "all":  # the whole catalog, as before `data.catalog` existed
        settings.pop("catalog", None)
    return settings


def data_key(config: DataConfig) -> str:
    """The key the `data` stage has for these settings (it has no inputs)."""
    return stage_key(data_settings(config), {})


def run_data(config: DataConfig, folder: Path, dataset: Dataset | None = None) -> DataArtifact:
    """Write `stats.json` (the dataset's counts, and the split's under `split`) and `split.json` into `folder`
    (once); return the dataset and its split.

    Args:
        dataset: the dataset already loaded with `load(config)`, to avoid reading it twice.
    """
    dataset = dataset if dataset is not None else load(config)

    def build(out: Path) -> dict:
        split = make_split(dataset, config.split, config.max_history, config.cold_fraction, config.seed)
        write_json(out / "stats.json", {**dataset.stats(), "split": split_stats(dataset, split)})
        write_json(out / "split.json", split_to_json(split))
        summary = {"users": len(dataset.sequences), "test_examples": len(split.test)}
        if split.is_cold:
            summary.update(cold_items=len(split.cold_items), cold_test_examples=len(split.cold_test))
        return summary

    manifest, _ = run_stage(folder, data_settings(config), {}, build)
    return DataArtifact(manifest["key"], folder, dataset, split_from_json(read_json(folder / "split.json")))
