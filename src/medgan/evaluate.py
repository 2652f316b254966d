"""evaluate: compare an experiment's samples with held-out real images; summarise all."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import config, paths
from .atomic import atomic_file, write_json
from .metrics import REGISTRY
from .prepare import load_manifest


def real_image_paths(params: dict, exp: dict) -> list[str]:
    slices = paths.path(paths.SLICES, dataset=exp["dataset"])
    manifest = load_manifest(slices)
    split = params["evaluate"]["real_split"]
    classes = config.classes_of(params, exp)
    rows = manifest[(manifest["split"] == split) & manifest["class"].isin(classes)]
    if rows.empty:
        raise config.ConfigError(f"{slices}: no real {classes} images in split '{split}'")
    return [str(slices / p) for p in rows["path"]]


def sample_paths(name: str) -> list[str]:
    folder = paths.path(paths.SAMPLES, experiment=name)
    index = pd.read_csv(folder / "samples.csv")
    rows = index[index["kind"] == "fake"]
    return [str(folder / p) for p in rows["path"]]


def selected_metrics(settings: dict) -> list[str]:
    return [m for m in settings["metrics"] if not (m == "fid" and settings["inception"] == "off")]


def evaluate(params: dict, name: str) -> dict:
    exp = config.experiment(params, name)
    settings = params["evaluate"]
    real, fake = real_image_paths(params, exp), sample_paths(name)
    results = {"experiment": name, **exp, "seed": params["seed"], "real_split": settings["real_split"]}
    for metric in selected_metrics(settings):
        results[metric] = REGISTRY[metric](real, fake, settings)
    write_json(paths.path(paths.METRICS, experiment=name), results)
    return results


def _cell(result: dict) -> str:
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    return f"{result['value']:.3f} (n={result['n_real']}/{result['n_fake']})"


def summarize(params: dict) -> pd.DataFrame:
    rows, cells = [], []
    for name in params["experiments"]:
        result = json.loads(paths.path(paths.METRICS, experiment=name).read_text())
        base = {k: result[k] for k in ("experiment", "dataset", "variant", "class")}
        metrics = [m for m in REGISTRY if m in result]
        row, cell = dict(base), dict(base)
        for m in metrics:
            r = result[m]
            row.update({f"{m}": r.get("value"), f"{m}_n_real": r["n_real"],
                        f"{m}_n_fake": r["n_fake"], f"{m}_skipped": r.get("skipped", "")})
            cell[m] = _cell(r)
        rows.append(row)
        cells.append(cell)
    table = pd.DataFrame(rows)
    with atomic_file(paths.SUMMARY_CSV) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(paths.SUMMARY_MD) as tmp:
        Path(tmp).write_text(_markdown(pd.DataFrame(cells)))
    return table


def _markdown(frame: pd.DataFrame) -> str:
    intro = ("# medgan metrics\n\nEach cell: value (n=real/generated), or why it is missing. "
             "FRD: log(d_F^2), lower is better. FID: lower is better.\n\n")
    return intro + frame.to_markdown(index=False) + "\n"
