"""What `medgan evaluate` costs, component by component, as n grows.

    python benchmarks/bench_evaluate.py [--sizes 64 256 1024] [--threads 2] [--bootstrap 100]
                                        [--no-reference] [--out benchmarks/results]

Phantom brain-MRI slices (64x64, medgan.phantoms.brain_slice): n held-out real "yes" slices,
n training ones, n "generated" ones (other phantom slices with added noise), plus n/2 "no"
slices per split for the utility classifier. For each n = n_real = n_gen = n_train it times:
each feature extractor on each set the metrics ask for (Inception, radiomics), each metric of evaluate's default
list without its bootstrap (`point`) and with it (`bootstrap` = the difference), the utility
classifier, the total (features + metrics with CIs, what one evaluate job computes when no
feature is cached yet) and the total once the real sets' features are cached (what every other
experiment and seed replicate of the dataset pays: generated features + metrics), the
process's peak memory (getrusage maxrss, self and radiomics workers), and the growth exponent
log(t2/t1)/log(n2/n1) between consecutive sizes.

The reference it is read against, measured in the same run on the same threads: the rate of a
2048x2048 fp32 matmul (GFLOP/s), hence Inception's limit (its FLOPs per image counted by
torch's FlopCounterMode, ~11.4 GFLOP at 299x299) and its share of it. Unless --no-reference,
the code this benchmark replaced is timed beside the new one (`before`): pytorch-fid's eager
InceptionV3, scipy cdist nearest neighbours, the prdc package per bootstrap replicate and KID's
kernels per subset (the last two on 10 replicates/subsets, scaled).

Writes bench_evaluate_cpu.{json,md} (or _cuda) under --out; the machine's load (uptime) is
in both: on a shared machine read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

METRICS = ["fid", "kid", "frd", "relative", "prdc", "diversity", "memorisation", "utility"]
SCALED_REPLICATES = 10


def phantom_files(folder: Path, n: int, seed: int, tumour: bool, noise: float = 0.0) -> list[str]:
    from medgan.phantoms import brain_slice

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        image = brain_slice(64, 64, rng, tumour).astype(np.float32)
        if noise:
            image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255)
        files.append(str(folder / f"{i:05d}.png"))
        Image.fromarray(image.astype(np.uint8)).save(files[-1])
    return files


def evaluate_settings(bootstrap: int, workers: int) -> dict:
    """params.yaml's evaluate section (the demo's settings), with this run's bootstrap/workers."""
    import yaml

    settings = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["evaluate"]
    return {**settings, "bootstrap": bootstrap, "radiomics_workers": workers, "inception": "required",
            "segmentation": None}


