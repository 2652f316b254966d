"""summarize: every experiment's and baseline's metrics in one table.

- summary.csv: everything (every entry's value, CI, n, skip reason), one row per experiment and
  per baseline class.
- summary.md: the headline table (`headline_table`, also what the HTML report renders): one row
  per experiment and per baseline, the numbers a reader compares, each `value [low, high]`,
  n once per row, a skipped number as a short code explained in a footnote.
"""

from __future__ import annotations

import pandas as pd

from . import paths
from .atomic import read_json, write_text
from .metrics import REGISTRY
from .results import write_summary_provenance

# (column key, title in summary.md, the entry it shows)
HEADLINE = [
    ("fid", "FID", "fid"),
    ("kid", "KID", "kid"),
    ("frd", "FRD", "frd"),
    ("relative_fid", "rel. FID", "relative_fid"),
    ("precision", "precision", "prdc_precision"),
    ("recall", "recall", "prdc_recall"),
    ("diversity_ratio", "diversity ratio", "diversity_ratio"),
    ("memorisation_share", "memorisation", "memorisation_share_feature"),
    ("auc_gain", "AUC gain", "utility_auc_gain"),
    ("paired_ssim", "SSIM (paired)", "paired_ssim_image"),
]
ROW_KEYS = ("experiment", "dataset", "variant", "class", "seed", "n_real", "n_fake")
NOT_COMPUTED = "not computed (metric not selected when this row was evaluated)"


def metric_names(params: dict) -> list[str]:
    return [n for m in params["evaluate"]["metrics"] for n in REGISTRY[m].NAMES]


def records(params: dict) -> list[tuple[dict, dict]]:
    """(row description, metric entries) for every experiment (params order), then every
    baseline class: each dataset's classes, and its pooled `all` when an experiment uses it."""
    out, pooled = [], set()
    for name in params["experiments"]:
        result = read_json(paths.path(paths.METRICS, experiment=name), f"run `medgan evaluate {name}`")
        flags = [f"{g['flag'].replace('_', ' ')} at step {g['step']}" for g in result.get("training", {}).get("guard", [])]
        out.append(({**{k: result[k] for k in ROW_KEYS}, "flags": "; ".join(flags)}, result["metrics"]))
        if result["class"] == "all":
            pooled.add(result["dataset"])
    for dataset in params["datasets"]:
        floor = read_json(paths.path(paths.BASELINE, dataset=dataset), f"run `medgan baseline {dataset}`")
        for cls, result in floor["classes"].items():
            base = {"experiment": "baseline: real vs real", "dataset": dataset, "variant": "real-vs-real",
                    "class": cls, "seed": floor["seed"], "n_real": result["n_real"], "n_fake": result["n_fake"],
                    "halves": result.get("halves", "not computed"), "shown": cls != "all" or dataset in pooled}
            metrics = result.get("metrics") or {n: {"skipped": result["skipped"]} for n in metric_names(params)}
            out.append((base, metrics))
    return out


def full_table(params: dict) -> pd.DataFrame:
    """summary.csv: every entry's value, CI bounds, n and skip reason."""
    names, rows = metric_names(params), []
    for base, metrics in records(params):
        row = {k: v for k, v in base.items() if k != "shown"}
        for name in names:
            entry = metrics.get(name)
            row[name] = None if entry is None else entry.get("value")
            for key in ("ci_low", "ci_high", "n_real", "n_fake"):
                row[f"{name}_{key}"] = None if entry is None else entry.get(key)
            row[f"{name}_skipped"] = "not computed" if entry is None else entry.get("skipped", "")
            row[f"{name}_features"] = None if entry is None else entry.get("features")
        rows.append(row)
    return pd.DataFrame(rows)


def headline_table(params: dict) -> pd.DataFrame:
    """One row per experiment and per shown baseline: experiment, dataset, class, n_real,
    n_fake, `flags` (the training guard's findings, e.g. mode collapse), and per HEADLINE key
    `<key>`, `<key>_ci_low`, `<key>_ci_high` (floats, NaN where missing), `<key>_skipped` (the
    reason, '' when there is a value) and `<key>_patients` (patients behind a paired number)."""
    rows = []
    for base, metrics in records(params):
        if not base.get("shown", True):
            continue
        row = {k: base[k] for k in ("experiment", "dataset", "variant", "class", "n_real", "n_fake")}
        row["flags"] = base.get("flags", "")
        for key, _, source in HEADLINE:
            entry = metrics.get(source) or {"skipped": NOT_COMPUTED}
            row[key] = float(entry["value"]) if "value" in entry else float("nan")
            row[f"{key}_ci_low"] = float(entry.get("ci_low", float("nan")))
            row[f"{key}_ci_high"] = float(entry.get("ci_high", float("nan")))
            row[f"{key}_skipped"] = entry.get("skipped", "")
            row[f"{key}_patients"] = entry.get("n_patients")
            row[f"{key}_features"] = entry.get("features", "")
        rows.append(row)
    return pd.DataFrame(rows)


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def value_cell(row, key: str) -> str:
    text = _number(row[key])
    if not pd.isna(row[f"{key}_ci_low"]):
        text += f" [{_number(row[f'{key}_ci_low'])}, {_number(row[f'{key}_ci_high'])}]"
    patients = row.get(f"{key}_patients")
    return text + (f" ({int(patients)} patients)" if patients is not None and not pd.isna(patients) else "")


