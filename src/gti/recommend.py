"""Use a trained model: the top catalog items for a user's history.

`Recommender` asks the model exactly as evaluation does: the same next-item prompt
(`PromptBuilder.seqrec` over the history cut to `data.max_history`, then `prompts.history`
items) and the same trie-constrained beam search, with `max(k, eval.beams)` beams. It loads
from a run folder (`from_run`) or from a folder written by `gti export` (`from_pretrained`).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from gti.catalog import (  # noqa: F401 (re-exported: gti.recommend is where users look for them)
    ITEMS_FILE,
    MAX_K,
    SETTINGS_FILE,
    Request,
    check_request,
    model_folder,
    read_requests,
    read_run_config,
)
from gti.config import RunConfig, from_dict, to_dict
from gti.data import Item
from gti.data.files import shown
from gti.device import compute_device
from gti.errors import GtiError
from gti.lm.backbone import load_backbone
from gti.lm.prompts import PromptBuilder
from gti.rec.beam import constrained_beam_search
from gti.sid import SemanticIds


@dataclass(frozen=True)
class Settings:
    """What a recommender needs from the run's config besides the model and the SIDs."""

    prompts: dict
    max_history: int
    beams: int
    batch_size: int
    precision: str
    sequence: bool = False
    """The sequence layout of the next-item prompt (a model fine-tuned with `finetune.samples = "sequence"`)."""

    @classmethod
    def from_config(cls, config: RunConfig) -> "Settings":
        return cls(to_dict(config.prompts), config.data.max_history, config.eval.beams, config.eval.batch_size,
                   config.eval.precision, config.finetune.samples == "sequence")

    def to_json(self) -> dict:
        return {"prompts": self.prompts, "max_history": self.max_history, "beams": self.beams,
                "batch_size": self.batch_size, "precision": self.precision, "sequence": self.sequence}


class Recommender:
    """Top-k catalog items for histories, with a fine-tuned SID model.

    Args:
        model: the fine-tuned causal LM (SID tokens in its vocabulary).
        tokenizer: its tokenizer.
        sids: the catalog's semantic ids.
        titles: item id -> title, for every item with a SID.
        settings: prompt settings, history length, beams, batch size and precision of the run.
    """

    def __init__(self, model, tokenizer, sids: SemanticIds, titles: dict[str, str], settings: Settings):
        self.device = compute_device()
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.sids = sids
        self.titles = titles
        self.settings = settings
        items = {item_id: Item(item_id, titles.get(item_id, "")) for item_id in sids.item_ids}
        prompts = from_dict({"prompts": settings.prompts}, "prompts").prompts
        self.builder = PromptBuilder(tokenizer, sids, items, prompts, settings.sequence)
        self.trie = sids.trie()
        self.catalog = frozenset(sids.item_ids)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    @classmethod
    def from_run(cls, run_dir: str | Path, method: str = "gti", seed: int | None = None) -> "Recommender":
        """Load `<run>/<method>/finetune/model` (or `<run>/<method>/seed-<seed>/...`) with the run's SIDs and items."""
        run_dir = Path(run_dir)
        config = read_run_config(run_dir)
        folder = model_folder(run_dir, method, seed)
        sids = SemanticIds.load(run_dir / "sids")
        titles = catalog_titles(config, sids, run_dir)
        model, tokenizer = load_backbone(str(folder), config.model.trust_remote_code)
        return cls(model, tokenizer, sids, titles, Settings.from_config(config))

    @classmethod
    def from_pretrained(cls, folder: str | Path, trust_remote_code: bool = False) -> "Recommender":
        """Load a folder written by `gti export` (`model/`, `sids.json`, `items.jsonl`, `gti_config.json`)."""
        folder = Path(folder)
        path = folder / SETTINGS_FILE
        if not path.is_file():
            raise GtiError(f"{folder}: not an exported gti model (no {SETTINGS_FILE}); write one with gti export")
        try:
            data = json.loads(path.read_text())
            settings = Settings(**{key: data[key] for key in Settings.__dataclass_fields__ if key != "sequence"},
                                sequence=bool(data.get("sequence", False)))  # exports before the layout had none
        except (ValueError, KeyError, TypeError) as error:
            raise GtiError(f"{path}: malformed ({type(error).__name__}: {error})") from None
        sids = SemanticIds.load(folder)
        titles = read_titles(folder / ITEMS_FILE)
        model, tokenizer = load_backbone(str(folder / "model"), trust_remote_code)
        return cls(model, tokenizer, sids, titles, settings)

    @property
    def max_beams(self) -> int:
        return len(self.sids.item_ids)

    def check(self, history: object, k: object = 10, where: str | None = None) -> Request:
        """A validated request; ids may be strings or integers; `where` prefixes error messages (e.g. `file:line`).

        Raises:
            GtiError: an empty or non-list history, an id not in the catalog (named), or a bad k.
        """
        return check_request(self.catalog, history, k, where)

    def recommend(self, history: Sequence[str], k: int = 10, exclude_history: bool = False) -> list[dict]:
        """The top `k` items for one history, best first: `{"item_id", "title", "score"}` (log-probability)."""
        return self.recommend_batch([history], k, exclude_history)[0]

    def recommend_batch(
        self, histories: Sequence[Sequence[str]], k: int | Sequence[int] = 10,
        exclude_history: bool | Sequence[bool] = False, batch_size: int | None = None,
    ) -> list[list[dict]]:
        """`recommend` for many histories, batched; `k` and `exclude_history` are one value or one per history."""
        count = len(histories)
        ks = [k] * count if isinstance(k, int) else list(k)
        excludes = [exclude_history] * count if isinstance(exclude_history, bool) else list(exclude_history)
        if len(ks) != count or len(excludes) != count:
            raise GtiError(f"recommend_batch: {count} histories but {len(ks)} k values and {len(excludes)} exclude flags")
        requests = [
            Request(self.check(history, k_, f"histories[{index}]" if count > 1 else None).history, k_, bool(exclude))
            for index, (history, k_, exclude) in enumerate(zip(histories, ks, excludes))
        ]
        return self.run(requests, batch_size)

    def beams_for(self, request: Request) -> int:
        """Beam width: `max(k, eval.beams)`, plus the history's distinct items when they are excluded."""
        wanted = request.k + (len(set(request.history)) if request.exclude_history else 0)
        return min(max(wanted, self.settings.beams), self.max_beams)

    @torch.no_grad()
    def run(self, requests: list[Request], batch_size: int | None = None) -> list[list[dict]]:
        """Answer validated requests; those with the same beam width share batched searches."""
        results: list[list[dict] | None] = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(self.beams_for(request), []).append(index)
        for beams, indices in groups.items():
            prompts = [
                self.builder.seqrec(requests[i].history[-self.settings.max_history:]).prompt for i in indices
            ]
            ranked = constrained_beam_search(
                self.model, prompts, self.trie, self.builder.level_ids, beams=beams,
                batch_size=batch_size or self.settings.batch_size, pad_token_id=self.pad_token_id,
                precision=self.settings.precision,
            )
            for index, pairs in zip(indices, ranked):
                results[index] = self._items(requests[index], pairs)
        return results

    def _items(self, request: Request, pairs: list[tuple[int, float]]) -> list[dict]:
        skip = set(request.history) if request.exclude_history else set()
        found = []
        for row, score in pairs:
            item_id = self.sids.item_ids[row]
            if item_id not in skip:
                found.append({"item_id": item_id, "title": self.titles.get(item_id, ""), "score": round(float(score), 6)})
            if len(found) == request.k:
                break
        return found


