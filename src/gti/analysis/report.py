"""The comparison report: a metrics table, effective rank by stage, and plots in the run folder."""

from pathlib import Path

from gti.analysis.plots import plot_effective_rank, plot_spectrum

STAGES = ("init", "grounded", "finetuned")
SHOWN_METRICS = ("recall@1", "recall@5", "recall@10", "ndcg@5", "ndcg@10", "mrr")


def markdown_table(results: dict) -> str:
    """Test metrics, final fine-tuning loss (mean of the last 10 steps) and the new rows' effective rank per stage."""
    header = ["method", *SHOWN_METRICS, "finetune loss", *(f"erank {s}" for s in STAGES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, result in results["methods"].items():
        metrics = [f"{result['metrics'].get(m, float('nan')):.4f}" for m in SHOWN_METRICS]
        ranks = [
            f"{result['diagnostics'][s]['effective_rank']:.1f}" if s in result["diagnostics"] else "-" for s in STAGES
        ]
        loss = result.get("finetune_final_loss")
        lines.append("| " + " | ".join([method, *metrics, "-" if loss is None else f"{loss:.3f}", *ranks]) + " |")
    return "\n".join(lines)


def write_report(results: dict, run_dir: Path) -> None:
    """Print the table and write `results.md`, `spectrum.png` and `effective_rank.png` into `run_dir`."""
    table = markdown_table(results)
    print(table)
    (run_dir / "results.md").write_text(table + "\n")
    spectra = {
        f"{method}/{stage}": diagnostics["singular_values"]
        for method, result in results["methods"].items()
        for stage, diagnostics in result["diagnostics"].items()
    }
    ranks = {
        method: {stage: d["effective_rank"] for stage, d in result["diagnostics"].items()}
        for method, result in results["methods"].items()
    }
    plot_spectrum(spectra, run_dir / "spectrum.png")
    plot_effective_rank(ranks, run_dir / "effective_rank.png")
