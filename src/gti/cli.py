"""The `gti` command: a small table from verb to a plain function."""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from gti.cliflags import add_section_flags, section_values
from gti.config import DataConfig, SidConfig
from gti.distributed import finish
from gti.errors import GtiError
from gti.methods import METHODS


def _data_stats(args: argparse.Namespace) -> None:
    from gti.data import load_dataset

    stats = load_dataset(args.dataset, args.format).stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return
    print(f"users         {stats['users']:>10,}")
    print(f"items         {stats['items']:>10,}")
    print(f"interactions  {stats['interactions']:>10,}")
    print(f"avg history   {stats['avg_history']:>10.2f}")
    for name, count in stats["text_fields"].items():
        print(f"items with {name:<12} {count:>8,}")


def _sids(args: argparse.Namespace) -> None:
    from gti.artifacts import MANIFEST, cached_manifest, stage_key
    from gti.config import from_dict, to_dict
    from gti.stages.data import data_key, load
    from gti.stages.sids import run_sids

    given = section_values(args, args.config_flags)
    config = from_dict({"data": {"source": args.dataset, **given.get("data", {})}, "sids": given.get("sids", {})},
                       "gti sids")
    out = Path(args.out)
    key = stage_key(to_dict(config.sids), {"data": data_key(config.data)})
    if (out / "sids.json").exists() and cached_manifest(out, key) is None:
        if not args.overwrite:
            raise GtiError(f"{out / 'sids.json'}: already exists (other settings or data); pass --overwrite to replace it")
        shutil.rmtree(out)
    cached = cached_manifest(out, key) is not None
    run_sids(config.sids, config.data.text_fields, load(config.data), data_key(config.data), out)
    if cached:
        print(f"{out}: already holds these SIDs (same settings and data); nothing recomputed")
    print(f"wrote {out / 'sids.json'}, {out / 'report.json'}, {out / 'codebooks.safetensors'}, {out / MANIFEST}")
    print(f"use them in a run: gti run CONFIG --sids {out}  (the run's [data] settings must match)")


def _run(args: argparse.Namespace) -> None:
    from gti.config import load_config
    from gti.runner import run

    config = load_config(args.config, args.set)
    result = run(config, args.out, args.overwrite, config.init.method, sids_dir=args.sids)
    print(json.dumps(result.metrics, indent=2))


def _ground(args: argparse.Namespace) -> None:
    from gti.config import load_config
    from gti.runner import run

    config = load_config(args.config, args.set)
    result = run(config, args.out, args.overwrite, "gti", until="ground", sids_dir=args.sids)
    for stage, diagnostics in result.diagnostics.items():
        print(f"{stage:<9} effective rank {diagnostics['effective_rank']:8.2f}  "
              f"mean cosine {diagnostics['mean_pairwise_cosine']:.4f}")
    print(f"grounded rows: {Path(args.out or config.out) / 'gti' / 'ground'}")


def _diagnose(args: argparse.Namespace) -> None:
    from gti.analysis.report import collect_diagnostics

    path = collect_diagnostics(Path(args.run_dir))
    print(f"wrote {path}")


def _demo(args: argparse.Namespace) -> None:
    from gti.runner import compare

    start = time.perf_counter()
    results_path = compare(args.config, args.set, ["mean", "gti"], args.out, args.overwrite)
    print(f"results: {results_path}  ({time.perf_counter() - start:.0f} s)")
    print(f"report: {results_path.parent / 'report.html'}")


def _integers(flag: str, text: str | None) -> list[int] | None:
    """A comma-separated list of integers from a flag, or None when the flag is absent."""
    if not text:
        return None
    try:
        return [int(value) for value in text.split(",")]
    except ValueError:
        raise GtiError(f"{flag}: expected comma-separated integers, got {text!r}") from None


def _compare(args: argparse.Namespace) -> None:
    from gti.runner import compare

    seeds = _integers("--seeds", args.seeds)
    budgets = _integers("--budgets", args.budgets)
    path = compare(args.config, args.set, args.methods.split(","), args.out, args.overwrite, seeds, budgets)
    print(f"results: {path}\nreport: {path.parent / 'report.html'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gti", description="Semantic-ID vocabulary for language models, grounded.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    verbs = parser.add_subparsers(dest="verb", required=True)

    data = verbs.add_parser("data", help="inspect a dataset").add_subparsers(dest="data_verb", required=True)
    stats = data.add_parser("stats", help="users, items, interactions and text fields of a dataset as loaded")
    stats.add_argument("dataset", help="ml-100k or a dataset folder")
    stats.add_argument("--format", choices=["ml-100k", "normalized", "lcrec", "recbole"])
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_data_stats)

    sids = verbs.add_parser("sids", help="build semantic ids for a catalog (the pipeline's sids stage, in one folder)")
    sids.add_argument("dataset", help="ml-100k or a dataset folder [data.source]")
    sids.add_argument("--out", required=True, help="output folder (a sids stage: `gti run --sids` adopts it)")
    sids.add_argument("--overwrite", action="store_true", help="replace SIDs made with other settings or data")
    sids.set_defaults(config_flags=add_section_flags(sids, DataConfig, "data", rename={"seed": "data_seed"}, skip=("source",))
                      + add_section_flags(sids, SidConfig, "sids"))
    sids.set_defaults(func=_sids)

    diagnose = verbs.add_parser("diagnose", help="gather the embedding diagnostics of a run folder, with plots")
    diagnose.add_argument("run_dir", help="a run folder made by run, ground, compare or demo")
    diagnose.set_defaults(func=_diagnose)

    for name, func, help_text in [
        ("run", _run, "run the pipeline for the config's init.method"),
        ("ground", _ground, "GTI grounding only: data, sids, init from init.base, ground"),
        ("demo", _demo, "mean init vs GTI on the same SIDs and split, with a table"),
        ("compare", _compare, "several initialization methods on the same SIDs and split"),
    ]:
        verb = verbs.add_parser(name, help=help_text)
        verb.add_argument("config", nargs="?", help="TOML config (defaults when omitted)")
        verb.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
        verb.add_argument("--out", help="run folder (default: the config's `out`)")
        verb.add_argument("--overwrite", action="store_true", help="replace a run folder made with another config")
        if name in ("run", "ground"):
            verb.add_argument("--sids", help="a folder made by `gti sids` to use (its SID settings replace the config's)")
        if name == "compare":
            verb.add_argument("--seeds", help="comma-separated training seeds, e.g. 1,2,3 (each method runs once per seed)")
            verb.add_argument("--budgets", help="comma-separated fine-tuning steps, e.g. 150,300,600,1200: every method "
                              "fine-tunes once to the largest and is evaluated at each (needs finetune.schedule=constant)")
            verb.add_argument("--methods", default="mean,gti",
                              help=f"comma-separated methods among {', '.join(METHODS)}")
        verb.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gti` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
        finish()
    except GtiError as error:
        if args.debug:
            raise
        print(f"gti: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gti: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
