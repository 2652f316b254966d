"""report: one self-contained HTML page of the results (results/report.html).

Per dataset: the headline metric table (baseline rows beside the experiments, best value per
column marked); per experiment: generated beside real held-out images, training curves,
progress and interpolation strips, intensity histograms (in HU for CT), a 2-D map of real and
generated images in feature space, the memorisation closest pairs, pix2pix triplets and paired
metrics, the visual Turing test's link and scores, and the settings. Figures are drawn here
with matplotlib from the pipeline's files and embedded as PNG data URIs: the page opens from
disk with no network (no scripts, fonts or styles from elsewhere)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from . import __version__, config, paths, summary
from .atomic import write_text
from .errors import MedganError
from .render import data_uri, data_uri_of_array, data_uri_of_file, render

# Which way is better for each column of the shared headline table (medgan.summary.HEADLINE):
# "min": lower is better, "max": higher, "one": closest to 1.
BETTER = {"fid": "min", "kid": "min", "frd": "min", "relative_fid": "min", "precision": "max", "recall": "max",
          "diversity_ratio": "one", "memorisation_share": "min", "auc_gain": "max", "paired_ssim": "max"}
HEADLINE = {key: (title, BETTER[key]) for key, title, _ in summary.HEADLINE}
ARROWS = {"min": "↓", "max": "↑", "one": "→1"}
PAIRED_PREFIX = "paired_"
SEGMENTATION_PREFIX = "segmentation_"  # medgan synthesize sets: the U-Net arms
DPI = 80
Z_CLIP = 10.0  # feature-map z-scores are clipped at ±this many real-image SDs


class ReportError(MedganError):
    """An input of the report is missing or malformed; the message names it."""


# ---------------------------------------------------------------------------------------------
# small helpers

def pixel_image(image: Path | np.ndarray, max_width: int) -> dict:
    """An image of pixels (grid, strip) embedded, with the largest whole-number zoom that fits
    `max_width` CSS pixels (whole numbers keep `image-rendering: pixelated` crisp)."""
    if isinstance(image, np.ndarray):
        src, width = data_uri_of_array(image), image.shape[1]
    else:
        src, width = data_uri_of_file(image), Image.open(image).size[0]
    return {"src": src, "width": max(1, max_width // width) * width if width <= max_width else max_width}


def data_uri_of_figure(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return data_uri(buffer.getvalue())


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_json(path: Path) -> dict:
    if not path.exists():
        raise ReportError(f"{path} not found: run the pipeline up to it first (snakemake --cores 2, or dvc repro)")
    return json.loads(path.read_text())


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        # the pipeline's own outputs (results/, data/) do not make the source dirty (as in provenance)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results",
                                ":!data"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (with uncommitted changes)" if dirty else "")


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# the metric table

def metric_table(params: dict, dataset: str) -> pd.DataFrame:
    """The headline table of one dataset (medgan.summary.headline_table, the one summary.md
    shows): a row per experiment, then the real-vs-real baseline row per class; columns kind,
    name, variant, class, n_real, n_fake, flags, and per headline metric `<m>`, `<m>_ci_low`,
    `<m>_ci_high`, `<m>_skipped`."""
    table = summary.headline_table(params)
    table = table[table["dataset"] == dataset].reset_index(drop=True)
    baseline = table["experiment"].str.startswith("baseline")
    table.insert(0, "kind", np.where(baseline, "baseline", "experiment"))
    table.insert(1, "name", np.where(baseline, "real vs real", table["experiment"]))
    return table


def strip_markdown(text: str) -> str:
    """summary.answer's sentences without their Markdown marks (the template escapes the rest)."""
    return text.replace("**", "").replace("`", "")


def best_rows(table: pd.DataFrame, metric: str, direction: str) -> set[int]:
    """Index of the experiment row(s) with the best value of `metric` among experiments of the
    same class (a tumour GAN's FID and an all-classes pix2pix's are not one race; baselines
    don't compete). A class with one experiment, or a tie of all (e.g. every 0), marks nothing."""
    best: set[int] = set()
    experiments = table[table["kind"] == "experiment"]
    for _, group in experiments.groupby("class", sort=False):
        values = group[metric].dropna().astype(float)
        if len(values) < 2 or np.isclose(values, values.iloc[0]).all():
            continue
        score = {"min": values, "max": -values, "one": (values - 1).abs()}[direction]
        best |= set(score.index[np.isclose(score, score.min())])
    return best


