"""Calibration of medgan's 95% intervals: empirical coverage of a known true value.

    python benchmarks/bench_calibration.py [--quick] [--draws 200] [--truth 2000] [--out benchmarks/results]

Within-replicate intervals (FID, KID, precision, recall, coverage, relative FID), each computed
by the metric module's own interval function (the code path `medgan evaluate` runs):

  real held-out set  K patients with n_k slices each (K per scenario, n_k drawn once from 5..30);
                     a slice's features are x = u_patient + e, u ~ N(0, TAU2 I), e ~ N(0, SIGMA2 I)
                     in DIM = 64 dimensions (intra-patient correlation TAU2 / (TAU2 + SIGMA2) = 0.2);
  generated set      N_FAKE independent draws from N(GEN_SHIFT, GEN_SCALE^2 (TAU2 + SIGMA2) I):
                     a generator slightly off in location and spread (each image its own cluster).

The true value is the interval's declared estimand: the expectation of the statistic over fresh
draws of the same design (these K patients' slice counts, N_FAKE generated images), computed here
by Monte Carlo over `--truth` fresh draws (for relative FID: exp of the mean log ratio, the real set
split into halves by patient as evaluate does). Coverage = share of `--draws` independent draws
whose interval holds the true value (Monte Carlo error of the coverage ~ sqrt(0.95 * 0.05 / draws)).

Across-seed interval (Student t over R = 3 seed values, replicates.across_seed_interval): a seed's
metric is log-normal around the arm's median (coefficient of variation SEED_CV, as FID/KID move
between GAN seeds), and with probability p the seed "collapses" and its value is COLLAPSE_FACTOR
times larger. The estimand is the median over seeds of that mixture (a typical training run; its
true value by Monte Carlo over SEED_TRUTH draws); `coverage_of_mean` shows what the same
intervals give for the mean over seeds, which three seeds cannot bound once collapses occur.

Writes calibration.csv and calibration.md under --out and prints the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from medgan.evaluate import split_halves  # noqa: E402
from medgan import replicates  # noqa: E402
from medgan.metrics import common, fid, kid, prdc, relative  # noqa: E402

DIM = 64
TAU2, SIGMA2 = 0.2, 0.8           # patient random effect and slice noise variances
GEN_SHIFT, GEN_SCALE = 0.1, 1.05
N_FAKE = 100
PRDC_K = 5
SLICES = (5, 30)                  # slices per patient, drawn once per scenario
SETTINGS = {"bootstrap": 1}       # intervals on (the jackknife does not use the replicate count)
SEED_CV, COLLAPSE_FACTOR, SEEDS, SEED_TRUTH = 0.15, 2.0, 3, 2_000_000
WITHIN = ["fid", "kid", "prdc_precision", "prdc_recall", "prdc_coverage", "relative_fid"]


def design(patients: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(SLICES[0], SLICES[1] + 1, patients)


def draw(sizes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """(real features, real patient ids, generated features, cluster labels of both)."""
    patient = np.repeat(np.arange(len(sizes)), sizes)
    effect = rng.normal(0, np.sqrt(TAU2), (len(sizes), DIM))
    real = effect[patient] + rng.normal(0, np.sqrt(SIGMA2), (len(patient), DIM))
    fake = GEN_SHIFT + GEN_SCALE * np.sqrt(TAU2 + SIGMA2) * rng.normal(size=(N_FAKE, DIM))
    labels = [np.char.add("patient:", patient.astype(str)), np.char.add("image:", np.arange(N_FAKE).astype(str))]
    return real, patient, fake, labels


def halves(real: np.ndarray, patient: np.ndarray, fake: np.ndarray, labels: list, seed: int):
    """Half A, half B (split by patient as evaluate.split_halves does) and their labels."""
    half, _ = split_halves([str(p) for p in patient], seed)
    a, b = half == 0, half == 1
    return real[a], real[b], [labels[0][a], labels[0][b], labels[1]]


def point_values(real, patient, fake, labels, seed: int) -> dict:
    """Every statistic on the whole sets, by the functions the intervals leave rows out of."""
    rows = (np.arange(len(real)), np.arange(len(fake)))
    distances = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    found = dict(zip(prdc.PARTS, prdc.prdc_of_distances(*distances, PRDC_K)))
    real_a, real_b, _ = halves(real, patient, fake, labels, seed)
    num, den = relative.fid_pair(real_a, real_b, fake)(np.arange(len(real_a)), np.arange(len(real_b)), rows[1])
    return {"fid": fid.frechet_exact(real, fake), "kid": kid.mmd2_of_rows(kid.kernels(real, fake), *rows),
            "prdc_precision": found["precision"], "prdc_recall": found["recall"],
            "prdc_coverage": found["coverage"], "relative_fid": np.log(num / den)}


def intervals_of(real, patient, fake, labels, seed: int) -> dict:
    """The 95% interval of every statistic, each by its metric module's own function."""
    out = {"fid": fid.fid_interval(real, fake, labels, SETTINGS, seed),
           "kid": kid.kid_interval(real, fake, labels, SETTINGS, seed)}
    out.update(zip(prdc.NAMES, prdc.prdc_intervals(real, fake, PRDC_K, labels, SETTINGS, seed)))
    real_a, real_b, three = halves(real, patient, fake, labels, seed)
    out["relative_fid"] = relative.ratio_interval(relative.fid_pair(real_a, real_b, fake), three,
                                                  "relative_fid", SETTINGS, seed)
    return out


