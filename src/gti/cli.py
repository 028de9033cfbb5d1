"""The `gti` command: a small table from verb to a plain function.

Each verb checks what it can without torch first (config keys and values, method names, paths,
`k`, item ids against the catalog), so a mistake is one line in a fraction of a second; heavy
modules are imported inside the verbs, after those checks. Each verb ends by saying what it wrote.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from gti import progress
from gti.cliflags import MISSING, add_section_flags, section_values
from gti.config import DataConfig, RunConfig, SidConfig
from gti.distributed import finish
from gti.errors import GtiError
from gti.methods import METHODS

DEMO_CONFIG = "configs/demo.toml"


def _say(*lines: object) -> None:
    """What a verb wrote."""
    for line in lines:
        print(line, flush=True)


def _config(args: argparse.Namespace, extra_overrides: list[str] | None = None) -> RunConfig:
    """The verb's config (its `--set` overrides, then `extra_overrides`), validated, with its local paths checked
    (all without torch)."""
    from gti.checks import check_out, check_paths, check_sids_dir
    from gti.config import load_config

    config = load_config(args.config, [*args.set, *(extra_overrides or [])])
    check_paths(config)
    check_out(args.out)
    check_sids_dir(getattr(args, "sids", None))
    return config


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

    if args.kcore < 1:
        raise GtiError(f"--kcore: expected a positive integer, got {args.kcore}")
    prepare(args.source, Path(args.reviews), Path(args.meta), Path(args.out), args.kcore, args.overwrite)


def _data_dump(args: argparse.Namespace) -> None:
    from gti.data.rawdump import write_dump

    reviews, meta, counts = write_dump(Path(args.dataset), Path(args.out), args.name, args.users, args.overwrite)
    _say(f"wrote {reviews} ({counts['interactions']:,} reviews by {counts['users']:,} users) and {meta} "
         f"({counts['items']:,} items), in the Amazon 2014 layout")


def _sids(args: argparse.Namespace) -> None:
    from gti.checks import check_model_name, check_out
    from gti.config import from_dict, to_dict

    given = section_values(args, args.config_flags)
    config = from_dict({"data": {"source": args.dataset, **given.get("data", {})}, "sids": given.get("sids", {})},
                       "gti sids")
    check_model_name("--encoder", config.sids.encoder, ("all-minilm-l6-v2",))
    check_out(args.out)
    data = config.data
    from gti.stages.data import data_key, load

    dataset = load(data)

    from gti.artifacts import MANIFEST, cached_manifest, stage_key
    from gti.stages.sids import run_sids

    out = Path(args.out)
    key = stage_key(to_dict(config.sids), {"data": data_key(data)})
    if (out / "sids.json").exists() and cached_manifest(out, key) is None:
        if not args.overwrite:
            raise GtiError(f"{out / 'sids.json'}: already exists (other settings or data); pass --overwrite to replace it")
        shutil.rmtree(out)
    cached = cached_manifest(out, key) is not None
    run_sids(config.sids, data.text_fields, dataset, data_key(data), out, to_dict(data))
    if cached:
        print(f"{out}: already holds these SIDs (same settings and data); nothing recomputed")
    print(f"wrote {out / 'sids.json'}, {out / 'report.json'}, {out / 'codebooks.safetensors'}, {out / MANIFEST}")
    print(f"use them in a run: gti run CONFIG --sids {out}  (the run's [data] settings must match)")


def _claimable(config: RunConfig, args: argparse.Namespace, adding: bool = False) -> None:
    """The run folder's refusals (`gti.runfolder`) before torch is imported; with --sids the runner checks the config
    once the SIDs' settings are adopted."""
    from gti.runfolder import check_adding, check_run_folder

    root = Path(args.out or config.out)
    if adding:
        check_adding(root, args.overwrite)
    if getattr(args, "sids", None) is None:
        check_run_folder(config, root, args.overwrite)