def table_view(table: pd.DataFrame) -> dict:
    """The table as the template shows it: only columns with at least one number, cells as text."""
    shown = [m for m in HEADLINE if m in table and table[m].notna().any()]
    best = {m: best_rows(table, m, HEADLINE[m][1]) for m in shown}
    reasons: dict[str, str] = {}
    rows = []
    for index, r in table.iterrows():
        cells = []
        for m in shown:
            if pd.notna(r[m]):
                ci = (f" [{r[f'{m}_ci_low']:.3g}, {r[f'{m}_ci_high']:.3g}]"
                      if pd.notna(r[f"{m}_ci_low"]) and pd.notna(r[f"{m}_ci_high"]) else "")
                cells.append({"text": f"{r[m]:.3g}", "ci": ci, "best": index in best[m], "note": ""})
            else:
                reason = r[f"{m}_skipped"] or "not computed"
                note = reasons.setdefault(reason, str(len(reasons) + 1))
                cells.append({"text": "—", "ci": "", "best": False, "note": note})
        rows.append({"kind": r["kind"], "name": r["name"], "variant": r["variant"], "class": r["class"],
                     "flags": r.get("flags", ""),
                     "n": f"{r['n_real']}/{r['n_fake']}", "cells": cells})
    arrows = ARROWS
    hidden = sorted({reason for m in HEADLINE if m in table and not table[m].notna().any()
                     for reason in table[f"{m}_skipped"] if reason})
    return {"columns": [{"label": HEADLINE[m][0], "better": arrows[HEADLINE[m][1]]} for m in shown],
            "rows": rows, "notes": [{"mark": v, "text": k} for k, v in reasons.items()],
            "hidden": [HEADLINE[m][0] for m in HEADLINE if m in table and m not in shown], "hidden_reasons": hidden}


# ---------------------------------------------------------------------------------------------
# figures