def truth(sizes: np.ndarray, n: int, seed: int) -> tuple[dict, dict]:
    """The estimand: mean of each statistic over n fresh draws (relative FID: exp mean log),
    and the statistic's standard deviation over those draws (relative FID: of the log)."""
    rng = np.random.default_rng(seed)
    values = pd.DataFrame([point_values(*draw(sizes, rng), seed=i) for i in range(n)])
    means = values.mean()
    means["relative_fid"] = float(np.exp(means["relative_fid"]))
    return means.to_dict(), values.std().to_dict()


def within_coverage(patients: int, draws: int, truth_draws: int, seed: int) -> list[dict]:
    sizes = design(patients, np.random.default_rng(1000 + patients))
    true, spread = truth(sizes, truth_draws, seed + 1)
    rng = np.random.default_rng(seed + 2)
    hits = {name: [] for name in WITHIN}
    widths = {name: [] for name in WITHIN}
    missing = {name: 0 for name in WITHIN}
    for i in range(draws):
        found = intervals_of(*draw(sizes, rng), seed=i)
        for name in WITHIN:
            entry = found[name]
            if "ci_low" not in entry:
                missing[name] += 1
                continue
            hits[name].append(entry["ci_low"] <= true[name] <= entry["ci_high"])
            widths[name].append(entry["ci_high"] - entry["ci_low"])
    return [{"interval": name, "scenario": f"{patients} patients ({int(sizes.sum())} slices, "
             f"{sizes.min()}-{sizes.max()} each) vs {N_FAKE} generated", "patients": patients,
             "draws": len(hits[name]), "no_interval": missing[name], "true_value": round(float(true[name]), 5),
             "true_sd": round(float(spread[name]), 5),
             "coverage": round(float(np.mean(hits[name])), 3) if hits[name] else float("nan"),
             "mean_width": round(float(np.mean(widths[name])), 5) if widths[name] else float("nan")}
            for name in WITHIN]


def too_few_patients_message() -> str:
    real, _, fake, labels = draw(np.array([20, 20, 20, 20]), np.random.default_rng(0))
    return fid.fid_interval(real, fake, labels, SETTINGS, 0)["ci_missing"]


