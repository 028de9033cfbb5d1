"""`report.html`: one self-contained page (plots inlined) that says what each method did and how well.

Metrics with 95% CIs, relative gain and paired significance against mean init, the
diagnostics of the new rows by stage, training curves and seconds per stage.
"""

import base64
import html
import json
from pathlib import Path

from gti.analysis.curves import plot_budget_curves
from gti.analysis.plots import plot_training_curves
from gti.analysis.report import SHOWN_METRICS, STAGES

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


def _budget_section(results: dict, run_dir: Path) -> list[str]:
    """Budget curves and the compute-matched comparison, when any method was evaluated at several budgets."""
    curves = {m: r["by_budget"] for m, r in results["methods"].items() if r.get("by_budget")}
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
    matched = results.get("compute_matched") or []
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


def write_html_report(results: dict, run_dir: Path) -> Path:
    """Write `run_dir/report.html` (and `training_curves.png`) from a `compare` results dict."""
    run_dir = Path(run_dir)
    methods = results["methods"]
    reference = methods.get("mean", {}).get("metrics")
    metric_rows, gain_rows, diag_rows, second_rows = [], [], [], []
    curves: dict[str, dict[str, list[float]]] = {"grounding": {}, "fine-tuning": {}}
    for method, result in methods.items():
        metrics, intervals = result["metrics"], result.get("metrics_ci", {})
        metric_rows.append([method] + [
            f"{metrics[m]:.4f} [{intervals[m][0]:.4f}, {intervals[m][1]:.4f}]" if intervals.get(m) else _number(metrics.get(m))
            for m in SHOWN_METRICS
        ])
        paired = result.get("paired_vs_mean", {})
        if reference is not None and method != "mean":
            cells = [method]
            for name in ("recall@10", "ndcg@10"):
                base = reference.get(name)
                gain = "-" if not base else f"{100 * (metrics[name] - base) / base:+.1f}%"
                test = paired.get(name)
                cells += [gain, "-" if test is None else f"{test['diff']:+.4f} [{test['ci'][0]:+.4f}, {test['ci'][1]:+.4f}]",
                          "-" if test is None else f"{test['p_value']:.3f}"]
            gain_rows.append(cells)
        for stage in STAGES:
            d = result["diagnostics"].get(stage)
            if d is not None:
                codebook = d.get("rsa_codebook") or {}
                diag_rows.append([method, stage, f"{d['effective_rank']:.1f}", f"{d['mean_pairwise_cosine']:.4f}",
                                  _number(codebook.get("pearson"), 3), _number(codebook.get("p_value"), 3),
                                  _number((d.get("rsa_hierarchy") or {}).get("pearson"), 3)])
        second_rows.append([method] + [_number(result["seconds"].get(s), 1) for s in ("init", "ground", "finetune", "eval")])
        folder = run_dir / result.get("folder", method)
        curves["fine-tuning"][method] = _losses(folder / "finetune" / "losses.json").get("finetune", [])
        ground_folder = folder.parent.parent / "gti" / folder.name if folder.name.startswith("seed-") else run_dir / "gti"
        if method in ("gti", "gti+lcrec"):
            curves["grounding"][method] = _losses(ground_folder / "ground" / "losses.json").get("ground", [])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>gti report: {html.escape(run_dir.name)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>gti report: {html.escape(str(run_dir))}</h1>"]
    seeds = results.get("seeds")
    config = results["config"]
    parts.append(f"<p class='note'>data {html.escape(str(config['data']['source']))}, model {html.escape(config['model']['name'])}, "
                 f"SIDs {config['sids']['levels']}x{config['sids']['codes']} ({html.escape(config['sids']['quantizer'])}), "
                 f"seeds {seeds if seeds else 'one run per method'}; collision rate "
                 f"{results.get('sids', {}).get('collision_rate', float('nan')):.3f}.</p>")
    parts.append("<h2>Test metrics</h2><p class='note'>Mean, and in brackets the 95% bootstrap CI over users"
                 + (" of the per-user values averaged over seeds" if seeds else "") + ".</p>")
    parts.append(_table(["method", *SHOWN_METRICS], metric_rows))
    if gain_rows:
        parts.append("<h2>Against mean initialization</h2><p class='note'>Relative gain, paired difference with its "
                     "95% CI, and the two-sided sign-flip permutation p-value over users.</p>")
        parts.append(_table(["method", "recall@10 gain", "recall@10 diff", "p", "ndcg@10 gain", "ndcg@10 diff", "p"], gain_rows))
    parts += _budget_section(results, run_dir)
    parts.append("<h2>New-token embeddings by stage</h2><p class='note'>Effective rank, mean pairwise cosine, RSA "
                 "(Pearson) against the quantizer's codebook with its Mantel p-value, and against the SID hierarchy.</p>")
    parts.append(_table(["method", "stage", "effective rank", "mean cosine", "RSA codebook", "p", "RSA hierarchy"], diag_rows))
    parts.append(_image(run_dir / "effective_rank.png", "effective rank by stage and method"))
    parts.append(_image(run_dir / "spectrum.png", "singular value spectra by stage"))
    for method, result in methods.items():
        folder = run_dir / result.get("folder", method)
        for stage in ("init", "finetune"):
            parts.append(_image(folder / stage / "cosine_heatmap.png", f"{method} after {stage}: cosine of 50 old and 50 SID tokens"))
    if any(any(lines.values()) for lines in curves.values()):
        plot_training_curves(curves, run_dir / "training_curves.png")
        parts.append("<h2>Training</h2>" + _image(run_dir / "training_curves.png", "training loss"))
    parts.append("<h2>Seconds per stage</h2>")
    parts.append(_table(["method", "init", "ground", "finetune", "eval"], second_rows))
    parts.append("</body></html>")
    path = run_dir / "report.html"
    temporary = path.with_name(".report.html.tmp")
    temporary.write_text("\n".join(p for p in parts if p))
    temporary.replace(path)
    return path