def _cached(config: RunConfig, args: argparse.Namespace, methods: list[str], seeds: list[int] | None = None) -> bool:
    """A finished run of this exact config (`gti.runfolder.finished`): say so and where its files are, without torch."""
    from gti.runfolder import finished

    root = Path(args.out or config.out)
    if getattr(args, "sids", None) is not None or args.overwrite or not finished(config, root, methods, seeds):
        return False
    shown = root / ("metrics.json" if len(methods) == 1 and not (root / "results.json").is_file() else "results.md")
    print(shown.read_text().rstrip())
    _say(f"run folder: {root}  (finished with this config: every stage cached, nothing run)",
         f"results: {shown}", f"report: {root / 'report.html'}")
    return True


def _run(args: argparse.Namespace) -> None:
    config = _config(args)
    _claimable(config, args, adding=True)
    if _cached(config, args, [config.init.method]):
        return
    from gti.layout import RunLayout
    from gti.runner import run

    start = time.perf_counter()
    result = run(config, args.out, args.overwrite, config.init.method, sids_dir=args.sids)
    print(json.dumps(result.metrics, indent=2))
    layout, name = RunLayout(Path(args.out or config.out)), config.init.method
    evaluation, model = layout.stage(name, "eval"), layout.stage(name, "finetune") / "model"
    _say(f"run folder: {layout.root}  ({time.perf_counter() - start:.0f} s)", f"metrics: {layout.root / 'metrics.json'}",
         f"predictions: {evaluation / 'predictions.jsonl'} (per test user: target, rank, top 10)",
         *([f"model: {model}"] if model.is_dir() else []), f"report: {layout.root / 'report.html'}")


def _ground(args: argparse.Namespace) -> None:
    config = _config(args)
    _claimable(config, args)
    from gti.runner import run

    result = run(config, args.out, args.overwrite, "gti", until="ground", sids_dir=args.sids)
    for stage, diagnostics in result.diagnostics.items():
        print(f"{stage:<9} effective rank {diagnostics['effective_rank']:8.2f}  "
              f"mean cosine {diagnostics['mean_pairwise_cosine']:.4f}")
    root = Path(args.out or config.out)
    ground = root / "gti" / "ground"
    _say(f"run folder: {root}", f"grounded: {ground} ({', '.join(sorted(p.name for p in ground.iterdir()))})")


def _diagnose(args: argparse.Namespace) -> None:
    from gti.analysis.report import collect_diagnostics

    path = collect_diagnostics(Path(args.run_dir))
    _say(f"wrote {path}, {path.parent / 'spectrum.png'}, {path.parent / 'effective_rank.png'}")


def _integers(flag: str, text: str | None) -> list[int] | None:
    """A comma-separated list of integers from a flag, or None when the flag is absent."""
    if not text:
        return None
    try:
        return [int(value) for value in text.split(",")]
    except ValueError:
        raise GtiError(f"{flag}: expected comma-separated integers, got {text!r}") from None


def _compare(args: argparse.Namespace, methods: list[str] | None = None) -> None:
    from gti.checks import budget_overrides, check_methods, check_seeds

    methods = methods or [name.strip() for name in args.methods.split(",") if name.strip()]
    check_methods(methods)
    seeds = _integers("--seeds", getattr(args, "seeds", None))
    budgets = _integers("--budgets", getattr(args, "budgets", None))
    check_seeds(seeds)
    config = _config(args, budget_overrides(budgets))
    grid, choices = getattr(args, "grid", None), getattr(args, "choices", None)
    if grid or choices:
        from gti.tuning import settings_source

        settings_source(grid, choices, config, methods)
    _claimable(config, args)
    if not grid and not choices and _cached(config, args, methods, seeds):
        return
    from gti.runner import compare

    start = time.perf_counter()
    path = compare(args.config, args.set, methods, args.out, args.overwrite, seeds, budgets, grid, choices,
                   getattr(args, "sids", None))
    root = path.parent
    _say(f"run folder: {root}  ({time.perf_counter() - start:.0f} s)",
         f"results: {path}, {root / 'results.md'}", f"report: {root / 'report.html'}",
         f"plots: {root / 'effective_rank.png'}, {root / 'spectrum.png'}; diagnostics: {root / 'diagnostics.json'}",
         "per method: " + ", ".join(f"{root / name}/" for name in methods) + " (init/ ground/ finetune/model eval/)")


