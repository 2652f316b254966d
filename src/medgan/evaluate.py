"""evaluate: compare an experiment's samples with held-out real images through the metric
registry; baseline: the same metrics between two disjoint halves of the real held-out images
(split by patient), the floor every figure is read against (summary.py tabulates both)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import config, paths, provenance
from .atomic import read_json
from .metrics import REGISTRY
from .metrics.common import ImageSet, Inputs, MetricSkipped, load_gray, skipped
from .metrics.features import FeatureStore
from .metrics.memorisation import CLOSEST_SHOWN, nearest, save_closest_pairs
from .prepare import DataError, load_manifest
from .results import write_metrics

MIN_BASELINE = 4  # held-out images needed for two halves
PREPROCESSING_KEYS = ("kind", "layout", "raw", "image_size", "window", "min_organ_pixels",
                      "min_lesion_pixels", "split")


def manifest_with_files(dataset: str) -> pd.DataFrame:
    slices = paths.path(paths.SLICES, dataset=dataset)
    manifest = load_manifest(slices)
    return manifest.assign(file=[str(slices / p) for p in manifest["path"]])


def classes_named(params: dict, dataset: str, cls: str) -> list[str]:
    """`all` (a pooled or class-conditional experiment) stands for every class of the dataset."""
    return list(params["datasets"][dataset]["classes"]) if cls == "all" else [cls]


def real_rows(params: dict, dataset: str, manifest: pd.DataFrame, split: str, cls: str) -> pd.DataFrame:
    """Manifest rows of a real set; `all` = the classes one after another (the order of real_set)."""
    return pd.concat([manifest[(manifest["split"] == split) & (manifest["class"] == c)]
                      for c in classes_named(params, dataset, cls)])


def real_set(params: dict, dataset: str, manifest: pd.DataFrame, split: str, cls: str) -> ImageSet:
    """The real images of `cls` in `split`, cached by how they were made; `all` is the union of
    the classes' sets, so a pooled experiment reuses every class's cached features."""
    if cls == "all":
        rows = real_rows(params, dataset, manifest, split, cls)
        parts = [real_set(params, dataset, manifest, split, c) for c in classes_named(params, dataset, cls)
                 if c in set(rows["class"])]
        if not parts:
            raise config.ConfigError(f"{paths.path(paths.SLICES, dataset=dataset)}: no real images in split '{split}'")
        return ImageSet.union(parts)
    rows = real_rows(params, dataset, manifest, split, cls)
    if rows.empty:
        raise config.ConfigError(f"{paths.path(paths.SLICES, dataset=dataset)}: no real '{cls}' images "
                                 f"in split '{split}'")
    settings = params["datasets"][dataset]
    # No experiment and no seed in the key: every experiment and seed replicate of this dataset
    # shares the set's features (the files' contents are hashed into the key too, so a split
    # that a seed changes is a different key anyway).
    key = {"dataset": dataset, "split": split, "class": cls,
           "preprocessing": {k: settings.get(k) for k in PREPROCESSING_KEYS}}
    return ImageSet(list(rows["file"]), cache_key=key)


def fake_set_key(name: str, replicate: int = 0) -> dict:
    """Cache key of a replicate's generated images (the files' contents are hashed too), so
    that the report's feature map reuses evaluate's features."""
    return {"experiment": name, "replicate": replicate, "kind": "fake"}


def baseline_halves(params: dict, rows: pd.DataFrame, full: ImageSet) -> tuple[ImageSet, ImageSet, str] | None:
    """The two halves the baseline compares (None below MIN_BASELINE images): evaluate uses the
    same ones for the relative distances."""
    if len(rows) < MIN_BASELINE:
        return None
    half, how = split_halves(list(rows["case"]), params["seed"])
    return full.subset(np.flatnonzero(half == 0)), full.subset(np.flatnonzero(half == 1)), how


def inside(folder: Path, relative: str) -> bool:
    """A path listed in an index file (samples.csv, manifest.csv) stays inside its folder: an
    absolute path or `..` would make a stage read (and show on the report) any file."""
    return (Path(folder) / relative).resolve().is_relative_to(Path(folder).resolve())


def samples_with_files(name: str, replicate: int = 0) -> pd.DataFrame:
    """samples.csv of a replicate (the samples contract), checked: columns present, every listed
    file there."""
    folder = paths.path(paths.SAMPLES, experiment=name, replicate=replicate)
    index_path = folder / "samples.csv"
    if not index_path.is_file():
        raise DataError(f"{index_path} not found — run `medgan sample {name}` first")
    try:
        index = pd.read_csv(index_path, dtype={"pair": str, "case": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{index_path}: not a readable CSV ({err}) — rerun `medgan sample {name}`") from None
    missing = [c for c in ("path", "class", "kind") if c not in index]
    outside = [] if missing else [p for p in index["path"] if isinstance(p, str) and not inside(folder, p)]
    absent = [] if missing else [p for p in index["path"] if not isinstance(p, str) or not (folder / p).is_file()]
    if missing or outside or absent:
        what = f"column(s) {missing} missing" if missing else \
            f"{len(outside)} listed path(s) outside {folder} (e.g. {outside[0]})" if outside else \
            f"{len(absent)} listed file(s) missing (e.g. {folder / str(absent[0])})"
        raise DataError(f"{index_path}: {what} — rerun `medgan sample {name}`")
    return index.assign(file=[str(folder / p) for p in index["path"]])


def inputs_for(params: dict, dataset: str, real: ImageSet, fake: ImageSet, train: ImageSet,
               manifest: pd.DataFrame, samples: pd.DataFrame | None, is_baseline: bool) -> Inputs:
    spec = params["datasets"][dataset]
    settings = {**params["evaluate"], "segmentation": params["synthesize"]["segmentation"]}
    inp = Inputs(real=real, fake=fake, train=train, settings=settings, seed=params["seed"],
                 image_size=tuple(spec["image_size"]), dataset={**spec, "name": dataset},
                 manifest=manifest, samples=samples, is_baseline=is_baseline)
    inp.features = FeatureStore(inp)
    return inp


def use_threads(params: dict) -> None:
    """torch's threads for this job: resources.evaluate.threads (what Snakemake gave the job),
    not torch's default of every core (two parallel jobs would then oversubscribe the CPU)."""
    import torch

    torch.set_num_threads(int(params["resources"]["evaluate"]["threads"]))


