"""How often does R seeds per arm reproduce the demo's verdict? Reads every replicate of a run
made with more seeds than the demo's (each seed one draw of the chaotic training, as another
CPU or thread count would redraw it), and counts, over every choice of R seeds per arm, how often
the verdict rule (exact one-sided Mann–Whitney, p <= 0.05) calls the second arm better, by each
metric.

    snakemake --cores 2 --config replicates=10          # the sweep: 10 seeds per experiment
    python benchmarks/seed_sweep.py [--root .] [--out benchmarks/results]

Writes seed_sweep.csv (every seed's FID, KID, FRD) and seed_sweep.md (the separation table).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from medgan import paths  # noqa: E402
from medgan.atomic import read_json  # noqa: E402
from medgan.provenance import cpu_info  # noqa: E402
from medgan.summary import ALPHA, one_sided_p  # noqa: E402

ARMS = ("lits_vanilla_tumour", "lits_dcgan_small_data_tumour")
METRICS = ("kid", "fid", "frd")


def seed_table(root: Path) -> pd.DataFrame:
    """Every seed's value of METRICS per arm, from the arm's aggregate (medgan aggregate), the
    file summary.md reads."""
    rows = []
    for arm in ARMS:
        result = read_json(root / paths.path(paths.METRICS, experiment=arm), f"run `medgan aggregate {arm}` in {root}")
        by_replicate: dict[int, dict] = {}
        for metric in METRICS:
            for seed in result["metrics"][metric]["seeds"]:
                by_replicate.setdefault(seed["replicate"], {})[metric] = seed.get("value")
        rows += [{"experiment": arm, "replicate": r, **values} for r, values in sorted(by_replicate.items())]
    return pd.DataFrame(rows)


def separation(worse: np.ndarray, better: np.ndarray, seeds: int) -> float:
    """Share of all choices of `seeds` values per arm for which the rule calls `better` better."""
    hits = total = 0
    for a in itertools.combinations(worse, seeds):
        for b in itertools.combinations(better, seeds):
            hits += one_sided_p(list(b), list(a)) <= ALPHA
            total += 1
    return hits / total


def separation_table(table: pd.DataFrame, seeds=(3, 4)) -> pd.DataFrame:
    rows = []
    for metric in METRICS:
        worse = table.loc[table["experiment"] == ARMS[0], metric].to_numpy()
        better = table.loc[table["experiment"] == ARMS[1], metric].to_numpy()
        row = {"metric": metric.upper(), "MLP GAN mean (sd)": f"{worse.mean():.4g} ({worse.std(ddof=1):.2g})",
               "DCGAN small-data mean (sd)": f"{better.mean():.4g} ({better.std(ddof=1):.2g})",
               "MLP best / DCGAN worst seed": f"{worse.min():.4g} / {better.max():.4g}"}
        for r in seeds:
            row[f"DCGAN called better, {r} seeds per arm"] = round(separation(worse, better, r), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the run's project folder (default .)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    table = seed_table(args.root)
    counts = table.groupby("experiment").size()
    if len(counts) < 2 or counts.min() < 4:
        raise SystemExit(f"{args.root}: needs both arms with >= 4 replicates, found {counts.to_dict()}")
    result = separation_table(table)
    cpu = cpu_info()
    note = (f"{counts.min()} seeds per arm, run on {cpu['cpu']} ({cpu['cpu_id']}); every choice of R seeds "
            f"per arm out of them, exact one-sided Mann–Whitney p <= {ALPHA}.")
    print(table.to_string(index=False), result.to_string(index=False), note, sep="\n\n")
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "seed_sweep.csv", index=False)
    (args.out / "seed_sweep.md").write_text(result.to_markdown(index=False) + "\n\n" + note + "\n")


if __name__ == "__main__":
    main()