DEMO_METHODS = ("mostpop", "sasrec", "mean", "gti")
"""What `gti demo` compares: the two non-LM anchors, mean init and GTI."""


def _demo(args: argparse.Namespace) -> None:
    if args.config is None:
        if not Path(DEMO_CONFIG).is_file():
            raise GtiError(f"gti demo: no config given and no {DEMO_CONFIG} here; run it in the repository or name a "
                           "config")
        args.config = DEMO_CONFIG
    _compare(args, list(DEMO_METHODS))


def _recommend(args: argparse.Namespace) -> None:
    from gti.catalog import catalog_ids, check_k, check_request, check_trained_folder, parse_history, read_requests, which_model

    if (args.history is None) == (args.input is None):
        raise GtiError("give either --history ID,ID,... or --input FILE.jsonl")
    check_k(args.k, name="--k")
    check_trained_folder(Path(args.run_dir), args.method, args.seed)
    note = which_model(Path(args.run_dir), args.method, args.seed)
    if note:
        print(note, file=sys.stderr)  # stdout holds the answers
    catalog = catalog_ids(Path(args.run_dir))
    if args.input is not None:
        requests = read_requests(catalog, Path(args.input), args.k, args.exclude_history)
        from gti.recommend import check_new_file

        check_new_file(Path(args.output) if args.output else None, args.overwrite)
    else:
        history = check_request(catalog, parse_history(args.history), args.k).history
    from gti.recommend import load_recommender, recommend_file, show_items

    recommender = load_recommender(args.run_dir, args.method, args.seed)
    if args.input is not None:
        count = recommend_file(recommender, Path(args.input), args.output, args.k, args.exclude_history, args.overwrite,
                               requests=requests)
        if args.output:
            print(f"wrote {count} lines to {args.output}", file=sys.stderr)  # stdout may hold the answers
        return
    items = recommender.recommend_batch([list(history)], args.k, args.exclude_history)[0]
    print(json.dumps({"items": items}, ensure_ascii=False) if args.json else show_items(items))


def _export(args: argparse.Namespace) -> None:
    from gti.catalog import model_folder, read_run_config
    from gti.folders import check_output

    check_output(Path(args.out), args.overwrite)
    read_run_config(Path(args.run_dir))
    model_folder(Path(args.run_dir), args.method, args.seed)
    from gti.export import EXPORT_FILES, export

    out = export(args.run_dir, args.out, args.method, args.seed, args.overwrite)
    _say(f"wrote {out}: " + ", ".join(EXPORT_FILES))


def _serve(args: argparse.Namespace) -> None:
    from gti.catalog import check_trained_folder, which_model
    from gti.serve import Limits, require_server_packages

    require_server_packages()
    limits = Limits(args.max_body_bytes, args.max_history, args.max_k)
    check_trained_folder(Path(args.path), args.method, args.seed)
    note = which_model(Path(args.path), args.method, args.seed)
    if note:
        print(note, flush=True)
    from gti.serve import serve

    serve(args.path, args.method, args.seed, args.host, args.port, args.max_batch, args.max_wait_ms, limits)


