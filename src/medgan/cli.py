"""The `medgan` command: one verb per pipeline stage. Snakemake and DVC both call these."""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import __version__, config, paths
from .errors import MedganError

VERBS = {
    "phantoms": "generate the phantom raw dataset NAME (the embedded default) into data/raw/NAME",
    "check-data": "list every problem of the raw dataset DATASET at once (nothing is written)",
    "prepare": "raw dataset -> labeled 2D slices + manifest in data/slices/DATASET, split by case",
    "train": "train the generator of EXPERIMENT, a GAN or a DDPM (resumes from its last checkpoint)",
    "sample": "write N generated images (paired variants: one per held-out pair) and a grid for EXPERIMENT",
    "evaluate": "metrics of EXPERIMENT's samples against held-out real images",
    "aggregate": "EXPERIMENT's entry over its replicates (training seeds): every seed's metrics, their mean and an "
                 "across-seed interval (95 percent) (results/metrics/experiments/EXPERIMENT.json)",
    "baseline": "real-vs-real floor of DATASET: the metrics between two halves of its held-out images",
    "summarize": "all metrics in summary.csv; the headline table (one row per experiment and baseline) in "
                 "summary.md (the current params' experiments only; nothing is removed)",
    "turing": "visual Turing test page of EXPERIMENT's replicate 0 (results/turing/EXPERIMENT/index.html, key.json beside it)",
    "turing-score": "score readers' answer CSVs of EXPERIMENT's Turing test (per reader, pooled, Fleiss' kappa)",
    "clean": "list what no experiment or dataset of the current params produces (models, checkpoints, samples, "
             "synthetic sets, Turing pages... of another configuration), with sizes; --yes removes it",
    "compare-metrics": "Markdown for a pull request: which headline numbers changed beyond the across-seed interval "
                       "and whether the verdict changed, between two results/metrics folders (OLD: base, NEW: workspace)",
    "report": "one self-contained HTML page of every result (results/report.html)",
    "env": "print what made results here (versions, commit, device) and check it against the lock",
    "explore": "latent-space explorer of DATASET: real and generated images on an autoencoder's 2-D map, "
               "GAN latent sliders and paths of each experiment's replicate 0 (results/explore/DATASET.html, opens offline)",
    "synthesize": "edit EXPERIMENT's training label maps (add, grow, shrink, move, remove lesions; sizes in mm) and "
                  "render them through its replicate 0 mask -> image model into data/synthetic/EXPERIMENT (image/mask pairs + manifest)",
    "export": "EXPERIMENT's generator as a shareable package: results/export/EXPERIMENT/ (safetensors weights, "
              "architecture, medigan-style generate(), metadata.json, MODEL_CARD.md) and its .zip",
    "generate": "N images from an exported generator (folder or .zip from `medgan export`), without params.yaml",
}
TARGETS = {"phantoms": "NAME", "check-data": "DATASET", "prepare": "DATASET", "train": "EXPERIMENT",
           "sample": "EXPERIMENT", "evaluate": "EXPERIMENT", "aggregate": "EXPERIMENT", "baseline": "DATASET",
           "turing": "EXPERIMENT", "turing-score": "EXPERIMENT", "explore": "DATASET",
           "synthesize": "EXPERIMENT", "export": "EXPERIMENT"}


REPLICATED = ("train", "sample", "evaluate")  # verbs that run on one replicate of an experiment