def catalog_titles(config: RunConfig, sids: SemanticIds, run_dir: Path) -> dict[str, str]:
    """Item id -> title for every item with a SID, read from the run's dataset."""
    from gti.data import load_dataset

    dataset = load_dataset(config.data.source, config.data.format)
    missing = [item_id for item_id in sids.item_ids if item_id not in dataset.items]
    if missing:
        raise GtiError(f"{config.data.source}: lacks item {shown(missing[0])} of {Path(run_dir) / 'sids'}; "
                       "the dataset changed since the run")
    return {item_id: dataset.items[item_id].title for item_id in sids.item_ids}


def load_recommender(path: str | Path, method: str = "gti", seed: int | None = None) -> Recommender:
    """A run folder (`from_run`) or an exported folder (`from_pretrained`, told by its gti_config.json)."""
    path = Path(path)
    if (path / SETTINGS_FILE).is_file():
        return Recommender.from_pretrained(path)
    if not path.is_dir():
        raise GtiError(f"{path}: no such folder; expected a run folder or a folder written by gti export")
    return Recommender.from_run(path, method, seed)


def read_titles(path: Path) -> dict[str, str]:
    """`items.jsonl` of an export: one `{"item_id", "title"}` object per line."""
    from gti.data.files import parse_json_line, read_lines, text_field

    if not path.is_file():
        raise GtiError(f"{path}: not found; the export is incomplete")
    titles = {}
    for number, line in read_lines(path):
        if line.strip():
            record = parse_json_line(line, f"{path}:{number}")
            titles[text_field(record, "item_id", f"{path}:{number}", True)] = text_field(record, "title", f"{path}:{number}")
    return titles


def show_items(items: list[dict]) -> str:
    """A readable table of recommended items."""
    width = max([len("item_id"), *(len(item["item_id"]) for item in items)])
    lines = [f"{'rank':>4}  {'item_id':<{width}}  {'score':>9}  title"]
    for rank, item in enumerate(items, start=1):
        lines.append(f"{rank:>4}  {item['item_id']:<{width}}  {item['score']:>9.4f}  {item['title']}")
    return "\n".join(lines)


def recommend_file(recommender: Recommender, path: Path, output: str | None, k: int, exclude_history: bool,
                   overwrite: bool = False, chunk: int = 512,
                   requests: list[tuple[Request, object]] | None = None) -> int:
    """Answer a JSONL file of requests (all checked first), writing one JSON line per request to `output` or stdout.

    Args:
        requests: the file's requests, already read with `gti.catalog.read_requests` (the CLI checks them
            before the model loads); None reads `path`.

    Returns:
        The number of lines written.
    """
    import os
    import sys

    if requests is None:
        requests = read_requests(recommender.catalog, path, k, exclude_history)
    target = Path(output) if output else None
    check_new_file(target, overwrite)
    temporary = target.with_name(f".{target.name}.tmp") if target is not None else None
    handle = temporary.open("w", encoding="utf-8") if temporary is not None else sys.stdout
    try:
        for start in range(0, len(requests), chunk):
            part = requests[start:start + chunk]
            for (_, user_id), items in zip(part, recommender.run([request for request, _ in part])):
                line = {"user_id": user_id, "items": items} if user_id is not None else {"items": items}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
    except BaseException:
        if temporary is not None:
            handle.close()
            temporary.unlink(missing_ok=True)
        raise
    if temporary is not None:
        handle.close()
        os.replace(temporary, target)
    return len(requests)


def check_new_file(target: Path | None, overwrite: bool) -> None:
    """Refuse an existing `--output` file unless `overwrite`."""
    if target is not None and Path(target).exists() and not overwrite:
        raise GtiError(f"{target}: already exists; pass --overwrite to replace it")