def _show_config(args: argparse.Namespace) -> None:
    from gti.configdoc import reference, to_toml

    if args.defaults:
        if args.config or args.set:
            raise GtiError("--defaults prints the reference of every key; it takes no CONFIG or --set")
        sys.stdout.write(reference())
        return
    from gti.config import load_config

    sys.stdout.write(to_toml(load_config(args.config, args.set)))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` after an option's help where there is a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or default is MISSING or default == [] or "default:" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    def global_flags(target: argparse.ArgumentParser, default: object) -> None:
        target.add_argument("--debug", action="store_true", default=default, help="show tracebacks")
        target.add_argument("--quiet", action="store_true", default=default,
                            help="no progress bars or progress lines (results, errors and the paths written still print)")

    common = argparse.ArgumentParser(add_help=False)
    global_flags(common, argparse.SUPPRESS)  # after the verb too; absent there, the value before the verb stays
    parser = argparse.ArgumentParser(prog="gti", description="Semantic-ID vocabulary for language models, grounded.",
                                     formatter_class=_HelpFormatter,
                                     epilog="Environment: GTI_CACHE (converted models and embeddings; default "
                                            "~/.cache/gti), GTI_PROGRESS_SECONDS (seconds between progress lines in "
                                            "a log; 30), GTI_QUIET=1 or TQDM_DISABLE=1 (= --quiet).")
    global_flags(parser, False)
    verbs = parser.add_subparsers(dest="verb", required=True)

    def verb(group, name: str, **kwargs) -> argparse.ArgumentParser:
        return group.add_parser(name, formatter_class=_HelpFormatter, parents=[common], **kwargs)

    data = verb(verbs, "data", help="inspect or prepare a dataset").add_subparsers(dest="data_verb", required=True)
    stats = verb(data, "stats", help="users, items, interactions and text fields of a dataset as loaded")
    stats.add_argument("dataset", help="ml-100k or a dataset folder")
    stats.add_argument("--format", choices=["ml-100k", "normalized", "lcrec", "recbole"], help="detected when omitted")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_data_stats)
    prepare = verb(data, "prepare", help="public review dumps -> the normalized format")
    prepare.add_argument("source", choices=["amazon", "yelp"],
                         help="amazon: 2014, 2018 or 2023 dumps (told from the content); yelp: the open dataset")
    prepare.add_argument("--reviews", required=True, help="review file (JSON lines, gzipped or plain)")
    prepare.add_argument("--meta", "--business", dest="meta", required=True,
                         help="item metadata file (Amazon) or business file (Yelp)")
    prepare.add_argument("--out", required=True, help="output folder (interactions.tsv + items.jsonl)")
    prepare.add_argument("--kcore", type=int, default=5, help="keep users and items with at least this many interactions")
    prepare.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    prepare.set_defaults(func=_data_prepare)
    dump = verb(data, "dump", help="a small raw Amazon 2014 review dump from a normalized folder (to try gti data prepare)")
    dump.add_argument("dataset", help="a normalized dataset folder, e.g. ../shared/data/beauty")
    dump.add_argument("--out", required=True, help="folder for reviews_<NAME>.json.gz and meta_<NAME>.json.gz")
    dump.add_argument("--name", default="Beauty", help="the files' name part, as the published files: reviews_<NAME>.json.gz")
    dump.add_argument("--users", type=int, help="the first N users in file order (default: every user)")
    dump.add_argument("--overwrite", action="store_true", help="replace the two files if they exist")
    dump.set_defaults(func=_data_dump)

    sids = verb(verbs, "sids", help="build semantic ids for a catalog (the pipeline's sids stage, in one folder)")
    sids.add_argument("dataset", help="ml-100k or a dataset folder [data.source]")
    sids.add_argument("--out", required=True, help="output folder (a sids stage: `gti run --sids` adopts it)")
    sids.add_argument("--overwrite", action="store_true", help="replace SIDs made with other settings or data")
    sids.set_defaults(config_flags=add_section_flags(sids, DataConfig, "data", rename={"seed": "data_seed"}, skip=("source",))
                      + add_section_flags(sids, SidConfig, "sids"))
    sids.set_defaults(func=_sids)

    diagnose = verb(verbs, "diagnose", help="gather the embedding diagnostics of a run folder, with plots")
    diagnose.add_argument("run_dir", help="a run folder made by run, ground, compare or demo")
    diagnose.set_defaults(func=_diagnose)

    recommend = verb(verbs, "recommend", help="top-k catalog items for a history, with a trained model")
    recommend.add_argument("run_dir", help="a run folder, or a folder written by gti export")
    recommend.add_argument("--method", default="gti", help="which method's model in the run folder")
    recommend.add_argument("--seed", type=int, help="the training seed's model (runs made with compare --seeds)")
    recommend.add_argument("--history", help="comma-separated item ids, oldest first")
    recommend.add_argument("--input", help='JSON lines: {"history": [...], "k": 10, "user_id": ...} per user')
    recommend.add_argument("--output", help="with --input: write JSON lines here instead of stdout")
    recommend.add_argument("--k", type=int, default=10, help="how many items (1 to 1000)")
    recommend.add_argument("--exclude-history", action="store_true", help="leave out items of the history")
    recommend.add_argument("--json", action="store_true", help="print JSON")
    recommend.add_argument("--overwrite", action="store_true", help="with --output: replace an existing file")
    recommend.set_defaults(func=_recommend)

    export = verb(verbs, "export", help="a trained method as a self-contained folder (model, SIDs, titles, card)")
    export.add_argument("run_dir", help="a run folder")
    export.add_argument("--method", default="gti", help="which method's model")
    export.add_argument("--seed", type=int, help="the training seed's model (runs made with compare --seeds)")
    export.add_argument("--out", required=True, help="folder to write")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    export.set_defaults(func=_export)

    serve = verb(verbs, "serve", help="HTTP JSON API: GET /health, POST /recommend, GET /docs (needs gti[serve])")
    serve.add_argument("path", help="a run folder, or a folder written by gti export")
    serve.add_argument("--method", default="gti", help="which method's model in a run folder")
    serve.add_argument("--seed", type=int, help="the training seed's model (runs made with compare --seeds)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on: 127.0.0.1 answers this machine only, 0.0.0.0 every network interface")
    serve.add_argument("--port", type=int, default=8000, help="TCP port")
    serve.add_argument("--max-batch", type=int, default=8, help="most requests answered by one beam search")
    serve.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a batch waits for more requests")
    serve.add_argument("--max-body-bytes", type=int, default=65536, help="larger request bodies get 413")
    serve.add_argument("--max-history", type=int, default=200, help="longer histories get 422")
    serve.add_argument("--max-k", type=int, default=100, help="a larger k gets 422")
    serve.set_defaults(func=_serve)

    config = verb(verbs, "config", help="print a resolved config as TOML, or (--defaults) the reference of every key")
    config.add_argument("config", nargs="?", help="TOML config (defaults when omitted)")
    config.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    config.add_argument("--defaults", action="store_true",
                        help="every key with its default and doc line, as Markdown (docs/config.md is this output)")
    config.set_defaults(func=_show_config)

    for name, func, help_text in [
        ("run", _run, "run the pipeline for the config's init.method"),
        ("ground", _ground, "GTI grounding only: data, sids, init from init.base, ground"),
        ("demo", _demo, f"mean init vs GTI on the same SIDs and split, with a table (config: {DEMO_CONFIG})"),
        ("compare", _compare, "several initialization methods on the same SIDs and split"),
    ]:
        command = verb(verbs, name, help=help_text)
        command.add_argument("config", nargs="?", help="TOML config (defaults when omitted)")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                             help="override a config key (see gti config --defaults)")
        command.add_argument("--out", help="run folder (default: the config's `out`)")
        command.add_argument("--overwrite", action="store_true", help="replace a run folder made with another config")
        if name in ("run", "ground", "compare"):
            command.add_argument("--sids", help="a folder made by `gti sids` to use (its SID settings replace the config's)")
        if name == "compare":
            command.add_argument("--seeds", help="comma-separated training seeds, e.g. 1,2,3 (each method runs once per seed)")
            command.add_argument("--budgets", help="comma-separated fine-tuning steps, e.g. 150,300,600,1200: every method "
                                 "fine-tunes once to the largest and is evaluated at each (needs finetune.schedule=constant)")
            command.add_argument("--methods", default="mean,gti",
                                 help=f"comma-separated methods among {', '.join(METHODS)}")
            command.add_argument("--grid", action="append", default=None, metavar="KEY=V1,V2",
                                 help="tune every method over these values on the validation targets, e.g. "
                                 "finetune.lr=1e-4,3e-4 or finetune.new_rows_lr=same,1e-3 or sasrec.lr=1e-3,3e-3 (repeatable)")
            command.add_argument("--choices", metavar="RESULTS_JSON",
                                 help="instead of --grid: run each method at the settings an earlier `gti compare --grid` "
                                 "run chose (its results.json; several, comma-separated, when they tuned different "
                                 "methods with the same grid)")
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gti` console script."""
    args = build_parser().parse_args(argv)
    progress.configure(args.quiet)
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
