"""The cold-start tables of results.md and report.html: both test sets, every decoding, text vs text-free."""

from gti.analysis.tables import _test, markdown
from gti.coldstart import headline
from gti.methods import text_stages
from gti.results import Comparison

ANCHOR_NOTES = {
    "mostpop": "mostpop counts 0 for every cold item, so among cold items only the tie rule orders them (the same "
               "order for every user): it cannot recommend a cold item on evidence",
    "sasrec": "sasrec never trains on a cold item as a target or in a history, so its cold items' embeddings carry "
              "no evidence about them",
}
"""What the anchors can do with a cold item, for the note of the tables."""


def _interval(low_high: list[float] | None) -> str:
    return "-" if not low_high else f"[{low_high[0]:.4f}, {low_high[1]:.4f}]"


def cold_note(results: Comparison) -> str:
    """One paragraph: what was held out, the test sets' sizes, the decodings, which methods read item text."""
    info = results.cold_start
    split = info["split"]
    data = results.config["data"]
    texts = ", ".join(f"{name} {'+'.join(text_stages(name)) or 'none'}" for name in results.methods)
    return (f"Cold-items split: {split['cold_items']} of {split['catalog_items']} catalog items held out as cold "
            f"(data.cold_fraction = {data['cold_fraction']}, data.seed = {data['seed']}); no training or validation "
            f"example holds one ({split['cold_interactions_removed']} interactions removed). Test users: "
            f"{split['test']['warm']} warm, {split['test']['cold']} cold (whose last item is cold; recall on them is "
            f"recall restricted to cold targets). Decodings: beam = {info['decodings']['beam']}; cold-beams = "
            f"{info['reserved_beams']} of {info['beams']} beams reserved at every level for prefixes of cold items "
            f"(eval.cold_beams = {info['cold_beams']}); cold-only = {info['decodings']['cold-only']}. Cold share@10: "
            f"the mean share of the top-10 places that hold a cold item. Every item's SID, a cold item's too, comes "
            f"from its text; the stages that read item text beyond it: {texts}. Grounding and LC-Rec's "
            f"item2index/index2item tasks show every item's text, cold items' included."
            + _anchor_notes(results))


def _anchor_notes(results: Comparison) -> str:
    """` Anchors: ...; ....` for the anchors in the comparison, or nothing."""
    notes = [note for name, note in ANCHOR_NOTES.items() if name in results.methods]
    return "" if not notes else f" Anchors: {'; '.join(notes)}."


def cold_tables(results: Comparison) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each cold-start table; none without a cold-items split."""
    if results.cold_start is None:
        return []
    rows = []
    for method, result in results.methods.items():
        for test_set, by_decoding in (result.cold_start or {}).items():
            for decoding, entry in by_decoding.items():
                metrics = entry["metrics"]
                recall = headline(metrics)
                k = recall.split("@")[1]
                rows.append([method, test_set, decoding, str(entry["users"]), f"{recall} {metrics[recall]:.4f}",
                             _interval(entry["ci"].get(recall)), f"{metrics.get(f'ndcg@{k}', float('nan')):.4f}",
                             f"{entry['cold_share'].get(f'cold_share@{k}', float('nan')):.3f}",
                             "-" if method == "mean" else _test((entry.get("paired_vs_mean") or {}).get("recall@10"))])
    tables = [("Cold-start items: warm and cold test sets",
               ["method", "test set", "decoding", "users", "recall", "95% CI", "ndcg", "cold share", "recall@10 vs mean"],
               rows)]
    versus = []
    for test_set, by_decoding in results.cold_start.get("text_vs_text_free", {}).items():
        for decoding, by_method in by_decoding.items():
            for method, entry in by_method.items():
                for other, test in entry["against"].items():
                    versus.append([method, test_set, decoding, other, _test(test["recall@10"]),
                                   f"{test['recall@10']['p_holm']:.3g}", _test(test["ndcg@10"]),
                                   "yes" if entry["beats_every"] else "no"])
    if versus:
        tables.append(("Text methods against every text-free method (paired over users; Holm over the text-free methods)",
                       ["method", "test set", "decoding", "against", "recall@10 diff [95% CI], p", "recall@10 p (Holm)",
                        "ndcg@10 diff [95% CI], p", "beats every text-free method"], versus))
    return tables


def cold_markdown(results: Comparison) -> str:
    """The cold-start tables in Markdown, after their note; empty without a cold-items split."""
    parts = [f"{title}:\n\n{markdown(header, rows)}" for title, header, rows in cold_tables(results)]
    return "" if not parts else "\n\n".join([cold_note(results), *parts])
