"""`report.html`: one self-contained page (plots inlined) that says what each method did and how well.

Metrics with 95% CIs, relative gain and paired significance against mean init and against the
non-LM anchors (`mostpop`, `sasrec`: no SIDs, so no diagnostics, init, ground or finetune stage),
the learning-rate grid's points on the validation targets, the diagnostics of the new rows by
stage, training curves and seconds per stage.
"""

import base64
import html
import json
from dataclasses import asdict
from pathlib import Path

from gti.analysis.cold import cold_note, cold_tables
from gti.analysis.constants import SHOWN_METRICS, STAGES
from gti.analysis.convergence import verdicts
from gti.analysis.curves import plot_budget_curves, plot_validation_curves
from gti.analysis.plots import plot_training_curves
from gti.analysis.tables import anchor_fits, grid_points, versus_anchors
from gti.artifacts import atomic_write
from gti.layout import RunLayout
from gti.methods import METHODS
from gti.rec.stats import CI_METHOD
from gti.results import Comparison, MethodResult

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
"""


def _image(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _losses(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {"finetune": data}


def _budget_section(results: Comparison, run_dir: Path) -> list[str]:
    """Budget curves and the compute-matched comparison, when any method was evaluated at several budgets."""
    curves = {m: [asdict(p) for p in r.by_budget] for m, r in results.methods.items() if r.by_budget}
    if not any(len(points) > 1 for points in curves.values()):
        return []
    parts = ["<h2>Budget curves</h2><p class='note'>Each method fine-tunes once and is evaluated at each budget on "
             "the same users. Training tokens (prompt + answer, padding excluded) and seconds count every training "
             "stage of the method, grounding included.</p>"]
    present = next(iter(curves.values()))[0]["metrics"]
    shown = [n for n in ("recall@10", "ndcg@10") if n in present] or [n for n in ("recall@5", "ndcg@5") if n in present]
    rows = [[m, str(p["finetune_steps"]), f"{p['train_tokens']:,.0f}", _number(p["seconds"], 0),
             *(f"{p['metrics'][n]:.4f} [{p['ci'][n][0]:.4f}, {p['ci'][n][1]:.4f}]" for n in shown),
             _number(p.get("output", {}).get("invalid_sid_rate"), 3)]
            for m, points in curves.items() for p in points]
    parts.append(_table(["method", "fine-tuning steps", "training tokens", "training seconds",
                         *(f"{n} [95% CI]" for n in shown), "invalid SIDs"], rows))
    plot_budget_curves(curves, run_dir / "budget_curves.png", shown)
    parts.append(_image(run_dir / "budget_curves.png", f"{' and '.join(shown)} by fine-tuning steps and by training tokens"))
    matched = [asdict(entry) for entry in results.compute_matched]
    if matched:
        parts.append("<h2>Compute-matched comparison</h2><p class='note'>Each grounded point against each other "
                     "method's cheapest point with at least as many training tokens: paired difference over users "
                     "with its 95% CI and the sign-flip permutation p-value.</p>")
        rows = []
        for entry in matched:
            for baseline, versus in entry["vs"].items():
                head = [entry["method"], str(entry["finetune_steps"]), f"{entry['train_tokens']:,.0f}", baseline]
                if versus is None:
                    rows.append(head + ["no point with as many tokens", "-", "-"])
                    continue
                rows.append(head + [f"{versus['finetune_steps']} ({versus['train_tokens']:,.0f})"] + [
                    f"{t['diff']:+.4f} [{t['ci'][0]:+.4f}, {t['ci'][1]:+.4f}], p = {t['p_value']:.4f}"
                    for t in (versus["recall@10"], versus["ndcg@10"])
                ])
        parts.append(_table(["method", "steps", "tokens", "against", "its steps (tokens)", "recall@10 diff [95% CI], p",
                             "ndcg@10 diff [95% CI], p"], rows))
    return parts


def _per_level(diagnostics: dict) -> str:
    """Each SID level's RSA against its codebook: Pearson with its Mantel p-value."""
    levels = diagnostics.get("rsa_codebook_per_level") or []
    return "; ".join(
        f"{chr(ord('a') + index)} {_number(level.get('pearson'), 3)} (p {_number(level.get('p_value'), 3)})"
        for index, level in enumerate(levels)
    ) or "-"


def _gain_cells(method: str, result: MethodResult, reference: dict) -> list[str]:
    cells = [method]
    for name in ("recall@10", "ndcg@10"):
        base = reference.get(name)
        gain = "-" if not base else f"{100 * (result.metrics[name] - base) / base:+.1f}%"
        test = (result.paired_vs_mean or {}).get(name)
        cells += [gain, "-" if test is None else f"{test['diff']:+.4f} [{test['ci'][0]:+.4f}, {test['ci'][1]:+.4f}]",
                  "-" if test is None else f"{test['p_value']:.3f}"]
    return cells