def variant_names() -> list[str]:
    """From the schema, so that --help needs no torch."""
    experiment = config.load_schema()["properties"]["experiments"]["additionalProperties"]
    return experiment["properties"]["variant"]["enum"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medgan", description="Synthetic medical images with GANs, and honest metric tables. "
        "Every verb reads params.yaml (or --params FILE, or $MEDGAN_PARAMS).")
    parser.add_argument("--version", action="version", version=f"medgan {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, help_text in VERBS.items():
        sub = verbs.add_parser(verb, help=help_text, description=help_text)
        if verb in TARGETS:
            sub.add_argument("target", metavar=TARGETS[verb], help=f"{TARGETS[verb].lower()} name in params.yaml")
        if verb == "generate":
            add_generate_arguments(sub)
            continue
        sub.add_argument("--params", metavar="FILE", help="configuration file (default: params.yaml)")
        if verb == "export":
            sub.add_argument("--replicate", type=int, default=0, metavar="I",
                             help="which training replicate (seed) to export (default: 0)")
        if verb in REPLICATED:
            which = sub.add_mutually_exclusive_group()
            which.add_argument("--replicate", type=int, metavar="I",  # None = 0 (argparse only sees non-defaults)
                               help="which replicate (training seed) of EXPERIMENT, 0..R-1 (default 0; its seed: "
                                    "README 'Seeds as replicates')")
            which.add_argument("--all-replicates", action="store_true",
                               help="every replicate of EXPERIMENT in turn (DVC's one stage per experiment)")
        if verb == "compare-metrics":
            sub.add_argument("old", metavar="OLD", help="the base revision's results/metrics folder")
            sub.add_argument("new", metavar="NEW", help="the workspace's results/metrics folder")
        if verb == "env":
            sub.add_argument("--json", action="store_true", help="print JSON (for machines)")
            sub.add_argument("--lock", metavar="FILE", help="lock file to check against (default: requirements/*.txt)")
        if verb == "clean":
            sub.add_argument("--yes", action="store_true",
                             help="remove what is listed (a Turing folder with readers' answers is always kept)")
        if verb == "phantoms":
            sub.add_argument("--out", help="output folder (default: data/raw/NAME)")
        if verb == "train":
            sub.epilog = "variants (experiments.<name>.variant): " + ", ".join(variant_names())
            sub.add_argument("--nproc", type=int, metavar="N",
                             help="processes under torchrun/DDP (default: resources.train.gpus; <= 1 runs one)")
        if verb == "turing-score":
            sub.add_argument("answers", nargs="*", metavar="CSV",
                             help=f"answer files exported by the page (default: {paths.TURING_ANSWERS}/*.csv)")
            sub.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
        if verb == "prepare":
            step = sub.add_mutually_exclusive_group()
            step.add_argument("--list-units", action="store_true",
                              help=f"only write the dataset's units (cases or shards of files) to {paths.UNIT_LIST.format(dataset='DATASET')}")
            step.add_argument("--unit", metavar="UNIT",
                              help=f"only convert UNIT (from --list-units) into {paths.UNIT.format(dataset='DATASET', unit='UNIT')} (one scatter job)")
    return parser


def add_generate_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("model", metavar="MODEL", help="an export folder or .zip written by `medgan export`")
    sub.add_argument("--n", type=int, required=True, metavar="N",
                     help="how many images (label map -> image models: the first N label maps; 0 = all)")
    sub.add_argument("--out", required=True, metavar="DIR",
                     help="a new (or empty) folder for the PNGs, or a file ending in .zip")
    sub.add_argument("--seed", type=int, default=0, help="same seed, same images (default: 0)")
    sub.add_argument("--class", dest="cls", metavar="CLASS", help="conditional models: the class to draw")
    sub.add_argument("--mask-dir", metavar="DIR", help="label map -> image models: folder of PNG label maps")


def launch_torchrun(nproc: int, args: argparse.Namespace) -> None:
    """Multi-GPU training: rerun this verb under torchrun, one DDP process per GPU."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "medgan.cli", "train", args.target, "--params", str(config.params_path(args.params)),
               "--replicate", str(args.replicate or 0)]
    print("+ " + " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)


def run(args: argparse.Namespace) -> None:
    if args.verb == "env":
        from . import envcheck

        envcheck.main(args.json, args.lock)
        return
    if args.verb == "generate":
        from . import exported

        images = exported.generate(args.model, args.n, seed=args.seed, out=args.out, cls=args.cls,
                                   mask_dir=args.mask_dir)
        print(f"{args.out}: {len(images)} images from {args.model} (seed {args.seed})")
        return
    if args.verb == "compare-metrics":  # reads only the two folders (the base's params may differ)
        from . import compare

        print(compare.report(Path(args.old), Path(args.new)), end="")
        return
    params = config.load(args.params)
    if args.verb == "phantoms":
        from . import phantoms

        spec = params.get("phantoms", {}).get(args.target)
        if spec is None:
            raise config.ConfigError(f"no 'phantoms.{args.target}' entry in params.yaml")
        out = Path(args.out) if args.out else paths.path(paths.RAW, name=args.target)
        if out.exists() and any(out.iterdir()) and (args.out or not (out / phantoms.MARKER).is_file()):
            how = f"--out {out}" if args.out else f"{out} (no {phantoms.MARKER}: not made by `medgan phantoms`)"
            raise config.ConfigError(f"{how} exists and is not empty: phantoms would replace it (real data?) — "
                                     f"delete it yourself first, or point datasets.*.raw elsewhere / choose another folder")
        phantoms.generate(spec["kind"], out, spec, params["seed"])
        (out / phantoms.MARKER).write_text(json.dumps({"phantoms": args.target, **spec, "seed": params["seed"]}) + "\n")
    elif args.verb == "prepare":
        from . import prepare

        run_prepare(args, params)
    elif args.verb == "check-data":
        from . import prepare
        from .ingest.pipeline import adapter

        problems = prepare.check_dataset(args.target, config.dataset(params, args.target))
        if problems:
            raise prepare.DataError(f"dataset '{args.target}': {len(problems)} problem(s):\n"
                                    + "\n".join(f"  - {p}" for p in problems))
        print(f"dataset '{args.target}': no problem found")
        who = adapter(config.dataset(params, args.target)).patients(config.dataset(params, args.target))
        if not who["known"]:
            print(f"note: {who['source']}")
    elif args.verb in REPLICATED:
        for replicate in replicates_asked(args, params):
            run_replicate(args, params, replicate)
    elif args.verb == "aggregate":
        from . import replicates

        entry = replicates.aggregate(params, args.target)
        print(f"{paths.METRICS.format(experiment=args.target)}: {entry['replicates']} replicate(s), seeds "
              f"{entry['seeds']}")
    elif args.verb == "baseline":
        from . import evaluate

        evaluate.baseline(params, args.target)
    elif args.verb == "summarize":
        from . import summary

        summary.summarize(params)
    elif args.verb == "clean":
        from . import prune

        entries = prune.clean(params, Path("."), remove=args.yes)
        print(prune.clean_text(entries, Path("."), removed=args.yes))
    elif args.verb == "turing":
        from . import turing

        config.experiment(params, args.target)
        key = turing.build(params, args.target)
        print(f"{paths.TURING_PAGE.format(experiment=args.target)}: {key['n_real']} real + "
              f"{key['n_synthetic']} synthetic images (replicate 0), test {key['test_id']}")
    elif args.verb == "turing-score":
        run_turing_score(args, params)
    elif args.verb == "explore":
        from . import explore

        placed = explore.build(params, args.target)
        print(f"{paths.EXPLORE.format(dataset=args.target)}: {placed['points']} images on the map, "
              f"{placed['gans']} generator(s) with sliders (replicate 0 of each experiment), "
              f"{placed['bytes'] / 1e6:.1f} MB")
    elif args.verb == "synthesize":
        from . import synthesize

        manifest = synthesize.synthesize(params, args.target)
        print(f"{paths.path(paths.SYNTHETIC, experiment=args.target)}: {len(manifest)} image/mask pairs "
              f"from replicate 0's model "
              f"({', '.join(f'{k} {v}' for k, v in manifest['edit'].value_counts().sort_index().items())})")
    elif args.verb == "export":
        from . import export

        folder = export.export(params, args.target, args.replicate)
        print(f"{folder}/ and {paths.EXPORT_ZIP.format(experiment=args.target)}: {args.target} exported")
    elif args.verb == "report":
        from . import report

        print(report.build(params))


def replicates_asked(args: argparse.Namespace, params: dict) -> range:
    count = config.replicates_of(params, args.target)
    if args.all_replicates:
        return range(count)
    replicate = args.replicate or 0
    config.check_replicate(params, args.target, replicate)
    return range(replicate, replicate + 1)


def run_replicate(args: argparse.Namespace, params: dict, replicate: int) -> None:
    """train, sample or evaluate one replicate of an experiment."""
    if args.verb == "train":
        from . import train

        nproc = args.nproc if args.nproc is not None else params["resources"]["train"]["gpus"]
        if nproc > 1 and "WORLD_SIZE" not in os.environ:
            launch_torchrun(nproc, argparse.Namespace(**{**vars(args), "replicate": replicate}))
        else:
            train.train(params, args.target, replicate)
    elif args.verb == "sample":
        from . import sample

        sample.sample(params, args.target, replicate)
    else:
        from . import evaluate

        evaluate.evaluate(params, args.target, replicate)


def run_turing_score(args: argparse.Namespace, params: dict) -> None:
    from pathlib import Path

    from . import turing
    from .atomic import write_json

    config.experiment(params, args.target)
    files = [Path(f) for f in args.answers] or turing.answer_files(args.target)
    result = turing.score(turing.key_for(args.target, files), files)
    print(turing.score_text(result))
    if args.json:
        write_json(args.json, result)


def run_prepare(args: argparse.Namespace, params: dict) -> None:
    """All of prepare, or one of its Snakemake steps: list units (checkpoint), one unit (scatter)."""
    from . import ingest

    name, dataset = args.target, config.dataset(params, args.target)
    interim = paths.path(paths.INTERIM, dataset=name)
    if args.list_units:
        ingest.write_unit_list(name, dataset, paths.path(paths.UNIT_LIST, dataset=name))
    elif args.unit:
        units = {u.unit_id: u for u in ingest.read_unit_list(paths.path(paths.UNIT_LIST, dataset=name))}
        if args.unit not in units:
            raise ingest.DataError(f"unit '{args.unit}' is not in {paths.UNIT_LIST.format(dataset=name)} — "
                                   f"run `medgan prepare {name} --list-units` first")
        ingest.convert_unit(units[args.unit], dataset, paths.path(paths.UNIT, dataset=name, unit=args.unit))
    else:
        ingest.prepare_dataset(name, dataset, paths.path(paths.SLICES, dataset=name), params["seed"], interim)


DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def disk_full_message(err: OSError) -> str:
    """A full disk or an exhausted quota (shared clusters) is the user's to fix, not a bug."""
    where = Path(err.filename or ".").resolve()
    folder = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(folder).free / 2**30
    return (f"{os.strerror(err.errno)} writing {err.filename or 'an output'} ({free:.2f} GiB free under {folder}) — "
            f"free space there or raise the quota, then run the same command again: outputs are written "
            f"atomically, so nothing half-written was kept, and training resumes from its last checkpoint")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        run(args)
    except (MedganError, subprocess.CalledProcessError) as err:
        print(f"medgan {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        print(f"medgan {args.verb}: error: {disk_full_message(err)}", file=sys.stderr)
        return 2
    print(f"medgan {args.verb} {getattr(args, 'target', '')} done in {time.perf_counter() - started:.1f}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