def _separated(a, b, key: str) -> bool:
    """a's 95% CI lies entirely below b's (lower is better)."""
    return not pd.isna(a[f"{key}_ci_high"]) and not pd.isna(b[f"{key}_ci_low"]) and a[f"{key}_ci_high"] < b[f"{key}_ci_low"]


def answer(table: pd.DataFrame, key: str = "kid") -> list[str]:
    """Per dataset/class: the generator that is best by `key`, whether its CI separates it from
    each other generator, how far it is from the real-vs-real floor, and the guard's flags."""
    lines = []
    is_base = table["experiment"].str.startswith("baseline")
    for (dataset, cls), group in table[~is_base].groupby(["dataset", "class"], sort=False):
        scored = group[group[f"{key}_skipped"] == ""].sort_values(key)
        if scored.empty:
            continue
        best, others = scored.iloc[0], scored.iloc[1:]
        floor = table[is_base & (table["dataset"] == dataset) & (table["class"] == cls)]
        text = f"**{dataset} / {cls}**: best by {key.upper()} is `{best['experiment']}` ({value_cell(best, key)})"
        if not floor.empty and floor.iloc[0][f"{key}_skipped"] == "":
            text += f", against a real-vs-real floor of {value_cell(floor.iloc[0], key)}"
        text += "."
        beaten = [o["experiment"] for _, o in others.iterrows() if _separated(best, o, key)]
        unclear = [o["experiment"] for _, o in others.iterrows() if not _separated(best, o, key)]
        if beaten:
            text += " Its 95% CI lies entirely below " + ", ".join(
                f"`{o}` ({value_cell(others[others['experiment'] == o].iloc[0], key)})" for o in beaten) + "."
        if unclear:
            text += " Not separable from " + ", ".join(f"`{o}`" for o in unclear) + " (CIs overlap)."
        if not pd.isna(best.get("relative_fid", float("nan"))):
            text += f" Its FID is {best['relative_fid']:.2g}× the real-vs-real FID."
        flagged = [f"`{r['experiment']}` ({r['flags']})" for _, r in group.iterrows() if r.get("flags")]
        if flagged:
            text += " The training guard flagged " + ", ".join(flagged) + "."
        lines.append(text)
    paired = table[~is_base & (table["paired_ssim_skipped"] == "")]
    for _, row in paired.iterrows():
        lines.append(f"**{row['dataset']}**: label map → image (`{row['experiment']}`), held-out SSIM "
                     f"{value_cell(row, 'paired_ssim')} over {row['n_real']} pairs.")
    return lines


def feature_label(table: pd.DataFrame, key: str) -> str:
    """Which features the rows' `key` entries were computed on (their `features` field):
    Inception, or radiomics under `inception: auto` without weights, or both when rows differ."""
    column = f"{key}_features"
    used = sorted({str(v) for v in table[column] if isinstance(v, str) and v}) if column in table else []
    kinds = sorted({"Inception" if u.startswith("inception") else "radiomics" if u.startswith("radiomics") else u
                    for u in used})
    if kinds == ["Inception"]:
        return "Inception features"
    if kinds == ["radiomics"]:
        return f"radiomics features ({', '.join(used)}): no Inception weights were found"
    if kinds:
        return f"{' or '.join(kinds)} features by row ({'; '.join(used)}: each entry's `features` in the JSONs)"
    return "Inception features where the weights exist, else radiomics features"


