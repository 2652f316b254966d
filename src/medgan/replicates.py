"""aggregate: an experiment's entry over its replicates (training seeds).

A GAN run is one draw of a chaotic process: another seed, CPU or thread count redraws it, and
the seed-to-seed spread dwarfs the evaluation's own resampling noise (README "Seeds as
replicates"). `medgan aggregate EXPERIMENT` reads every replicate's metrics file
(results/metrics/replicates/EXPERIMENT/rI.json) and writes the experiment's entry
(results/metrics/experiments/EXPERIMENT.json), the one file summaries, the report and
`dvc metrics diff` read. Per metric entry: every seed's value with its within-replicate
interval, the median over seeds (the typical training run; the mean beside it), and an
across-seed 95% interval whose method and estimand are named.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from . import config, paths
from .atomic import read_json
from .metrics.common import RANGES, clip_to_range
from .results import write_metrics

LEVEL = 0.95
MIN_SEEDS = 3  # below this a t interval over seeds is too wide to say anything (t(0.975, 1) = 12.7)
INTERVAL_METHOD = ("Student t over the seed values: mean ± t(0.975, R-1)·s/√R, 95%, for the median seed "
                   "(a typical training run), clipped to the metric's range; R >= 3 seeds")
TOO_FEW = "too few seeds for an interval ({n} < {minimum})"
ONE_SEED = ("one seed: the evaluation's own interval of that one training draw (it says nothing about "
            "seed-to-seed spread)")

def across_seed_interval(values: list[float], name: str) -> dict:
    """`ci_low`, `ci_high` and `interval` (the method) from per-seed values, clipped into the
    metric's range (metrics.common.RANGES; KID's too: MMD² >= 0); with fewer than MIN_SEEDS
    seeds, only `interval` saying why there is none.

    Its estimand is the median over seeds — what a typical training run gives — not the mean:
    a rare collapsed seed makes the seed distribution a skewed mixture whose mean three seeds
    cannot bound (when none of them collapsed, nothing in the data shows how far a collapse
    moves the mean), while the median moves little. benchmarks/bench_calibration.py measures
    it: the t interval covers the median 0.95-0.96 under normal, skewed and rare-collapse
    spreads, the mean only 0.84 when 1 seed in 5 collapses (README); the guard's per-seed
    collapse count says how often it happened."""
    n = len(values)
    if n < MIN_SEEDS:
        return {"interval": TOO_FEW.format(n=n, minimum=MIN_SEEDS)}
    data = np.asarray(values, dtype=float)
    if not np.isfinite(data).all():
        return {"interval": "none: a seed's value is not finite"}
    mean, sem = float(data.mean()), float(stats.sem(data))
    low, high = (mean, mean) if sem == 0 else stats.t.interval(LEVEL, n - 1, loc=mean, scale=sem)
    if name in RANGES:
        low, high = clip_to_range(name, low, high)
    return {"ci_low": float(low), "ci_high": float(high), "interval": INTERVAL_METHOD}


def seed_entry(replicate: int, seed: int, entry: dict) -> dict:
    out = {"replicate": replicate, "seed": seed}
    if "value" not in entry:
        return {**out, "skipped": entry.get("skipped", "no value")}
    out["value"] = entry["value"]
    for key in ("ci_low", "ci_high", "exact_copies"):
        if entry.get(key) is not None:
            out[key] = entry[key]
    return out


def aggregate_entry(name: str, per_seed: list[tuple[int, int, dict]]) -> dict:
    """One metric over the replicates: (replicate, seed, that replicate's entry) each."""
    seeds = [seed_entry(r, s, e) for r, s, e in per_seed]
    first = per_seed[0][2]
    sizes = {k: first[k] for k in ("n_real", "n_fake", "n_patients", "features", "inception_weights") if k in first}
    values = [s["value"] for s in seeds if "value" in s]
    if not values:
        return {"skipped": first.get("skipped", "no value in any seed"), **sizes, "n_seeds": len(seeds), "seeds": seeds}
    out = {"value": float(np.median(values)), "mean": float(np.mean(values)), **sizes, "n_seeds": len(values),
           "seeds": seeds}
    if len(values) < len(seeds):
        out["seeds_without_value"] = len(seeds) - len(values)
    if any("exact_copies" in s for s in seeds):  # memorisation: generated images equal to a training image
        out["exact_copies"] = int(sum(s.get("exact_copies", 0) for s in seeds))
    if len(seeds) == 1 and "ci_low" in seeds[0]:
        out.update(ci_low=seeds[0]["ci_low"], ci_high=seeds[0]["ci_high"], interval=ONE_SEED)
    else:
        out.update(across_seed_interval(values, name))
    return out


def guard_counts(trainings: list[dict]) -> dict[str, int]:
    """Per guard finding (e.g. mode_collapse): in how many seeds it fired at least once."""
    counts: dict[str, int] = {}
    for training in trainings:
        for flag in sorted({g["flag"] for g in training.get("guard", [])}):
            counts[flag] = counts.get(flag, 0) + 1
    return counts


def replicate_results(params: dict, name: str) -> list[dict]:
    count = config.replicates_of(params, name)
    return [read_json(paths.path(paths.REPLICATE_METRICS, experiment=name, replicate=r),
                      f"run `medgan evaluate {name} --replicate {r}`") for r in range(count)]


def aggregate(params: dict, name: str) -> dict:
    """Write the experiment's entry over its replicates; return it."""
    exp = config.experiment(params, name)
    results = replicate_results(params, name)
    seeds = [config.replicate_seed(params["seed"], r) for r in range(len(results))]
    names = list(dict.fromkeys(n for result in results for n in result["metrics"]))
    metrics = {n: aggregate_entry(n, [(r, s, result["metrics"].get(n, {"skipped": "not computed for this seed"}))
                                      for r, (s, result) in enumerate(zip(seeds, results))]) for n in names}
    trainings = [{"replicate": r, "seed": s, **result.get("training", {})}
                 for r, (s, result) in enumerate(zip(seeds, results))]
    first = results[0]
    out = {"experiment": name, **exp, "seed": params["seed"], "replicates": len(results), "seeds": seeds,
           "real_split": first["real_split"], "n_real": first["n_real"], "n_fake": first["n_fake"],
           "n_train": first.get("n_train"), "across_seed_interval": INTERVAL_METHOD,
           "training": {"guard_seeds": guard_counts(trainings), "replicates": trainings},
           "metrics": metrics}
    return write_metrics(paths.path(paths.METRICS, experiment=name), out, params, "aggregate", name,
                         feature_weights={})
