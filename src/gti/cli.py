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


def _data_prepare(args: argparse.Namespace) -> None:
    from gti.data.prepare import prepare

    prepare(args.source, Path(args.reviews), Path(args.meta), Path(args.out), args.kcore, args.overwrite)


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
    path = compare(args.config, args.set, args.methods.split(","), args.out, args.overwrite, seeds, budgets, args.grid)
    print(f"results: {path}\nreport: {path.parent / 'report.html'}")


def _quiet_loading() -> None:
    """No "Loading weights" progress bar on stderr for verbs that only load a trained model."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def _recommend(args: argparse.Namespace) -> None:
    from gti.recommend import load_recommender, recommend_file, show_items

    if (args.history is None) == (args.input is None):
        raise GtiError("give either --history ID,ID,... or --input FILE.jsonl")
    _quiet_loading()
    recommender = load_recommender(args.run_dir, args.method, args.seed)
    if args.input is not None:
        count = recommend_file(recommender, Path(args.input), args.output, args.k, args.exclude_history, args.overwrite)
        if args.output:
            print(f"wrote {count} lines to {args.output}", file=sys.stderr)
        return
    history = [item.strip() for item in args.history.split(",") if item.strip()]
    items = recommender.recommend_batch([history], args.k, args.exclude_history)[0]
    print(json.dumps({"items": items}, ensure_ascii=False) if args.json else show_items(items))


def _export(args: argparse.Namespace) -> None:
    from gti.export import export

    out = export(args.run_dir, args.out, args.method, args.seed, args.overwrite)
    print(f"wrote {out}: model/, sids.json, items.jsonl, gti_config.json, README.md")


def _serve(args: argparse.Namespace) -> None:
    from gti.serve import serve

    _quiet_loading()
    serve(args.path, args.method, args.seed, args.host, args.port, args.max_batch, args.max_wait_ms)


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
    prepare = data.add_parser("prepare", help="public review dumps -> the normalized format")
    prepare.add_argument("source", choices=["amazon", "yelp"],
                         help="amazon: 2014, 2018 or 2023 dumps (told from the content); yelp: the open dataset")
    prepare.add_argument("--reviews", required=True, help="review file (JSON lines, gzipped or plain)")
    prepare.add_argument("--meta", "--business", dest="meta", required=True,
                         help="item metadata file (Amazon) or business file (Yelp)")
    prepare.add_argument("--out", required=True, help="output folder (interactions.tsv + items.jsonl)")
    prepare.add_argument("--kcore", type=int, default=5, help="keep users and items with at least this many interactions")
    prepare.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    prepare.set_defaults(func=_data_prepare)

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

    recommend = verbs.add_parser("recommend", help="top-k catalog items for a history, with a trained model")
    recommend.add_argument("run_dir", help="a run folder, or a folder written by gti export")
    recommend.add_argument("--method", default="gti", help="which method's model in the run folder")
    recommend.add_argument("--seed", type=int, help="the training seed's model (runs made with compare --seeds)")
    recommend.add_argument("--history", help="comma-separated item ids, oldest first")
    recommend.add_argument("--input", help='JSON lines: {"history": [...], "k": 10, "user_id": ...} per user')
    recommend.add_argument("--output", help="with --input: write JSON lines here instead of stdout")
    recommend.add_argument("--k", type=int, default=10, help="how many items")
    recommend.add_argument("--exclude-history", action="store_true", help="leave out items of the history")
    recommend.add_argument("--json", action="store_true", help="print JSON")
    recommend.add_argument("--overwrite", action="store_true", help="with --output: replace an existing file")
    recommend.set_defaults(func=_recommend)

    export = verbs.add_parser("export", help="a trained method as a self-contained folder (model, SIDs, titles, card)")
    export.add_argument("run_dir", help="a run folder")
    export.add_argument("--method", default="gti", help="which method's model")
    export.add_argument("--seed", type=int, help="the training seed's model (runs made with compare --seeds)")
    export.add_argument("--out", required=True, help="folder to write")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    export.set_defaults(func=_export)

    serve = verbs.add_parser("serve", help="HTTP JSON API: GET /health, POST /recommend (needs gti[serve])")
    serve.add_argument("path", help="a run folder, or a folder written by gti export")
    serve.add_argument("--method", default="gti", help="which method's model in a run folder")
    serve.add_argument("--seed", type=int, help="the training seed's model (runs made with compare --seeds)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-batch", type=int, default=8, help="most requests answered by one beam search")
    serve.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a batch waits for more requests")
    serve.set_defaults(func=_serve)

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
            verb.add_argument("--grid", action="append", default=None, metavar="KEY=V1,V2",
                              help="tune every method over these values on the validation targets, e.g. "
                              "finetune.lr=1e-4,3e-4 or finetune.new_rows_lr=same,1e-3 or sasrec.lr=1e-3,3e-3 (repeatable)")
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