def inception_provenance(stores: list[FeatureStore]) -> dict:
    """write_metrics' extra: the Inception state dict the features came from, if any was used."""
    loaded = next((r for r in (s.loaded_record() for s in stores) if r is not None), None)
    return {} if loaded is None else {"inception_loaded": loaded}


def run_metrics(inp: Inputs) -> dict:
    """Every selected metric's entries; a metric that cannot run gives each of its entries
    `skipped` with the reason (never silently missing). inception: required raises."""
    results = {}
    for metric in inp.settings["metrics"]:
        module = REGISTRY[metric]
        try:
            results.update(module.compute(inp))
        except MetricSkipped as why:
            results.update({n: skipped(str(why), len(inp.real), len(inp.fake), inp.seed) for n in module.NAMES})
    return results


def write_closest_pairs(inp: Inputs, out: Path) -> None:
    """The generated images closest to a training image, beside that image (pixel RMSE)."""
    fake, train = load_gray(inp.fake.paths, inp.image_size), load_gray(inp.train.paths, inp.image_size)
    distance, match = nearest(fake, train)
    order = np.argsort(distance, kind="stable")[:CLOSEST_SHOWN]
    save_closest_pairs(out, fake, train, order, match)


def evaluate(params: dict, name: str, replicate: int = 0) -> dict:
    """Metrics of one replicate's samples (results/metrics/replicates/...). The evaluation's own
    randomness (bootstraps, subsets) uses params `seed` for every replicate: replicates differ by
    their training and sampling seed only. The synthetic set (medgan synthesize, made with
    replicate 0's model) feeds replicate 0's segmentation utility only."""
    use_threads(params)
    exp = config.experiment(params, name)
    config.check_replicate(params, name, replicate)
    where = {"experiment": name, "replicate": replicate}
    dataset, cls, split = exp["dataset"], exp["class"], params["evaluate"]["real_split"]
    manifest, samples = manifest_with_files(dataset), samples_with_files(name, replicate)
    fakes = samples[(samples["kind"] == "fake") & samples["class"].isin(classes_named(params, dataset, cls))]
    if fakes.empty:
        raise config.ConfigError(f"{paths.path(paths.SAMPLES, **where)}: no generated '{cls}' images")
    real = real_set(params, dataset, manifest, split, cls)
    inp = inputs_for(params, dataset, real, ImageSet(list(fakes["file"]), cache_key=fake_set_key(name, replicate)),
                     real_set(params, dataset, manifest, "train", cls), manifest, samples, is_baseline=False)
    inp.halves = baseline_halves(params, real_rows(params, dataset, manifest, split, cls), real)
    if replicate == 0 and (paths.path(paths.SYNTHETIC, experiment=name) / "manifest.csv").is_file():
        inp.synthetic = paths.path(paths.SYNTHETIC, experiment=name)
    results = {"experiment": name, **exp, "replicate": replicate, "seed": config.replicate_seed(params["seed"], replicate),
               "real_split": split, "n_real": len(inp.real), "n_fake": len(inp.fake), "n_train": len(inp.train),
               "training": training_signals(name, replicate), "metrics": run_metrics(inp)}
    settings = paths.path(paths.SAMPLES, **where) / "settings.json"
    if settings.exists():  # what the model was trained and sampled with (effective values)
        results["settings"] = read_json(settings, f"rerun `medgan sample {name} --replicate {replicate}`")
        trained_on = results["settings"].pop("train_case_hashes", None)
        check_held_out_unseen(name, dataset, trained_on, real_rows(params, dataset, manifest, split, cls))
    write_closest_pairs(inp, paths.path(paths.CLOSEST_PAIRS, **where))
    return write_metrics(paths.path(paths.REPLICATE_METRICS, **where), results, params, "evaluate", name,
                         replicate=replicate, training=provenance.of_samples(paths.path(paths.SAMPLES, **where)),
                         **inception_provenance([inp.features]))