def seed_strip_plot(table: pd.DataFrame) -> str | None:
    """Each headline metric per arm with every seed as a point (the median as a bar, the across-seed
    interval as a line when there is one) and the real-vs-real floor as a dashed line: how far the
    seeds of one arm spread against the distances between arms. None when no arm has seeds."""
    experiments = table[table["kind"] == "experiment"]
    metrics = [m for m in HEADLINE if f"{m}_seeds" in table and experiments[f"{m}_seeds"].map(len).gt(0).any()]
    if not metrics:
        return None
    plt = pyplot()
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 + 0.25 * len(experiments)) if rows == 1
                             else (4.2 * columns, 3.2 * rows), squeeze=False)
    baselines = table[table["kind"] == "baseline"].set_index("class")
    for ax, metric in zip(axes.flat, metrics):
        for x, (_, arm) in enumerate(experiments.iterrows()):
            floor = baselines[metric].get(arm["class"]) if metric in baselines else None
            if floor is not None and pd.notna(floor):  # the floor of the arm's own class
                ax.hlines(floor, x - 0.4, x + 0.4, color="tab:green", linestyle="--", linewidth=1)
            seeds = arm[f"{metric}_seeds"]
            if not seeds:
                continue
            jitter = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 else np.zeros(1)
            ax.scatter(x + jitter, seeds, s=22, color="tab:blue", zorder=3)
            ax.hlines(np.median(seeds), x - 0.25, x + 0.25, color="black", linewidth=1.5)
            if pd.notna(arm[f"{metric}_ci_low"]) and len(seeds) > 1:
                ax.vlines(x + 0.3, arm[f"{metric}_ci_low"], arm[f"{metric}_ci_high"], color="gray", linewidth=2)
        ax.set_xticks(range(len(experiments)))
        ax.set_xticklabels(experiments["name"], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{HEADLINE[metric][0]} {ARROWS[HEADLINE[metric][1]]}", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    return data_uri_of_figure(fig)


LOSS_CURVES = (("loss_d", "D loss"), ("loss_g", "G loss"), ("loss", "denoising loss"))
DISCRIMINATOR_CURVES = (("d_accuracy", "D accuracy"), ("d_real", "D(real)"), ("d_fake", "D(fake)"))


@dataclass(frozen=True)
class Panel:
    title: str
    curves: list[tuple[str, str]]  # (log column, legend label)
    unit_interval: bool = False  # y from 0 to 1 whatever the data (accuracies, probabilities)


def training_panels(log: pd.DataFrame) -> list[Panel]:
    """Losses, D's outputs/accuracy (GANs only), and the diversity signal. A diffusion log has
    one loss and no discriminator: its panels follow its columns."""
    diversity = "spread" if "spread" in log else "fake_std" if "fake_std" in log else None
    panels = [Panel("losses", [c for c in LOSS_CURVES if c[0] in log])]
    if any(c[0] in log for c in DISCRIMINATOR_CURVES):
        panels.append(Panel("discriminator", [c for c in DISCRIMINATOR_CURVES if c[0] in log], unit_interval=True))
    if diversity and pd.to_numeric(log[diversity], errors="coerce").notna().any():
        title = "cross-sample spread vs real" if diversity == "spread" else "std of generated pixels"
        panels.append(Panel(title, [(diversity, diversity)]))
    return panels


def training_curves(log: pd.DataFrame) -> str:
    """The training panels side by side, with the guard's steps marked."""
    plt = pyplot()
    panels = training_panels(log)
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    axes = axes[0]
    for ax, panel in zip(axes, panels):
        for column, label in panel.curves:
            values = pd.to_numeric(log[column], errors="coerce")
            ax.plot(log["step"][values.notna()], values.dropna(), label=label,
                    marker="o" if values.notna().sum() < 3 else None)
        ax.set_title(panel.title)
        if panel.unit_interval:
            ax.set_ylim(-0.05, 1.05)
    guard = guard_events(log)
    for ax in axes:
        for event in guard:
            ax.axvline(event["step"], color="tab:red", linestyle="--", linewidth=1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    if guard:
        axes[0].plot([], [], color="tab:red", linestyle="--", label="guard fired")
        axes[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return data_uri_of_figure(fig)


def guard_events(log: pd.DataFrame) -> list[dict]:
    if "guard" not in log:
        return []
    reasons = log["guard"].map(lambda g: "" if pd.isna(g) else str(g).strip())  # empty where it did not fire
    fired = reasons != ""
    return [{"step": int(s), "reason": g} for s, g in zip(log.loc[fired, "step"], reasons[fired])]


def hu_window(manifest: pd.DataFrame) -> tuple[float, float] | None:
    """The CT window prepare mapped to 0..255, or None when the images are not CT in HU."""
    if not {"window_low", "window_high"} <= set(manifest.columns):
        return None
    windows = manifest[["window_low", "window_high"]].dropna()
    if windows.empty:
        return None
    return float(windows["window_low"].iloc[0]), float(windows["window_high"].iloc[0])


def intensity_histogram(real: np.ndarray, fake: np.ndarray, window: tuple[float, float] | None) -> tuple[str, dict]:
    """Histograms of real held-out and generated pixel values (HU when `window`), W1 between them."""
    from scipy.stats import wasserstein_distance

    plt = pyplot()
    low, high = window if window else (0.0, 255.0)
    to_units = lambda x: low + x.ravel() * (high - low)  # noqa: E731  [0, 1] -> HU (or 0..255)
    r, f = to_units(real), to_units(fake)
    w1 = float(wasserstein_distance(r, f))
    unit = "HU" if window else "intensity (0–255)"
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(low, high, 65)
    ax.hist(r, bins=bins, density=True, alpha=0.55, label=f"real held-out (n={len(real)})")
    ax.hist(f, bins=bins, density=True, alpha=0.55, label=f"generated (n={len(fake)})")
    ax.set_xlabel(unit)
    ax.set_ylabel("density")
    ax.set_title(f"pixel intensities — Wasserstein-1 = {w1:.3g} {'HU' if window else ''}".strip())
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return data_uri_of_figure(fig), {"w1": w1, "unit": "HU" if window else "intensity levels (0–255)",
                                    "window": list(window) if window else None}


def feature_map(train: np.ndarray, held_out: np.ndarray, fake: np.ndarray, extractor: str) -> tuple[str, dict]:
    """PCA of the real images' features (z-scored with the real images' statistics); generated
    images projected onto the same axes."""
    from sklearn.decomposition import PCA

    plt = pyplot()
    real = np.concatenate([train, held_out])
    keep = np.isfinite(real).all(0) & np.isfinite(fake).all(0) & (real.std(0) > 1e-12)
    if keep.sum() < 2:
        raise ReportError("fewer than 2 informative features")
    mean, std = real[:, keep].mean(0), real[:, keep].std(0)
    # Clipped: a feature nearly constant in the real images would otherwise put generated
    # images at z ~ 1e14 along it and squash every other point into one dot.
    z = lambda x: np.clip((x[:, keep] - mean) / std, -Z_CLIP, Z_CLIP)  # noqa: E731
    pca = PCA(n_components=2, random_state=0).fit(z(real))
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for points, label, marker, color in ((train, "real train", "o", "tab:blue"),
                                         (held_out, "real held-out", "s", "tab:cyan"),
                                         (fake, "generated", "x", "tab:red")):
        xy = pca.transform(z(points))
        ax.scatter(xy[:, 0], xy[:, 1], s=18, marker=marker, color=color, alpha=0.7, label=f"{label} ({len(points)})")
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of real variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%})")
    ax.set_title(f"{extractor} features, PCA fitted on real images")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return data_uri_of_figure(fig), {"extractor": extractor, "n_features": int(keep.sum()), "z_clip": Z_CLIP,
                                    "variance": [float(v) for v in ratio]}


def grid_shape(grid: Path, size: tuple[int, int]) -> tuple[int, int]:
    """(rows, columns) of a grid PNG made by sample (torchvision make_grid, padding 2)."""
    width, height = Image.open(grid).size
    return max(1, (height - 2) // (size[0] + 2)), max(1, (width - 2) // (size[1] + 2))


def image_grid(images: np.ndarray, rows: int, columns: int, pad: int = 2) -> np.ndarray:
    """The same layout as make_grid(padding=2, pad_value=255): white lines between images."""
    h, w = images.shape[1:]
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 255, np.uint8)
    for k, image in enumerate(images[: rows * columns]):
        r, c = divmod(k, columns)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = image
    return canvas


def real_grid_like(held_out: pd.DataFrame, images: np.ndarray, classes: list[str], rows: int,
                   columns: int) -> np.ndarray:
    """Real images in the generated grid's layout: a block of rows per class when sample drew
    one block per class (a conditional GAN), else in order; white where real images run out."""
    if len(classes) > 1 and rows % len(classes) == 0:
        per_class = rows // len(classes) * columns
        blank = np.full(images.shape[1:], 255, np.uint8)
        tiles = []
        for cls in classes:
            mine = list(images[np.asarray(held_out["class"] == cls)][:per_class])
            tiles += mine + [blank] * (per_class - len(mine))
        images = np.stack(tiles)
    return image_grid(images, rows, columns)


# ---------------------------------------------------------------------------------------------
# one experiment

def feature_section(params: dict, name: str, sets: dict) -> dict:
    """The feature-space map, with Inception features when available, else radiomics (and why)."""
    from .evaluate import inputs_for
    from .metrics.common import MetricSkipped

    exp = params["experiments"][name]
    inp = inputs_for(params, exp["dataset"], sets["held_out"], sets["fake"], sets["train"], sets["manifest"],
                     None, is_baseline=False)
    why_not = inp.features.inception_available()
    extractor = "inception" if why_not is None else "radiomics"
    try:
        feats = [inp.features.get(extractor, s) for s in (inp.train, inp.real, inp.fake)]
        uri, info = feature_map(*feats, extractor=extractor)
    except (MetricSkipped, ReportError, ValueError) as err:
        return {"uri": None, "why": f"no feature map: {err}", "fallback": why_not}
    return {"uri": uri, "why": "", "fallback": why_not, **info}


def pictures(name: str, paired: bool, grid: Path, held_out: pd.DataFrame, real: np.ndarray,
             classes: list[str], size: tuple[int, int]) -> dict:
    """The pipeline's images of one experiment, and the real held-out grid beside the generated one."""
    out = {"grid": pixel_image(grid, 1100 if paired else 540),
           "progress": pixel_image(paths.path(paths.PROGRESS, experiment=name, replicate=0), 800),
           "interpolation": pixel_image(paths.path(paths.INTERPOLATION, experiment=name, replicate=0), 800),
           "memorisation": pixel_image(paths.path(paths.CLOSEST_PAIRS, experiment=name, replicate=0), 300)}
    if not paired:
        rows, columns = grid_shape(grid, size)
        tiles = (real * 255).round().astype(np.uint8)
        out["real_grid"] = pixel_image(real_grid_like(held_out, tiles, classes, rows, columns), 540)
        out["real_grid_n"] = min(len(real), rows * columns)
    return out


def training(name: str) -> dict:
    path = paths.path(paths.TRAIN_LOG, experiment=name, replicate=0)
    try:
        log = pd.read_csv(path)
    except FileNotFoundError:
        raise ReportError(f"{path} not found — the report plots it: run `medgan train {name}`, or fetch the "
                          f"log with the model (`dvc pull {path}`)") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ReportError(f"{path}: unreadable training log ({str(err).strip().splitlines()[0]}) — rerun "
                          f"`medgan train {name}` or fetch it again") from None
    return {"curves": training_curves(log), "guard": guard_events(log),
            "diversity_column": "spread" if "spread" in log else "fake_std"}


def seed_grids(params: dict, name: str, paired: bool) -> list[dict]:
    """Every replicate's grid of generated images, for the page's on-demand list."""
    return [{"replicate": r, "seed": config.replicate_seed(params["seed"], r),
             "grid": pixel_image(paths.path(paths.GRID, experiment=name, replicate=r), 1100 if paired else 540)}
            for r in range(config.replicates_of(params, name))]


def experiment_section(params: dict, name: str) -> dict:
    from . import variants
    from .evaluate import classes_named, fake_set_key, manifest_with_files, real_set, samples_with_files
    from .metrics.common import ImageSet, load_gray

    exp = params["experiments"][name]
    dataset, split = exp["dataset"], params["evaluate"]["real_split"]
    size = tuple(params["datasets"][dataset]["image_size"])
    classes = classes_named(params, dataset, exp["class"])
    manifest, samples = manifest_with_files(dataset), samples_with_files(name)
    fakes = samples[(samples["kind"] == "fake") & samples["class"].isin(classes)]
    held_out = manifest[(manifest["split"] == split) & manifest["class"].isin(classes)].sort_values("class", kind="stable")
    paired = variants.VARIANTS[exp["variant"]].paired
    real, fake = load_gray(list(held_out["file"]), size), load_gray(list(fakes["file"]), size)
    histogram, histogram_info = intensity_histogram(real, fake, hu_window(manifest))
    sets = {"held_out": real_set(params, dataset, manifest, split, exp["class"]),
            "train": real_set(params, dataset, manifest, "train", exp["class"]),
            "fake": ImageSet(list(fakes["file"]), cache_key=fake_set_key(name)), "manifest": manifest}
    metrics = read_json(paths.path(paths.METRICS, experiment=name))["metrics"]
    return {"name": name, "experiment": exp, "paired": paired, "real_split": split, "classes": classes,
            "seed_grids": seed_grids(params, name, paired), "shown_seed": config.replicate_seed(params["seed"], 0),
            "settings": json.dumps(config.training_settings(params, name), indent=2, sort_keys=True),
            **pictures(name, paired, paths.path(paths.GRID, experiment=name, replicate=0), held_out, real, classes, size),
            **training(name), "histogram": histogram, "histogram_info": histogram_info,
            "features": feature_section(params, name, sets),
            "paired_metrics": [{"name": k, **v} for k, v in sorted(metrics.items())
                               if paired and k.startswith(PAIRED_PREFIX)],
            "segmentation_metrics": [{"name": k, **v} for k, v in metrics.items()
                                     if k.startswith(SEGMENTATION_PREFIX) and "value" in v],
            "turing": turing_section(name)}


def turing_section(name: str) -> dict:
    """The test page's link (relative to the report), and the scores when answers exist."""
    from . import turing

    page = paths.path(paths.TURING_PAGE, experiment=name)
    out = {"link": str(page.relative_to(Path(paths.REPORT).parent)) if page.exists() else None,
           "answers": paths.TURING_ANSWERS.format(experiment=name), "scores": None, "kappa": None}
    files = turing.answer_files(name)
    if out["link"] and files:
        result = turing.score(turing.key_for(name, files), files)
        out["scores"] = turing.score_table(result).to_dict("records")
        out["kappa"] = result["agreement"]
    return out


# ---------------------------------------------------------------------------------------------
# the page

def patients_note(dataset: str) -> str:
    """'patients unknown: split by image ...' when prepare could not tell patients apart ('' else)."""
    import json

    try:
        who = json.loads((paths.path(paths.SLICES, dataset=dataset) / "prepare.json").read_text()).get("patients") or {}
    except (OSError, ValueError):
        return ""
    return "" if who.get("known", True) else who.get("source", "patients unknown: split by image")


def build(params: dict) -> Path:
    from tqdm import tqdm

    datasets = []
    for dataset in params["datasets"]:
        names = [n for n, e in params["experiments"].items() if e["dataset"] == dataset]
        if not names:
            continue
        headline = metric_table(params, dataset)
        table = table_view(headline)
        answer = [strip_markdown(line) for line in summary.answer(headline, summary.VerdictRule.of(params))]
        sections = [experiment_section(params, n) for n in tqdm(names, desc=f"report {dataset}", unit="experiment")]
        explore = Path(paths.EXPLORE.format(dataset=dataset))
        datasets.append({"name": dataset, "table": table, "answer": answer, "seeds_figure": seed_strip_plot(headline),
                         "explore": explore.relative_to(Path(paths.REPORT).parent).as_posix() if explore.exists() else None,
                         "window": params["datasets"][dataset].get("window"), "experiments": sections,
                         "patients": patients_note(dataset)})
    page = render("report.html.j2", datasets=datasets, version=__version__, commit=git_commit(),
                  params_hash=params_hash(params), seed=params["seed"],
                  real_split=params["evaluate"]["real_split"])
    out = Path(paths.REPORT)
    write_text(out, page)
    return out
