"""Rows that results.md and report.html both show: the anchors' fits, every method against them, the grid."""

from gti.results import Comparison


def _cell(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def _test(test: dict | None) -> str:
    if test is None:
        return "-"
    return f"{test['diff']:+.4f} [{test['ci'][0]:+.4f}, {test['ci'][1]:+.4f}], p = {test['p_value']:.4f}"


def anchor_fits(results: Comparison) -> tuple[list[str], list[list[str]]]:
    """(header, rows): what each anchor's fit did; anchors process no LM tokens."""
    header = ["anchor", "train seconds", "interactions processed", "epochs", "steps", "best epoch"]
    rows = []
    for name, result in results.methods.items():
        if result.kind == "anchor":
            fit = result.compute.get("fit", {})
            rows.append([name, _cell(result.train_seconds, 1), *(_cell(fit.get(key)) for key in
                                                                 ("interactions_processed", "epochs", "steps", "best_epoch"))])
    return header, rows


def versus_anchors(results: Comparison) -> tuple[list[str], list[list[str]]]:
    """(header, rows): each method's paired difference against each anchor (recall@10, NDCG@10), CI and p-value."""
    anchors = [name for name, result in results.methods.items() if result.kind == "anchor"]
    header = ["method", *(f"{metric} vs {anchor} [95% CI], p" for anchor in anchors for metric in ("recall@10", "ndcg@10"))]
    rows = []
    for name, result in results.methods.items():
        tests = result.paired_vs_anchors or {}
        rows.append([name, *(_test(tests.get(anchor, {}).get(metric)) for anchor in anchors
                             for metric in ("recall@10", "ndcg@10"))])
    return header, rows if anchors else []


def grid_points(results: Comparison) -> tuple[list[str], list[list[str]]]:
    """(header, rows): every grid point of every method with its validation metrics; the chosen one marked."""
    header = ["method", "settings", "valid recall@10", "valid ndcg@10", "valid mrr", "chosen"]
    rows = []
    for name, record in ((results.tuning or {}).get("methods") or {}).items():
        for index, point in enumerate(record["points"]):
            settings = ", ".join(f"{key}={'same' if value is None else value}" for key, value in point["settings"].items())
            rows.append([name, settings, *(_cell(point["valid"].get(metric)) for metric in ("recall@10", "ndcg@10", "mrr")),
                         "yes" if index == record["chosen"] else ""])
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(row) + " |" for row in rows)])