def _anchor_section(results: Comparison) -> list[str]:
    """The anchors' fits and every method's paired difference against each anchor, when the comparison has anchors."""
    header, rows = versus_anchors(results)
    if not rows:
        return []
    fit_header, fit_rows = anchor_fits(results)
    return ["<h2>Against the anchors</h2><p class='note'>Non-LM anchors rank the whole catalog from the same "
            "training sequences (ties by the tie rule over catalog rows) and keep the top eval.beams items, as beam "
            "search does. Paired difference over users with its 95% CI and the sign-flip permutation p-value.</p>",
            _table(header, rows), _table(fit_header, fit_rows)]


def _grid_section(results: Comparison) -> list[str]:
    """Every grid point's validation metrics and the choice, when the comparison tuned a grid."""
    header, rows = grid_points(results)
    if not rows:
        return []
    tuning = results.tuning
    grid = "; ".join(f"{key} = {', '.join('same' if v is None else str(v) for v in values)}"
                     for key, values in tuning["grid"].items())
    return [f"<h2>Grid on the validation targets</h2><p class='note'>Grid: {html.escape(grid)}. Each point is "
            f"evaluated on the validation targets, never the test targets; the point with the best validation "
            f"{html.escape(tuning['metric'])} is chosen (ties: {html.escape(tuning['ties'])}) and then run as the "
            "method's own run, whose test metrics are shown above."
            + (f" These choices were made in another run ({html.escape(tuning['choices_from'])}) and reused here;"
               f" untuned here: {html.escape(', '.join(tuning['untuned']) or 'none')}." if tuning.get("choices_from") else "")
            + "</p>", _table(header, rows)]


def validation_curves(results: Comparison, monitor: str) -> dict[str, dict]:
    """Method -> its validation curve for `plot_validation_curves` (LM methods: `monitor` by training tokens; SASRec:
    recall@10 by epoch); methods without one are left out."""
    found = {}
    for method, result in results.methods.items():
        points = result.validations or []
        if result.kind == "anchor" and points:
            found[method] = {"kind": "anchor", "measure": "recall@10", "x": [p["epoch"] for p in points],
                             "y": [p["recall@10"] for p in points], "best": result.best}
        elif points and monitor in points[0]:
            by = "train_tokens" if "train_tokens" in points[0] else "step"
            steps = [p["step"] for p in points]
            found[method] = {"kind": "lm", "measure": monitor, "x": [p[by] for p in points],
                             "y": [p[monitor] for p in points],
                             "best": points[steps.index(result.best)][by] if result.best in steps else None}
    return found


def convergence_table(results: Comparison, train: dict) -> list[str]:
    """Did each validation curve flatten (`gti.analysis.convergence` over the last `train.patience` validations, 2
    without patience): an LM method's answer loss and monitor, SASRec's recall@10."""
    window, monitor = int(train.get("patience") or 2), str(train.get("monitor", "recall@10"))
    rows = []
    for method, result in results.methods.items():
        for measure, found in verdicts(result.validations, result.kind == "anchor", monitor, window).items():
            if found is not None:
                gain = "-" if found["window_gain"] is None else f"{found['window_gain']:+.1%}"
                rows.append([method, measure, f"{found['before_best']:.4g}", f"{found['window_best']:.4g}", gain,
                             found["verdict"]])
    if not rows:
        return []
    return [f"<p class='note'>Convergence: the best of the last {window} validations against the best before them; "
            "still improving: better by more than 1%, flat: better by at most 1%, past its best: no better. An LM "
            "method's answer loss (the same validation users at every point) is a steadier reading than its "
            "beam-search recall; SASRec's loss is catalog-wide, so its recall is read.</p>",
            _table(["method", "measure", "best before", f"best of last {window}", "gain", "verdict"], rows)]