def legend(table: pd.DataFrame) -> list[str]:
    """The notes under summary.md's title: what each column is, on which features."""
    return [
        "- FID, KID, FRD (d_F² of jointly normalised radiomics features): lower is better.",
        "- rel. FID: FID ÷ the baseline's FID (Woodland et al. 2024), CI by jackknife. The baseline "
        "compares half-size sets and FID grows as n shrinks, so a generator indistinguishable from "
        "real images scores below 1 (≈ 0.5 when n gen = n real): compare rows of similar n.",
        f"- precision, recall (Naeem et al. 2020, k-NN on {feature_label(table, 'precision')}): higher is better.",
        "- diversity ratio: mean pairwise SSIM among generated ÷ among real; > 1 suggests collapse.",
        f"- memorisation: share of generated images closer ({feature_label(table, 'memorisation_share')}) to a "
        "training image than the 5th percentile of held-out-to-train distances; ~0.05 = no copying, 1 = copies.",
        "- AUC gain: classifier AUC trained on real + synthetic minus on real only, tested on real.",
        "- SSIM (paired): label map → image experiments, generated vs real slice of each held-out "
        "pair, CI by patient-level bootstrap.",
        "- ⚠: the training guard's findings (mode collapse: generated images far less different from "
        "each other than real ones, train.divergence).",
    ]


def markdown(table: pd.DataFrame) -> str:
    """summary.md from headline_table: skipped cells as `– (a)` with the reasons below."""
    codes: dict[str, str] = {}
    users: dict[str, list[str]] = {}
    lines = []
    for _, row in table.iterrows():
        name = row["experiment"] + (f" ⚠ {row['flags']}" if row.get("flags") else "")
        cells = [name, f"{row['dataset']} / {row['class']}", f"{row['n_real']}/{row['n_fake']}"]
        for key, title, _ in HEADLINE:
            if row[f"{key}_skipped"]:
                reason = row[f"{key}_skipped"]
                code = codes.setdefault(reason, chr(ord("a") + len(codes)))
                users.setdefault(code, [])
                if title not in users[code]:
                    users[code].append(title)
                cells.append(f"– ({code})")
            else:
                cells.append(value_cell(row, key))
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    header = ["experiment", "dataset / class", "n real/gen"] + [title for _, title, _ in HEADLINE]
    notes = [f"- ({code}) {', '.join(users[code])}: {reason}" for reason, code in codes.items()]
    return "\n".join([
        "# medgan metrics",
        "",
        "Each number: value [95% bootstrap CI]. Baseline rows compare two disjoint halves of the real "
        "held-out images (split by patient): read every row against its dataset/class's baseline. "
        "Everything else (KID's std, relative KID/FRD, density, coverage, paired and utility scores, "
        "which Inception weights) is in summary.csv and the JSONs.",
        "",
        *legend(table),
        "",
        "## What the numbers say",
        "",
        *(answer(table) or ["(no generator with a KID to compare)"]),
        "",
        "## The table",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *lines,
        "",
        *notes,
        "",
    ])


SEGMENTATION_ARMS = (("real", "real pairs"), ("mixed", "real + synthetic"), ("synthetic", "synthetic only"))


def _entry_cell(entry: dict | None) -> str:
    if not entry or "value" not in entry:
        return "– " + (entry or {}).get("skipped", NOT_COMPUTED)
    text = _number(entry["value"])
    if entry.get("ci_low") is not None:
        text += f" [{_number(entry['ci_low'])}, {_number(entry['ci_high'])}]"
    return text


def segmentation_section(params: dict) -> list[str]:
    """summary.md's segmentation-utility rows (medgan synthesize sets): one per experiment and
    arm, Dice and lesion-wise sensitivity on the real held-out slices with patient-level CIs."""
    rows = []
    for base, metrics in records(params):
        if base["experiment"].startswith("baseline") or "value" not in metrics.get("segmentation_real_dice", {}):
            continue
        chance = metrics.get("segmentation_chance_dice", {})
        for arm, title in SEGMENTATION_ARMS:
            dice = metrics.get(f"segmentation_{arm}_dice") or {}
            rows.append(f"| {base['experiment']} | {title} | {_entry_cell(dice)} | "
                        f"{_entry_cell(metrics.get(f'segmentation_{arm}_lesion_sensitivity'))} | "
                        f"{dice.get('n_real', '')} / {dice.get('n_patients', '')} | {dice.get('n_train', '')} | "
                        f"{_entry_cell(chance)} |")
    if not rows:
        return []
    return ["## Segmentation utility (U-Net on real / real + synthetic / synthetic pairs)", "",
            "Dice (pooled over every real held-out slice) and lesion-wise sensitivity [95% CI, patient-level "
            "bootstrap]; the same U-Net budget and seed for every arm.", "",
            "| experiment | trained on | Dice | lesion sensitivity | test slices / patients | train images | chance Dice |",
            "|---|---|---|---|---|---|---|", *rows, ""]


def summarize(params: dict) -> pd.DataFrame:
    """Write summary.csv (everything) and summary.md (the headline table); return the former."""
    table = full_table(params)
    write_text(paths.SUMMARY_CSV, table.to_csv(index=False))
    write_text(paths.SUMMARY_MD, "\n".join([markdown(headline_table(params)), *segmentation_section(params)]))
    write_summary_provenance(params)
    return table