def across_seed_coverage(collapse: float, draws: int, seed: int) -> dict:
    """Coverage of the Student t interval over SEEDS seed values of the median over seeds (and,
    for comparison, of the mean)."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log(1 + SEED_CV ** 2))

    def seeds(shape):
        return np.exp(rng.normal(0, sigma, shape)) * np.where(rng.random(shape) < collapse, COLLAPSE_FACTOR, 1.0)

    values = seeds((draws, SEEDS))
    population = seeds(SEED_TRUTH)
    median, mean = float(np.median(population)), np.exp(sigma ** 2 / 2) * (1 + collapse * (COLLAPSE_FACTOR - 1))
    found = [replicates.across_seed_interval(list(v), "fid") for v in values]
    covers = lambda true: float(np.mean([f["ci_low"] <= true <= f["ci_high"] for f in found]))  # noqa: E731
    return {"interval": "across seeds (Student t, R = 3)",
            "scenario": f"seed CV {SEED_CV:.0%}, collapse (x{COLLAPSE_FACTOR:g}) probability {collapse:g}",
            "patients": None, "draws": draws, "no_interval": 0, "true_value": round(median, 5),
            "true_sd": round(float(population.std()), 5), "coverage": round(covers(median), 3),
            "mean_width": round(float(np.mean([f["ci_high"] - f["ci_low"] for f in found])), 5),
            "coverage_of_mean": round(covers(mean), 3)}


def compare_alternatives(patients: int = 6, draws: int = 40, replicates: int = 60) -> pd.DataFrame:
    """Why the jackknife: the standard error of FID that each resampling scheme estimates
    (mean over draws) against FID's true spread, on one design. Only the real side (patients)
    is resampled here; the generated side is the same in every scheme."""
    sizes = design(patients, np.random.default_rng(1000 + patients))
    _, spread = truth(sizes, 400, seed=3)
    rng = np.random.default_rng(4)
    found = {"cluster bootstrap (patients with replacement)": [], "half-sampling (K/2 patients, x b/(K-b))": [],
             "jackknife, unweighted": [], "jackknife, weighted for unequal patients (medgan)": []}
    for i in range(draws):
        real, patient, fake, labels = draw(sizes, rng)
        fid_of = lambda rows: fid.frechet_exact(real[rows], fake)  # noqa: E731
        boot = [fid_of(np.concatenate([np.flatnonzero(patient == p) for p in rng.integers(0, patients, patients)]))
                for _ in range(replicates)]
        half = [fid_of(np.flatnonzero(np.isin(patient, rng.permutation(patients)[:patients // 2])))
                for _ in range(replicates)]
        leave = np.array([fid_of(np.flatnonzero(patient != p)) for p in range(patients)])
        found["cluster bootstrap (patients with replacement)"].append(np.std(boot, ddof=1))
        b = patients // 2
        found["half-sampling (K/2 patients, x b/(K-b))"].append(np.std(half, ddof=1) * np.sqrt(b / (patients - b)))
        found["jackknife, unweighted"].append(np.sqrt((patients - 1) / patients * ((leave - leave.mean()) ** 2).sum()))
        weighted = common._jackknife_variance(np.array([fid_of(np.arange(len(real)))]), leave[:, None], sizes,
                                              len(real))
        found["jackknife, weighted for unequal patients (medgan)"].append(float(np.sqrt(weighted[0])))
    return pd.DataFrame([{"scheme": k, "estimated_se": round(float(np.nanmean(v)), 3),
                          "true_sd": round(float(spread["fid"]), 3)} for k, v in found.items()])


def run(quick: bool, draws: int, truth_draws: int) -> pd.DataFrame:
    scenarios = [6] if quick else [5, 10, 20]
    rows = []
    for patients in scenarios:
        start = time.time()
        rows += within_coverage(patients, draws, truth_draws, seed=patients)
        print(f"{patients} patients: {time.time() - start:.0f} s", file=sys.stderr)
    for collapse in (0.0, 0.05, 0.1, 0.2):
        rows.append(across_seed_coverage(collapse, 20000 if not quick else 4000, seed=7))
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one scenario (6 patients), fewer truth draws")
    parser.add_argument("--draws", type=int, default=200, help="independent draws per scenario (default 200)")
    parser.add_argument("--truth", type=int, default=None,
                        help="fresh draws for the Monte Carlo true value (default 1000; --quick 600)")
    parser.add_argument("--compare", action="store_true",
                        help="only compare resampling schemes' standard error of FID with its true spread")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    truth_draws = args.truth or (600 if args.quick else 1000)
    if args.compare:
        table = compare_alternatives()
        print(table.to_string(index=False))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "calibration_schemes.md").write_text(table.to_markdown(index=False) + "\n")
        return
    start = time.time()
    table = run(args.quick, args.draws, truth_draws)
    seconds = time.time() - start
    load = os.getloadavg()[0]
    note = (f"{'quick' if args.quick else 'full'} run: {args.draws} draws per scenario, {truth_draws} truth draws, "
            f"{seconds:.0f} s on 1 core (load average {load:.2f} at the end). "
            f"Too few patients: \"{too_few_patients_message()}\".")
    print(table.to_string(index=False))
    print(note)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    table.to_csv(args.out / f"calibration{suffix}.csv", index=False)
    (args.out / f"calibration{suffix}.md").write_text(table.to_markdown(index=False) + "\n\n" + note + "\n")


if __name__ == "__main__":
    main()