def check_held_out_unseen(name: str, dataset: str, trained_on: list[str] | None, held_out: pd.DataFrame) -> None:
    """Refuse to score a model against held-out patients it was trained on: data/slices was
    prepared again with another split (other seed or ratios, new files) after training, and the
    stages were run by hand out of order (Snakemake and DVC retrain when the slices change)."""
    if trained_on is None:  # a model written before the training cases were recorded
        return
    trained_on = set(trained_on)
    seen = sorted(c for c in set(held_out["case"].astype(str)) if provenance.case_hashes([c])[0] in trained_on)
    if seen:
        raise DataError(f"{paths.path(paths.SLICES, dataset=dataset)}: {len(seen)} held-out patient(s) (e.g. "
                        f"{', '.join(seen[:3])}) were in the training split of {name}'s model — the slices were "
                        f"prepared again with another split since it was trained: retrain (`medgan train {name}`, "
                        f"then `medgan sample {name}`), or restore the slices it was trained on")


def training_signals(name: str, replicate: int = 0) -> dict:
    """What a replicate's training log says about the run: the guard's flags (steps where mode
    collapse was detected) and the last cross-sample spread (generated vs real, ~1 healthy, ~0
    collapsed). A model fetched alone (a DVC remote, a colleague) has no log: the samples are still
    evaluated and `record` says that the run's guard cannot be read back."""
    path = paths.path(paths.TRAIN_LOG, experiment=name, replicate=replicate)
    try:
        log = pd.read_csv(path, keep_default_na=False)
    except FileNotFoundError:
        return {"record": f"none: {path} not found (a model without its training log), so the training "
                          "guard's findings are unknown", "guard": [], "spread_last": None}
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        return {"record": f"unreadable: {path} ({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}), "
                          "so the training guard's findings are unknown", "guard": [], "spread_last": None}
    flagged = log[log["guard"] != ""] if "guard" in log else log.iloc[:0]
    spread = pd.to_numeric(log["spread"], errors="coerce") if "spread" in log else pd.Series(dtype=float)
    steps = pd.to_numeric(flagged["step"], errors="coerce") if "step" in flagged else pd.Series(dtype=float)
    return {"guard": [{"step": int(step) if pd.notna(step) else None, "flag": str(flag)}
                      for step, flag in zip(steps, flagged.get("guard", []))],
            "spread_last": None if spread.dropna().empty else float(spread.dropna().iloc[-1])}


def split_halves(cases: list[str], seed: int) -> tuple[np.ndarray, str]:
    """Two disjoint halves of a real set: by patient when it has >= 2 patients (cases, shuffled
    by the seed, each to the half with fewer images so far), else by image."""
    rng = np.random.default_rng(seed)
    cases = np.asarray(cases)
    unique = np.unique(cases)
    if len(unique) < 2:
        half = np.zeros(len(cases), int)
        half[rng.permutation(len(cases))[len(cases) // 2:]] = 1
        return half, "by image (one patient only)"
    sizes = [0, 0]
    half = np.zeros(len(cases), int)
    for case in rng.permutation(unique):
        side = int(np.argmin(sizes))
        half[cases == case] = side
        sizes[side] += int(np.sum(cases == case))
    return half, f"by patient ({len(unique)} patients)"


def baseline_classes(params: dict, dataset: str) -> list[str]:
    """Every class, and `all` (the pooled classes that class-conditional experiments generate)
    when there are several; only those in evaluate.baseline_classes when it lists some."""
    classes = list(config.dataset(params, dataset)["classes"])
    every = classes + (["all"] if len(classes) > 1 else [])
    listed = params["evaluate"].get("baseline_classes")
    return every if listed is None else [c for c in every if c in listed]


def baseline(params: dict, dataset: str) -> dict:
    """Real-vs-real floor for every class of `dataset` (and the pooled classes): half A plays
    the real set, half B the generated one (so memorisation's floor is held-out-vs-train at ~0.05)."""
    use_threads(params)
    manifest, split = manifest_with_files(dataset), params["evaluate"]["real_split"]
    out = {"dataset": dataset, "seed": params["seed"], "real_split": split, "classes": {}}
    stores = []
    for cls in baseline_classes(params, dataset):
        rows = real_rows(params, dataset, manifest, split, cls)
        if len(rows) < MIN_BASELINE:
            out["classes"][cls] = {"skipped": f"{len(rows)} real '{cls}' images in split '{split}': "
                                   "too few for two halves", "n_real": len(rows), "n_fake": 0}
            continue
        half_a, half_b, how = baseline_halves(params, rows, real_set(params, dataset, manifest, split, cls))
        inp = inputs_for(params, dataset, half_a, half_b, real_set(params, dataset, manifest, "train", cls),
                         manifest, None, is_baseline=True)
        stores.append(inp.features)
        out["classes"][cls] = {"halves": how, "n_real": len(inp.real), "n_fake": len(inp.fake),
                               "n_train": len(inp.train), "metrics": run_metrics(inp)}
    return write_metrics(paths.path(paths.BASELINE, dataset=dataset), out, params, "baseline", dataset,
                         **inception_provenance(stores))
