"""The cold-start part of an evaluation: each test set of a cold-items split, ranked by each decoding.

Files, beside the evaluate stage's usual ones (which hold the warm test set with the plain search):

- `cold_start.jsonl`: one line per (test set, decoding, user): `test_set` (`warm` or `cold`),
  `decoding` (see `gti.rec.cold.DECODINGS`), `user_id`, `target`, `rank` (1-based, or null when the
  target is not in the list), `top10` and `cold_in_top10` (how many of those are cold);
- `cold_start.json`: the cold items' count, the beams and reserved beams, and per test set its
  users and, per decoding, the ranking metrics and `cold_share@k` (the mean share of the top-k
  places that hold a cold item).

`cold_start_into` takes a ranker, so any method that produces ranked item lists writes the same
files: the LM methods rank by beam search (`lm_ranker`), a method that scores every item can rank
with `gti.rec.cold.rank_scores`.
"""

import json
from collections.abc import Callable
from pathlib import Path

from gti.artifacts import atomic_write, write_json
from gti.config import EvalConfig
from gti.data import Example, Split, subsample
from gti.lm.prompts import PromptBuilder
from gti.rec import constrained_beam_search, rank_of, ranking_metrics
from gti.rec.cold import cold_share, decodings, reserved_count
from gti.sid import SemanticIds

Ranker = Callable[[list[Example], str], list[list[int]]]
"""(examples, decoding) -> per example, the ranked catalog rows, best first (at most `eval.beams`)."""


def cold_examples(config: EvalConfig, split: Split) -> dict[str, list[Example]]:
    """The examples of each test set an evaluation ranks: `eval.users` of each, drawn as `eval.sample` says."""
    return {name: subsample(examples, config.users, config.users_seed, config.sample)
            for name, examples in split.test_sets().items()}


def cutoffs(beams: int) -> tuple[int, ...]:
    """The K of the metrics: those of 1, 5, 10, 20 that the beams can fill (as `gti.rec.evaluate`)."""
    return tuple(k for k in (1, 5, 10, 20) if k <= beams)


def cold_start_into(out: Path, config: EvalConfig, split: Split, item_ids: list[str], rank: Ranker,
                    known: dict[tuple[str, str], list[list[int]]] | None = None) -> dict:
    """Rank both test sets of a cold-items split with every decoding; write `cold_start.jsonl` and `.json`.

    Args:
        out: the evaluation folder.
        config: beams, users (per test set) and `cold_beams`.
        split: a cold-items split.
        item_ids: item id of each catalog row.
        rank: the method's ranker.
        known: rankings already computed, by (test set, decoding) (the usual evaluation's warm `beam` lists).

    Returns:
        What `cold_start.json` holds.
    """
    rows = {item_id: row for row, item_id in enumerate(item_ids)}
    cold_rows = sorted(rows[item] for item in split.cold_items)
    reserved = reserved_count(config.cold_beams, config.beams)
    ks = cutoffs(config.beams)
    cold = set(cold_rows)
    summary = {"cold_items": len(cold_rows), "catalog_items": len(item_ids), "beams": config.beams,
               "cold_beams": config.cold_beams, "reserved_beams": reserved, "sets": {}}
    lines = []
    for test_set, examples in cold_examples(config, split).items():
        entry = {"users": len(examples), "decodings": {}}
        for decoding in decodings(test_set, reserved):
            top = (known or {}).get((test_set, decoding))
            top = rank(examples, decoding) if top is None else top
            ranks = [rank_of(rows[e.target], ranked) for e, ranked in zip(examples, top)]
            entry["decodings"][decoding] = {
                "metrics": ranking_metrics(ranks, ks),
                "cold_share": {f"cold_share@{k}": cold_share(top, cold_rows, k) for k in ks},
            }
            lines += [json.dumps({"test_set": test_set, "decoding": decoding, "user_id": e.user_id, "target": e.target,
                                  "rank": r, "top10": [item_ids[row] for row in ranked[:10]],
                                  "cold_in_top10": sum(row in cold for row in ranked[:10])})
                      for e, r, ranked in zip(examples, ranks, top)]
        summary["sets"][test_set] = entry
    atomic_write(out / "cold_start.jsonl", "\n".join(lines) + "\n")
    write_json(out / "cold_start.json", summary)
    return summary


def lm_ranker(model, tokenizer, builder: PromptBuilder, config: EvalConfig, sids: SemanticIds, split: Split) -> Ranker:
    """Beam search for each decoding: the whole catalog's trie, with reserved beams, or the cold items' trie."""
    cold_rows = sorted(sids.row(item) for item in split.cold_items)
    catalog = sids.trie()
    tries = {"beam": catalog, "cold-beams": catalog, "cold-only": sids.trie(cold_rows)}
    reserved = reserved_count(config.cold_beams, config.beams)

    def rank(examples: list[Example], decoding: str) -> list[list[int]]:
        ranked = constrained_beam_search(
            model, [builder.seqrec(e.history).prompt for e in examples], tries[decoding], builder.level_ids,
            beams=config.beams, batch_size=config.batch_size, pad_token_id=tokenizer.pad_token_id, progress=True,
            precision=config.precision, reserved_rows=cold_rows if decoding == "cold-beams" else (),
            reserved_beams=reserved if decoding == "cold-beams" else 0,
        )
        return [[row for row, _ in items] for items in ranked]

    return rank
