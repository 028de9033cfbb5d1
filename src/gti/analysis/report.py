"""The comparison report: a metrics table, effective rank by stage, and plots in the run folder."""

import json
from pathlib import Path

from gti.analysis.cold import cold_markdown
from gti.analysis.constants import SHOWN_METRICS, STAGES
from gti.analysis.html import write_html_report
from gti.analysis.plots import plot_effective_rank, plot_spectrum
from gti.analysis.tables import anchor_fits, grid_points, markdown, versus_anchors
from gti.artifacts import atomic_write, write_json
from gti.errors import GtiError
from gti.layout import STAGE_LABELS, RunLayout
from gti.rec.stats import CI_METHOD
from gti.results import Comparison


def markdown_table(results: Comparison) -> str:
    """Test metrics, recall@10's 95% CI and paired p-value against mean init, coverage, invalid-SID rate,
    final fine-tuning loss (mean of the last 10 steps), training tokens and seconds (grounding included), the most
    history items the method read per user (the same for every method but popularity, which reads none)
    and the new rows' effective rank per stage; "-" where a method has none (an anchor: no SIDs, no LM tokens)."""
    header = [
        "method", *SHOWN_METRICS, "recall@10 95% CI", "p vs mean (recall@10)", "coverage@10", "invalid SIDs",
        "finetune loss", "train tokens", "train seconds", "history items", *(f"erank {s}" for s in STAGES),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, result in results.methods.items():
        metrics = [f"{result.metrics.get(m, float('nan')):.4f}" for m in SHOWN_METRICS]
        interval = result.metrics_ci.get("recall@10")
        paired = (result.paired_vs_mean or {}).get("recall@10")
        p_value = "-" if paired is None or method == "mean" else f"{paired['p_value']:.3f}"
        loss = result.finetune_final_loss
        ranks = [f"{result.diagnostics[s]['effective_rank']:.1f}" if s in result.diagnostics else "-" for s in STAGES]
        invalid, tokens = result.output.get("invalid_sid_rate"), result.train_tokens
        cells = [
            method, *metrics, "-" if interval is None else f"[{interval[0]:.4f}, {interval[1]:.4f}]", p_value,
            f"{result.output['catalog_coverage@10']:.3f}", "-" if invalid is None else f"{invalid:.3f}",
            "-" if loss is None else f"{loss:.3f}", "-" if tokens is None else f"{tokens:,.0f}",
            f"{result.train_seconds:.0f}", "-" if result.history is None else str(result.history), *ranks,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_header(results: Comparison, run_dir: Path) -> str:
    """What was run, in two lines: data (users, items, split), model, methods, training and test settings."""
    config = results.config
    data, finetune, evaluation = config["data"], config["finetune"], config["eval"]
    stats_path = Path(run_dir) / "data" / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    users = "all users" if data["users"] is None else f"{data['users']:,} users drawn with seed {data['seed']}"
    counts = f" ({stats['users']:,} users, {stats['items']:,} items)" if stats else ""
    budget = (f"{finetune['epochs']:g} epochs at most" if finetune.get("epochs") else f"{finetune['steps']} steps") + \
        f" of {finetune['batch_size']} {finetune['samples']} samples"
    tested = "every test user" if evaluation["users"] is None else f"{evaluation['users']:,} test users ({evaluation['sample']})"
    seeds = f"; seeds {', '.join(map(str, results.seeds))}" if results.seeds else ""
    return (f"# {', '.join(results.methods)} on `{data['source']}`\n\n"
            f"Data: {users}{counts}, {data['split']} split, histories of at most {data['max_history']} items. "
            f"Model: `{config['model']['name']}`. Fine-tuning: {budget}, lr {finetune['lr']}. "
            f"Test: {tested}, {evaluation['beams']} beams{seeds}.")


def write_report(results: Comparison, run_dir: Path) -> None:
    """Print the metrics table, write `results.md` (what was run, then the metrics, with the anchors' tables, the
    grid and the cold-start tables when there are), and gather the diagnostics with their plots."""
    parts = [markdown_table(results) + f"\n\n95% CI: {CI_METHOD}."]
    for title, (header, rows) in [("Anchors' fits", anchor_fits(results)), ("Against the anchors", versus_anchors(results)),
                                  ("Grid points on the validation targets", grid_points(results))]:
        if rows:
            parts.append(f"{title}:\n\n{markdown(header, rows)}")
    cold = cold_markdown(results)
    text = "\n\n".join(parts + ([cold] if cold else []))
    print(text)
    atomic_write(Path(run_dir) / "results.md", run_header(results, run_dir) + "\n\n" + text + "\n")
    if any(result.kind == "lm" for result in results.methods.values()):
        collect_diagnostics(run_dir)
    write_html_report(results, run_dir)


def collect_diagnostics(run_dir: Path) -> Path:
    """Gather every stage's `diagnostics.json` of a run folder into one file, a table and plots.

    Writes `diagnostics.json` (method -> stage -> diagnostics), `spectrum.png` and
    `effective_rank.png` into `run_dir` and prints a table; returns the JSON's path.
    """
    if not Path(run_dir).is_dir():
        raise GtiError(f"{run_dir}: no such run folder")
    found: dict[str, dict[str, dict]] = {}
    for name_shown, method_dir in RunLayout(Path(run_dir)).method_folders():
        stages = {
            label: json.loads((method_dir / folder / "diagnostics.json").read_text())
            for folder, label in STAGE_LABELS.items()
            if (method_dir / folder / "diagnostics.json").is_file()
        }
        if stages:
            found[name_shown] = stages
    if not found:
        raise GtiError(f"{run_dir}: no stage diagnostics found; expected <method>/init/diagnostics.json")
    print(f"{'method':<10}{'stage':<11}{'eff. rank':>10}{'mean cos':>10}{'RSA codebook':>14}{'RSA level a':>13}"
          f"{'RSA hierarchy':>15}")
    for method, stages in found.items():
        for stage, d in stages.items():
            rsa_code = (d.get("rsa_codebook") or {}).get("pearson")
            rsa_level = ((d.get("rsa_codebook_per_level") or [{}])[0] or {}).get("pearson")
            rsa_tree = (d.get("rsa_hierarchy") or {}).get("pearson")
            shown = ["-" if v is None else f"{v:.3f}" for v in (rsa_code, rsa_level, rsa_tree)]
            p_code = (d.get("rsa_codebook") or {}).get("p_value")
            print(f"{method:<10}{stage:<11}{d['effective_rank']:>10.2f}{d['mean_pairwise_cosine']:>10.4f}"
                  f"{shown[0]:>14}{shown[1]:>13}{shown[2]:>15}" + ("" if p_code is None else f"   p(codebook) {p_code:.3f}"))
    plot_spectrum(
        {f"{m}/{s}": d["singular_values"] for m, stages in found.items() for s, d in stages.items()},
        run_dir / "spectrum.png",
    )
    plot_effective_rank(
        {m: {s: d["effective_rank"] for s, d in stages.items()} for m, stages in found.items()},
        run_dir / "effective_rank.png",
    )
    path = run_dir / "diagnostics.json"
    write_json(path, found)
    return path