def inputs(folder: Path, n: int, settings: dict):
    """medgan's evaluate Inputs on phantom sets of n images (real, generated, train: class 'yes')."""
    import pandas as pd

    from medgan.metrics.common import ImageSet, Inputs
    from medgan.metrics.features import FeatureStore

    sets = {"test_yes": phantom_files(folder / "test_yes", n, 1, True),
            "train_yes": phantom_files(folder / "train_yes", n, 2, True),
            "test_no": phantom_files(folder / "test_no", max(2, n // 2), 3, False),
            "train_no": phantom_files(folder / "train_no", max(2, n // 2), 4, False),
            "fake": phantom_files(folder / "fake", n, 5, True, noise=12.0)}
    manifest = pd.DataFrame([{"file": f, "split": key.split("_")[0], "class": key.split("_")[1]}
                             for key in ("test_yes", "train_yes", "test_no", "train_no") for f in sets[key]])
    samples = pd.DataFrame({"file": sets["fake"], "kind": "fake", "class": "yes"})
    real = ImageSet(sets["test_yes"])
    inp = Inputs(real=real, fake=ImageSet(sets["fake"]), train=ImageSet(sets["train_yes"]), settings=settings,
                 seed=0, image_size=(64, 64), dataset={"name": "bench", "classes": ["no", "yes"]},
                 manifest=manifest, samples=samples)
    inp.features = FeatureStore(inp)
    half = np.arange(n) % 2
    inp.halves = (real.subset(np.flatnonzero(half == 0)), real.subset(np.flatnonzero(half == 1)), "by image")
    return inp


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def matmul_gflops(repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2 * 2048 ** 3 / best / 1e9


def inception_gflop_per_image(model) -> float:
    """FLOPs of one 64x64 image through pytorch-fid's InceptionV3 (resize to 299 included)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
    return counter.get_total_flops() / 1e9


class FeatureTimer:
    """Times each feature extraction when a metric first asks for it, as in an evaluate job: only
    the sets the metrics use are extracted (e.g. no radiomics of the training set while Inception
    features exist: memorisation and PRDC then use Inception's)."""

    def __init__(self, inp):
        self.names = {tuple(inp.real.paths): "real", tuple(inp.fake.paths): "fake", tuple(inp.train.paths): "train"}
        self.seconds: dict[str, float] = {}
        self.images: dict[str, int] = {}
        self.spent = 0.0
        compute = inp.features._compute

        def timed_compute(extractor, paths):
            seconds, out = timed(lambda: compute(extractor, paths))
            key = f"{extractor} {self.names.get(tuple(paths), 'other')}"
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds
            self.images[extractor] = self.images.get(extractor, 0) + len(paths)
            self.spent += seconds
            return out

        inp.features._compute = timed_compute


def metric_times(inp, bootstrap: int, timer: FeatureTimer) -> dict:
    """(point seconds, with-bootstrap seconds) of each metric, the features it asked for first
    excluded (`timer` holds them)."""
    from medgan.metrics import REGISTRY
    from medgan.metrics.common import MetricSkipped

    out = {}
    for metric in METRICS:
        spans = []
        for replicates in (0, bootstrap):
            inp.settings["bootstrap"] = replicates
            before = timer.spent
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    spans.append(timed(lambda: REGISTRY[metric].compute(inp))[0] - (timer.spent - before))
            except MetricSkipped as why:
                spans.append(float("nan"))
                print(f"  {metric} skipped: {why}")
        out[metric] = tuple(spans)
    inp.settings["bootstrap"] = bootstrap
    return out


def reference_times(inp, weights, bootstrap: int, kid_subsets: int) -> dict:
    """Seconds the replaced code takes on the same data: (before, after) pairs."""
    import torch
    from prdc import compute_prdc
    from scipy.spatial.distance import cdist

    from medgan.metrics import features, kid, memorisation, prdc
    from medgan.metrics.common import load_gray
    from medgan.metrics.inception import model

    out = {}
    paths = inp.real.paths[:64]
    eager = model(weights)

    def eager_features():
        with torch.no_grad():
            for start in range(0, len(paths), 50):
                x = torch.from_numpy(load_gray(paths[start:start + 50], inp.image_size))[:, None].repeat(1, 3, 1, 1)
                eager(x)

    before = timed(eager_features)[0]
    after = timed(lambda: features.inception_features(features.inception_model(weights), paths, inp.image_size))[0]
    out["inception (64 images)"] = (before, after)
    fake, train = load_gray(inp.fake.paths, inp.image_size), load_gray(inp.train.paths, inp.image_size)
    before = timed(lambda: cdist(fake.reshape(len(fake), -1), train.reshape(len(train), -1)).min(1))[0]
    out["memorisation nearest (pixels)"] = (before, timed(lambda: memorisation.nearest(fake, train))[0])
    real_f, fake_f = inp.features.get("inception", inp.real), inp.features.get("inception", inp.fake)
    rng = np.random.default_rng(0)
    draws = [(np.unique(rng.integers(0, len(real_f), len(real_f))),
              np.unique(rng.integers(0, len(fake_f), len(fake_f)))) for _ in range(SCALED_REPLICATES)]
    draws = [(i, j) for i, j in draws if min(len(i), len(j)) >= 7]  # as the metric: k + 2 distinct rows

    def prdc_before():
        with contextlib.redirect_stdout(io.StringIO()):
            for i, j in draws:
                compute_prdc(real_features=real_f[i], fake_features=fake_f[j], nearest_k=5)

    def prdc_after():
        d = prdc.distances(real_f, fake_f)
        for i, j in draws:
            prdc.values_from_distances(d[0][np.ix_(i, i)], d[1][np.ix_(j, j)], d[2][np.ix_(i, j)], 5)

    scale = bootstrap / SCALED_REPLICATES
    out[f"prdc bootstrap ({bootstrap} replicates)"] = (timed(prdc_before)[0] * scale, timed(prdc_after)[0] * scale)
    size = min(inp.settings["kid_subset_size"], len(real_f), len(fake_f))

    def kid_before():
        d = real_f.shape[1]
        draw = np.random.default_rng(0)
        for _ in range(SCALED_REPLICATES):
            x = real_f[draw.choice(len(real_f), size, replace=False)]
            y = fake_f[draw.choice(len(fake_f), size, replace=False)]
            ((x @ x.T / d + 1) ** 3).sum(), ((y @ y.T / d + 1) ** 3).sum(), ((x @ y.T / d + 1) ** 3).sum()

    before = timed(kid_before)[0] * kid_subsets / SCALED_REPLICATES
    after = timed(lambda: kid.kid_subsets(real_f, fake_f, size, kid_subsets, 0))[0]
    out[f"kid subsets ({kid_subsets})"] = (before, after)
    return out


def peak_memory_mb() -> tuple[float, float]:
    """Peak resident memory so far (MB) of this process and of its finished children (radiomics workers)."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def run_size(n: int, args, weights, reference: dict) -> dict:
    from medgan.metrics import features

    settings = evaluate_settings(args.bootstrap, args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        inp = inputs(Path(tmp), n, settings)
        make = time.perf_counter() - start
        features.inception_model(weights)  # loaded (and traced) once per process, outside the timings
        timer = FeatureTimer(inp)
        metrics = metric_times(inp, args.bootstrap, timer)
        feats = dict(sorted(timer.seconds.items()))
        compared = reference_times(inp, weights, args.bootstrap, settings["kid_subsets"]) if args.reference else {}
    inception_seconds = sum(v for k, v in feats.items() if k.startswith("inception"))
    rate = timer.images["inception"] / inception_seconds
    metric_seconds = sum(np.nan_to_num(m[1]) for m in metrics.values())
    total = sum(feats.values()) + metric_seconds
    # an experiment's evaluate once its dataset's real sets are in the feature cache (the
    # baseline or the first experiment fills it): generated features + the metrics
    warm = sum(v for k, v in feats.items() if k.endswith(" fake")) + metric_seconds
    matmul = matmul_gflops()  # again at this size: on a shared machine the load moves during a run
    limit = matmul / reference["inception_gflop_per_image"]
    rss, children = peak_memory_mb()
    return {"n": n, "phantoms_s": make, "features_s": feats, "metrics_s": metrics, "total_s": total,
            "total_real_cached_s": warm,
            "inception_images_per_s": rate,
            "inception_share_of_limit": rate / limit, "matmul_gflops_after": matmul,
            "peak_rss_mb": rss, "peak_rss_workers_mb": children, "before_after_s": compared}


def exponents(rows: list[dict]) -> list[dict]:
    """Growth exponent of each component between consecutive sizes: t ~ n^e."""
    out = []
    for a, b in zip(rows, rows[1:]):
        def e(ta, tb):
            return math.log(tb / ta) / math.log(b["n"] / a["n"]) if ta > 0 and tb > 0 else float("nan")

        parts = {k: e(a["features_s"][k], b["features_s"][k]) for k in a["features_s"]}
        parts.update({k: e(a["metrics_s"][k][1], b["metrics_s"][k][1]) for k in a["metrics_s"]})
        out.append({"from": a["n"], "to": b["n"], "total": e(a["total_s"], b["total_s"]), "parts": parts})
    return out


def markdown(result: dict) -> str:
    ref, rows = result["reference"], result["sizes"]
    lines = [f"# bench_evaluate ({result['device']}, {result['threads']} threads, bootstrap {result['bootstrap']})", "",
             f"Machine: {result['cpu']}; load during the run: {result['load_before']} → {result['load_after']} "
             "(uptime). On a shared machine read the ratios.", "",
             f"Reference: 2048² fp32 matmul {ref['matmul_gflops']:.1f} GFLOP/s; Inception "
             f"{ref['inception_gflop_per_image']:.2f} GFLOP/image (FlopCounterMode) → limit "
             f"{ref['inception_limit_images_per_s']:.2f} images/s; Inception path: {ref['inception_kind']}.", "",
             "| component (seconds) | " + " | ".join(f"n = {r['n']}" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for key in rows[0]["features_s"]:
        lines.append(f"| features: {key} | " + " | ".join(f"{r['features_s'][key]:.1f}" for r in rows) + " |")
    for key in rows[0]["metrics_s"]:
        lines.append(f"| {key}: point | " + " | ".join(f"{r['metrics_s'][key][0]:.2f}" for r in rows) + " |")
        lines.append(f"| {key}: bootstrap | " + " | ".join(
            f"{r['metrics_s'][key][1] - r['metrics_s'][key][0]:.2f}" for r in rows) + " |")
    lines.append("| **total (features + metrics with CIs)** | "
                 + " | ".join(f"**{r['total_s']:.0f}**" for r in rows) + " |")
    lines.append("| total with the real sets' features cached | " + " | ".join(
        f"{r['total_real_cached_s']:.0f}" for r in rows) + " |")
    lines.append("| Inception images/s | " + " | ".join(f"{r['inception_images_per_s']:.2f}" for r in rows) + " |")
    lines.append("| 2048² matmul GFLOP/s, measured after this size | " + " | ".join(
        f"{r.get('matmul_gflops_after', float('nan')):.1f}" for r in rows) + " |")
    lines.append("| Inception share of the matmul limit | " + " | ".join(
        f"{100 * r['inception_share_of_limit']:.0f}%" for r in rows) + " |")
    lines.append("| peak RSS MB (process / radiomics workers) | " + " | ".join(
        f"{r['peak_rss_mb']:.0f} / {r['peak_rss_workers_mb']:.0f}" for r in rows) + " |")
    if result["growth"]:
        lines += ["", "Growth exponent of the total (t ~ n^e): " + ", ".join(
            f"{g['from']}→{g['to']}: {g['total']:.2f}" for g in result["growth"])]
    if rows[0]["before_after_s"]:
        lines += ["", "Replaced code, same data and run (seconds, before → after, speed-up):", "",
                  "| n | component | before | after | × |", "|---:|---|---:|---:|---:|"]
        for r in rows:
            for key, (before, after) in r["before_after_s"].items():
                lines.append(f"| {r['n']} | {key} | {before:.2f} | {after:.2f} | {before / after:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024],
                        help="n_real = n_gen = n_train values (default 64 256 1024)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads and radiomics workers (default 2)")
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap replicates (default 100, as params.yaml)")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip timing the replaced implementations beside the new ones")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="folder for the tables")
    args = parser.parse_args(argv)

    import torch

    from medgan.metrics import features, inception

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    weights = inception.resolve("required", None)
    model = features.inception_model(weights)
    gflop = inception_gflop_per_image(inception.model(weights))
    matmul = matmul_gflops()
    reference = {"matmul_gflops": matmul, "inception_gflop_per_image": gflop,
                 "inception_limit_images_per_s": matmul / gflop, "inception_kind": model.kind}
    print(f"matmul {matmul:.1f} GFLOP/s; Inception {gflop:.2f} GFLOP/image → limit {matmul / gflop:.2f} images/s")
    from medgan.provenance import cpu_info

    device = features.device().type
    result = {"device": device, "threads": args.threads, "bootstrap": args.bootstrap, "cpu": cpu_info()["cpu"],
              "load_before": [round(x, 2) for x in load_before], "reference": reference, "sizes": [], "growth": []}
    for n in sorted(args.sizes):
        result["sizes"].append(run_size(n, args, weights, reference))
        r = result["sizes"][-1]
        print(f"n={n}: total {r['total_s']:.1f} s ({r['total_real_cached_s']:.1f} s with the real sets cached), "
              f"Inception {r['inception_images_per_s']:.2f} images/s "
              f"({100 * r['inception_share_of_limit']:.0f}% of the limit), peak {r['peak_rss_mb']:.0f} MB")
        result["load_after"] = [round(x, 2) for x in os.getloadavg()]
        result["growth"] = exponents(result["sizes"])
        write_tables(result, Path(args.out))  # after every size: a long run interrupted keeps what it measured
    print(markdown(result))
    return result


def write_tables(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_evaluate_{result['device']}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (out / f"bench_evaluate_{result['device']}.md").write_text(markdown(result))


if __name__ == "__main__":
    main()
