"""The `medgan` command: one verb per pipeline stage. Snakemake and DVC both call these."""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__, config, paths

VERBS = {
    "phantoms": "generate the phantom raw dataset NAME (the embedded default) into data/raw/NAME",
    "prepare": "raw dataset -> labeled 2D slices + manifest in data/slices/DATASET, split by case",
    "train": "train the GAN of EXPERIMENT (resumes from its last checkpoint)",
    "sample": "write N generated images and a grid for EXPERIMENT",
    "evaluate": "metrics of EXPERIMENT's samples against held-out real images",
    "baseline": "real-vs-real floor of DATASET: the metrics between two halves of its held-out images",
    "summarize": "one table of all experiments' metrics (summary.csv and summary.md)",
}
TARGETS = {"phantoms": "NAME", "prepare": "DATASET", "train": "EXPERIMENT",
           "sample": "EXPERIMENT", "evaluate": "EXPERIMENT",
           "baseline": "DATASET"}


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
        sub.add_argument("--params", metavar="FILE", help="configuration file (default: params.yaml)")
        if verb == "phantoms":
            sub.add_argument("--out", help="output folder (default: data/raw/NAME)")
    return parser


def run(args: argparse.Namespace) -> None:
    params = config.load(args.params)
    if args.verb == "phantoms":
        from . import phantoms

        spec = params.get("phantoms", {}).get(args.target)
        if spec is None:
            raise config.ConfigError(f"no 'phantoms.{args.target}' entry in params.yaml")
        phantoms.generate(spec["kind"], args.out or paths.path(paths.RAW, name=args.target), spec, params["seed"])
    elif args.verb == "prepare":
        from . import prepare

        prepare.prepare_dataset(args.target, config.dataset(params, args.target),
                                paths.path(paths.SLICES, dataset=args.target), params["seed"])
    elif args.verb == "train":
        from . import train

        train.train(params, args.target)
    elif args.verb == "sample":
        from . import sample

        config.experiment(params, args.target)
        sample.sample(params, args.target)
    elif args.verb == "evaluate":
        from . import evaluate

        evaluate.evaluate(params, args.target)
    elif args.verb == "baseline":
        from . import evaluate

        evaluate.baseline(params, args.target)
    elif args.verb == "summarize":
        from . import evaluate

        evaluate.summarize(params)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        run(args)
    except (config.ConfigError, FileNotFoundError, ValueError) as err:
        print(f"medgan {args.verb}: error: {err}", file=sys.stderr)
        return 2
    print(f"medgan {args.verb} {getattr(args, 'target', '')} done in {time.perf_counter() - started:.1f}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
