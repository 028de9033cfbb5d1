"""Stage `sids`: item text -> embeddings -> residual quantization -> unique semantic ids.

The one implementation behind `gti sids` and the pipeline: the config's text fields, the
embedding cache, and a stage folder (`sids.json`, `report.json`, `codebooks.safetensors`,
`manifest.json`) that `gti run --sids DIR` can adopt.
"""

from pathlib import Path

from gti.artifacts import read_json, run_stage, write_json
from gti.config import DataConfig, SidConfig, to_dict
from gti.config_text import differences
from gti.data import Dataset, render_item_text
from gti.errors import GtiError
from gti.lm.backbone import cache_dir
from gti.sid import SemanticIds, build_sids, format_report, save_codebooks
from gti.stages.artifacts import SidsArtifact
from gti.stages.data import data_key


def run_sids(config: SidConfig, text_fields: list[str], dataset: Dataset, data_key: str, folder: Path,
             data_settings: dict | None = None) -> SidsArtifact:
    """Build the catalog's SIDs into `folder` (once for these settings and data); return them.

    Args:
        config: levels, codes, encoder, quantizer, collisions, seed, precision.
        text_fields: item fields rendered, in order, into the text that is embedded.
        dataset: the items (their text and top categories).
        data_key: the key of the data stage the dataset comes from.
        data_settings: the `[data]` settings behind `data_key`, recorded in the manifest (as `data`) so that
            `adopt` can name the settings that differ.
    """
    def build(out: Path) -> dict:
        texts = {item_id: render_item_text(item, text_fields) for item_id, item in dataset.items.items()}
        sids, report, codebooks = build_sids(
            texts, levels=config.levels, codes=config.codes, seed=config.seed, encoder=config.encoder,
            cache_dir=cache_dir() / "embeddings", quantizer=config.quantizer, collisions=config.collisions,
            categories=dataset.category_paths() or None, precision=config.precision, catalog=f"dataset {dataset.name}",
        )
        sids.save(out)
        save_codebooks(codebooks, out / "codebooks.safetensors")
        write_json(out / "report.json", report)
        print(format_report(report))
        return {"collision_rate": report["collision_rate"], **({"data": data_settings} if data_settings else {})}

    manifest, _ = run_stage(folder, to_dict(config), {"data": data_key}, build)
    return SidsArtifact(manifest["key"], folder, SemanticIds.load(folder))


def adopt(folder: Path, data: DataConfig) -> dict:
    """The SID settings of a `gti sids` folder, checked to be built from the same `[data]` settings.

    Returns:
        Its `sids` settings, as a dict for `SidConfig`.

    Raises:
        GtiError: not a SID stage folder, or built from other data.
    """
    manifest_path = Path(folder) / "manifest.json"
    if not (Path(folder) / "sids.json").is_file() or not manifest_path.is_file():
        raise GtiError(f"{folder}: not a folder written by `gti sids` (expected sids.json and manifest.json)")
    manifest = read_json(manifest_path)
    if set(manifest.get("inputs", {})) != {"data"} or set(manifest.get("config", {})) != set(to_dict(SidConfig())):
        raise GtiError(f"{manifest_path}: not the manifest of a sids stage")
    if manifest["inputs"]["data"] != data_key(data):
        recorded = manifest.get("data")
        if isinstance(recorded, dict):
            changed = differences({"data": recorded}, {"data": to_dict(data)}, ("in the folder", "in this run"))
        else:  # written before manifests recorded the [data] settings
            changed = f"every one of {', '.join(f'data.{key}' for key in to_dict(data))} must match the `gti sids` command"
        raise GtiError(f"{folder}: built from other [data] settings than this run's ({changed})")
    return dict(manifest["config"])