def write_html_report(results: Comparison, run_dir: Path) -> Path:
    """Write `run_dir/report.html` (and `training_curves.png`) from a comparison."""
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir, results.seeds[0] if results.seeds else None)
    mean = results.methods.get("mean")
    metric_rows, gain_rows, diag_rows, second_rows = [], [], [], []
    curves: dict[str, dict[str, list[float]]] = {"grounding": {}, "fine-tuning": {}}
    for method, result in results.methods.items():
        metric_rows.append([method] + [
            f"{result.metrics[m]:.4f} [{result.metrics_ci[m][0]:.4f}, {result.metrics_ci[m][1]:.4f}]"
            if result.metrics_ci.get(m) else _number(result.metrics.get(m))
            for m in SHOWN_METRICS
        ] + ["-" if result.train_tokens is None else f"{result.train_tokens:,.0f}", _number(result.train_seconds, 0)])
        if mean is not None and method != "mean":
            gain_rows.append(_gain_cells(method, result, mean.metrics))
        for stage in STAGES:
            d = result.diagnostics.get(stage)
            if d is not None:
                codebook = d.get("rsa_codebook") or {}
                diag_rows.append([method, stage, f"{d['effective_rank']:.1f}", f"{d['mean_pairwise_cosine']:.4f}",
                                  _number(codebook.get("pearson"), 3), _number(codebook.get("p_value"), 3),
                                  _per_level(d), _number((d.get("rsa_hierarchy") or {}).get("pearson"), 3),
                                  _number((d.get("rsa_hierarchy") or {}).get("p_value"), 3)])
        second_rows.append([method] + [_number(result.seconds.get(s), 1) for s in ("init", "ground", "finetune", "fit", "eval")])
        if result.kind == "anchor":
            continue
        curves["fine-tuning"][method] = _losses(layout.stage(method, "finetune") / "losses.json").get("finetune", [])
        if METHODS[method].ground:
            curves["grounding"][method] = _losses(layout.stage(method, "ground") / "losses.json").get("ground", [])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>gti report: {html.escape(run_dir.name)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>gti report: {html.escape(str(run_dir))}</h1>"]
    seeds, config = results.seeds, results.config
    parts.append(f"<p class='note'>data {html.escape(str(config['data']['source']))}, model {html.escape(config['model']['name'])}, "
                 f"SIDs {config['sids']['levels']}x{config['sids']['codes']} ({html.escape(config['sids']['quantizer'])}), "
                 f"seeds {seeds if seeds else 'one run per method'}; "
                 + (f"collision rate {results.sids['collision_rate']:.3f}.</p>" if "collision_rate" in results.sids
                    else "no SIDs (anchors only).</p>"))
    parts.append("<h2>Test metrics</h2><p class='note'>Mean, and in brackets the 95% CI over users"
                 + (" of the per-user values averaged over seeds" if seeds else "") + f" ({html.escape(CI_METHOD)})"
                 "; mrr is the reciprocal rank "
                 "within the beams (0 outside them). Training tokens (prompt + answer, padding excluded) and seconds "
                 "count every training stage, grounding included; anchors process no LM tokens.</p>")
    parts.append(_table(["method", *SHOWN_METRICS, "training tokens", "training seconds"], metric_rows))
    parts += _anchor_section(results)
    parts += _grid_section(results)
    if gain_rows:
        parts.append("<h2>Against mean initialization</h2><p class='note'>Relative gain, paired difference with its "
                     "95% CI, and the two-sided sign-flip permutation p-value over users, at each method's own "
                     "budget" + (" (see the compute-matched comparison below for equal training tokens)" if results.compute_matched
                                 else "; training tokens differ between methods (gti compare --budgets adds a "
                                      "compute-matched comparison)") + ".</p>")
        parts.append(_table(["method", "recall@10 gain", "recall@10 diff", "p", "ndcg@10 gain", "ndcg@10 diff", "p"], gain_rows))
    parts += _budget_section(results, run_dir)
    if results.cold_start is not None:
        parts.append(f"<h2>Cold-start items</h2><p class='note'>{html.escape(cold_note(results))}</p>")
        parts += [f"<h3>{html.escape(title)}</h3>" + _table(header, rows) for title, header, rows in cold_tables(results)]
    parts.append("<h2>New-token embeddings by stage</h2><p class='note'>Effective rank, mean pairwise cosine, RSA "
                 "(Pearson) against the quantizer's codebook pooled over levels (each level standardized first) "
                 "with its Mantel p-value, the same per level, and RSA against the SID hierarchy with its p-value: the "
                 "cosines between tokens of different levels (rows centred per level) against the Jaccard overlap of "
                 "their item sets, permutations within levels.</p>")
    parts.append(_table(["method", "stage", "effective rank", "mean cosine", "RSA codebook", "p", "RSA per level (p)",
                         "RSA hierarchy", "p"], diag_rows))
    parts.append(_image(run_dir / "effective_rank.png", "effective rank by stage and method"))
    parts.append(_image(run_dir / "spectrum.png", "singular value spectra by stage"))
    for method in results.methods:
        for stage in ("init", "finetune"):
            parts.append(_image(layout.stage(method, stage) / "cosine_heatmap.png",
                                f"{method} after {stage}: cosine of 50 old and 50 SID tokens"))
    if any(any(lines.values()) for lines in curves.values()):
        plot_training_curves(curves, run_dir / "training_curves.png")
        parts.append("<h2>Training</h2>" + _image(run_dir / "training_curves.png", "training loss"))
    validation = validation_curves(results, str(config.get("train", {}).get("monitor", "loss")))
    if validation:
        plot_validation_curves(validation, run_dir / "validation_curves.png")
        parts.append("<h2>Validation curves</h2>" + _image(run_dir / "validation_curves.png",
                                                            "each method's validation measure as it trained"))
        parts.extend(convergence_table(results, config.get("train", {})))
    parts.append("<h2>Seconds per stage</h2>")
    parts.append(_table(["method", "init", "ground", "finetune", "fit", "eval"], second_rows))
    parts.append("</body></html>")
    return atomic_write(run_dir / "report.html", "\n".join(p for p in parts if p))
