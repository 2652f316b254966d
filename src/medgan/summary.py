"""summarize: every experiment's and baseline's metrics in one table, and the verdict.

- summary.csv: everything (every entry's value, CI, n, skip reason, every seed's value), one row
  per experiment (its aggregate over replicates, medgan.replicates) and per baseline class.
- summary.md: the verdict (`answer`: a claim between arms only under the pre-declared rule
  across seeds, VerdictRule), then the headline table (`headline_table`, also what the HTML
  report renders): one row per experiment and per baseline, each `value [low, high]`, n once
  per row, a skipped number as a short code explained in a footnote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats

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
VERDICT_MARK = " across seeds ("  # in every verdict sentence, in no other line of summary.md
ALPHA = 0.05


@dataclass(frozen=True)
class VerdictRule:
    """params.yaml `evaluate.verdict`: the metric arms are ranked by, and the one each arm's
    seeds are read against the real-vs-real floor by."""

    rank_by: str = "kid"
    floor_by: str = "kid"

    @classmethod
    def of(cls, params: dict) -> "VerdictRule":
        return cls(**params["evaluate"]["verdict"])

    def text(self) -> str:
        rank, floor = self.rank_by.upper(), self.floor_by.upper()
        return (
            "Verdict rule (params.yaml `evaluate.verdict`, fixed before the runs it judges): arm A is called better "
            f"than arm B only when an exact one-sided Mann–Whitney test on their per-seed {rank}s gives p ≤ {ALPHA} "
            "(scipy.stats.mannwhitneyu, method='exact'); with 3 seeds per arm that happens only when every seed of A "
            "scores below every seed of B (p = 1/20 = 0.05), and with fewer seeds no claim is possible. Otherwise: no "
            f"difference detected with that many seeds. Error rate: when two arms do not differ, each direction is "
            f"claimed with probability ≤ {ALPHA}, so a pair is wrongly ordered with probability ≤ {2 * ALPHA:.2g}; "
            f"with m pairs compared, up to m × {2 * ALPHA:.2g} (Bonferroni bound; no correction is applied, as none "
            "could ever reject with 3 seeds per arm). 'Not yet indistinguishable from real' means every seed's "
            f"{floor} lies above the upper bound of the real-vs-real floor's interval of {floor}.")


def metric_names(params: dict) -> list[str]:
    return [n for m in params["evaluate"]["metrics"] for n in REGISTRY[m].NAMES]


def records(params: dict) -> list[tuple[dict, dict]]:
    """(row description, metric entries) for every experiment (params order), then every
    baseline class: each dataset's classes, and its pooled `all` when an experiment uses it."""
    out, pooled = [], set()
    for name in params["experiments"]:
        result = read_json(paths.path(paths.METRICS, experiment=name), f"run `medgan aggregate {name}`")
        replicates = result.get("replicates", 1)
        out.append(({**{k: result[k] for k in ROW_KEYS}, "replicates": replicates,
                     "flags": guard_text(result.get("training", {}).get("guard_seeds", {}), replicates)},
                    result["metrics"]))
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


def guard_text(counts: dict[str, int], replicates: int) -> str:
    """The training guard's findings counted per seed, e.g. 'mode collapse in 1 of 3 seeds'."""
    return "; ".join(f"{flag.replace('_', ' ')} in {k} of {replicates} seed{'s' if replicates > 1 else ''}"
                     for flag, k in sorted(counts.items()))


def seed_values(entry: dict | None) -> list[float]:
    """Every seed's finite value of an aggregate entry (a baseline entry has none; a seed whose
    value is NaN or infinite has no number to rank, and counts as a seed without a value)."""
    return [s["value"] for s in (entry or {}).get("seeds", [])
            if isinstance(s.get("value"), (int, float)) and math.isfinite(s["value"])]


def full_table(params: dict) -> pd.DataFrame:
    """summary.csv: every entry's value, CI bounds, n, skip reason, interval method and every
    seed's value (';'-separated)."""
    names, rows = metric_names(params), []
    for base, metrics in records(params):
        row = {k: v for k, v in base.items() if k != "shown"}
        for name in names:
            entry = metrics.get(name)
            row[name] = None if entry is None else entry.get("value")
            for key in ("ci_low", "ci_high", "n_real", "n_fake"):
                row[f"{name}_{key}"] = None if entry is None else entry.get(key)
            row[f"{name}_skipped"] = "not computed" if entry is None else entry.get("skipped", "")
            row[f"{name}_interval"] = None if entry is None else entry.get("interval")
            row[f"{name}_seeds"] = ";".join(f"{v:.6g}" for v in seed_values(entry)) or None
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
        row["replicates"] = base.get("replicates")
        row["flags"] = base.get("flags", "")
        for key, _, source in HEADLINE:
            entry = metrics.get(source) or {"skipped": NOT_COMPUTED}
            row[key] = float(entry["value"]) if "value" in entry else float("nan")
            row[f"{key}_ci_low"] = float(entry.get("ci_low", float("nan")))
            row[f"{key}_ci_high"] = float(entry.get("ci_high", float("nan")))
            row[f"{key}_skipped"] = entry.get("skipped", "")
            row[f"{key}_patients"] = entry.get("n_patients")
            row[f"{key}_seeds"] = seed_values(entry)
            row[f"{key}_interval"] = entry.get("interval", "")
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


def one_sided_p(a: list[float], b: list[float]) -> float:
    """Exact one-sided Mann–Whitney p that arm a's values tend to lie below arm b's."""
    return float(stats.mannwhitneyu(a, b, alternative="less", method="exact").pvalue)


def smallest_p(m: int, n: int) -> float:
    """The smallest p the exact test can give with m and n seeds (complete separation)."""
    return 1 / math.comb(m + n, m)


def _names(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _seed_counts(arms: pd.DataFrame, key: str) -> str:
    counts = sorted({len(v) for v in arms[f"{key}_seeds"]})
    return f"{counts[0]} seed{'s' if counts[0] > 1 else ''} per arm" if len(counts) == 1 else \
        f"{', '.join(map(str, counts[:-1]))} or {counts[-1]} seeds per arm"


def pair_claims(arms: pd.DataFrame, key: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Over every pair of arms (params order): (better, worse) pairs the rule supports, pairs with
    no difference detected, and pairs too small for the rule to ever claim anything."""
    better, none, impossible = [], [], []
    rows = list(arms.itertuples(index=False))
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            va, vb = getattr(a, f"{key}_seeds"), getattr(b, f"{key}_seeds")
            pair = (a.experiment, b.experiment)
            if smallest_p(len(va), len(vb)) > ALPHA:
                impossible.append(pair)
            elif one_sided_p(va, vb) <= ALPHA:
                better.append(pair)
            elif one_sided_p(vb, va) <= ALPHA:
                better.append(pair[::-1])
            else:
                none.append(pair)
    return better, none, impossible


def floor_status(values: list[float], floor, key: str) -> str | None:
    """Where an arm's seeds (values of `key`) lie against the real-vs-real floor's interval of
    `key` (None: no floor, or the arm has no value of `key`)."""
    if floor is None or not values or pd.isna(floor[f"{key}_ci_high"]):
        return None
    high, name = floor[f"{key}_ci_high"], key.upper()
    above = sum(v > high for v in values)
    if above == len(values):
        return f"not yet indistinguishable from real images (every seed's {name} above the real-vs-real floor)"
    if above == 0:
        return f"within the real-vs-real floor by {name} in every seed"
    return f"above the real-vs-real floor by {name} in some seeds only"


def verdict(arms: pd.DataFrame, floor, rule: VerdictRule) -> str:
    """The verdict sentence of one dataset/class: only facts that hold under the rule, and no
    number but the seed counts, so that a rerun that redraws every training (another CPU, another
    thread count) gives the same sentence whenever the arms keep their order."""
    key = rule.rank_by
    better, none, impossible = pair_claims(arms, key)
    parts = [f"`{a}` better than `{b}`" for a, b in better]
    if none:
        parts.append("no difference detected between " + "; ".join(f"`{a}` and `{b}`" for a, b in none))
    if impossible:
        parts.append("no claim possible between " + "; ".join(f"`{a}` and `{b}`" for a, b in impossible)
                     + " (too few seeds for the rule)")
    text = f"by {key.upper()} across seeds ({_seed_counts(arms, key)}): " + ("; ".join(parts) or "one arm only") + "."
    statuses: dict[str, list[str]] = {}
    for _, arm in arms.iterrows():
        status = floor_status(arm[f"{rule.floor_by}_seeds"], floor, rule.floor_by)
        if status:
            statuses.setdefault(status, []).append(arm["experiment"])
    for status, names in statuses.items():
        text += f" {_names(names)}: {status}."
    return text


def verdict_lines(markdown_text: str) -> list[str]:
    """The verdict sentences of a summary.md (one per dataset/class, as `answer` writes them)."""
    return [line for line in markdown_text.splitlines() if line.startswith("**") and VERDICT_MARK in line]


def _seeds_cell(values: list[float]) -> str:
    return ", ".join(_number(v) for v in values)


def evidence(arms: pd.DataFrame, floor, rule: VerdictRule) -> list[str]:
    """The numbers behind a verdict, one bullet each: every arm's seeds, median and interval (and
    its seeds of the floor's metric), the guard's findings per seed, each pair's p, the floor."""
    key, lines = rule.rank_by, []
    for _, arm in arms.iterrows():
        text = (f"- `{arm['experiment']}`: {key.upper()} {value_cell(arm, key)} over {len(arm[f'{key}_seeds'])} "
                f"seed(s) ({(arm[f'{key}_interval'] or 'no interval').split(':')[0]}); seeds {_seeds_cell(arm[f'{key}_seeds'])}")
        if rule.floor_by != key and arm[f"{rule.floor_by}_seeds"]:
            text += f"; {rule.floor_by.upper()} seeds {_seeds_cell(arm[f'{rule.floor_by}_seeds'])}"
        if not pd.isna(arm.get("relative_fid", float("nan"))):
            text += f"; FID {arm['relative_fid']:.2g}× the real-vs-real FID"
        text += f"; training guard: {arm['flags']}" if arm.get("flags") else "; training guard: no finding"
        lines.append(text + ".")
    rows = list(arms.iterrows())
    pairs = [(a, b) for i, (_, a) in enumerate(rows) for _, b in rows[i + 1:]]
    for a, b in pairs:
        va, vb = a[f"{key}_seeds"], b[f"{key}_seeds"]
        lines.append(f"- `{a['experiment']}` vs `{b['experiment']}`: one-sided exact Mann–Whitney p = "
                     f"{one_sided_p(va, vb):.3g} (first lower), {one_sided_p(vb, va):.3g} (second lower); "
                     f"smallest possible p with {len(va)} and {len(vb)} seeds: {smallest_p(len(va), len(vb)):.3g}.")
    if len(pairs) > 1:
        lines.append(f"- {len(pairs)} pairs compared: if no arm differs, the chance of at least one wrong "
                     f"'better' is at most {min(1.0, len(pairs) * 2 * ALPHA):.2g} (Bonferroni bound, no correction).")
    shown = [m for m in dict.fromkeys((key, rule.floor_by)) if floor is not None and floor[f"{m}_skipped"] == ""]
    if shown:
        lines.append("- real-vs-real floor: " + "; ".join(f"{m.upper()} {value_cell(floor, m)}" for m in shown) + ".")
    return lines


def answer(table: pd.DataFrame, rule: VerdictRule = VerdictRule()) -> list[str]:
    """Per dataset/class: the verdict sentence (`rule`) on its own line, then the numbers
    behind it as bullets; per paired experiment, its held-out SSIM."""
    key, lines = rule.rank_by, []
    is_base = table["experiment"].str.startswith("baseline")
    for (dataset, cls), group in table[~is_base].groupby(["dataset", "class"], sort=False):
        arms = group[(group[f"{key}_skipped"] == "") & group[f"{key}_seeds"].map(len).gt(0)]
        if arms.empty:
            continue
        floors = table[is_base & (table["dataset"] == dataset) & (table["class"] == cls)]
        floor = None if floors.empty else floors.iloc[0]
        lines.append(f"**{dataset} / {cls}**, {verdict(arms, floor, rule)}")
        lines.append("\n".join(evidence(arms, floor, rule)))
    paired = table[~is_base & (table["paired_ssim_skipped"] == "")]
    for _, row in paired.iterrows():
        lines.append(f"**{row['dataset']}**: label map → image (`{row['experiment']}`), held-out SSIM "
                     f"{value_cell(row, 'paired_ssim')} over {row['n_real']} pairs "
                     f"(median of {len(row['paired_ssim_seeds'])} seed(s)).")
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
        "- rel. FID: FID ÷ the baseline's FID (Woodland et al. 2024), interval by a jackknife over patients. The baseline "
        "compares half-size sets and FID grows as n shrinks, so a generator indistinguishable from "
        "real images scores below 1 (≈ 0.5 when n gen = n real): compare rows of similar n.",
        f"- precision, recall (Naeem et al. 2020, k-NN on {feature_label(table, 'precision')}): higher is better.",
        "- diversity ratio: mean pairwise SSIM among generated ÷ among real; > 1 suggests collapse.",
        f"- memorisation: share of generated images closer ({feature_label(table, 'memorisation_share')}) to a "
        "training image than the 5th percentile of held-out-to-train distances; ~0.05 = no copying, 1 = copies.",
        "- AUC gain: classifier AUC trained on real + synthetic minus on real only, tested on real.",
        "- SSIM (paired): label map → image experiments, generated vs real slice of each held-out "
        "pair, interval over patients.",
        "- ⚠: the training guard's findings, counted per seed (mode collapse: generated images far less "
        "different from each other than real ones, train.divergence).",
    ]


def no_verdict(rule: VerdictRule) -> str:
    return (f"(no verdict: no generator has a {rule.rank_by.upper()} to compare. If evaluate.metrics does not "
            f"compute {rule.rank_by}, add it there or set evaluate.verdict.rank_by to a metric it computes.)\n")


def markdown(table: pd.DataFrame, rule: VerdictRule = VerdictRule()) -> str:
    """summary.md from headline_table: skipped cells as `– (a)` with the reasons below."""
    codes: dict[str, str] = {}
    users: dict[str, list[str]] = {}
    lines = []
    for _, row in table.iterrows():
        name = row["experiment"] + (f" ⚠ {row['flags']}" if row.get("flags") else "")
        seeds = "–" if pd.isna(row.get("replicates")) else str(int(row["replicates"]))
        cells = [name, f"{row['dataset']} / {row['class']}", f"{row['n_real']}/{row['n_fake']}", seeds]
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
    header = ["experiment", "dataset / class", "n real/gen", "seeds"] + [title for _, title, _ in HEADLINE]
    notes = [f"- ({code}) {', '.join(users[code])}: {reason}" for reason, code in codes.items()]
    return "\n".join([
        "# medgan metrics",
        "",
        "Each experiment is trained, sampled and evaluated under several seeds (the `seeds` column; README "
        "\"Seeds as replicates\"). An experiment's number: the median over its seeds (a typical training run) [95% across-seed interval "
        "for that median: Student t over the seed values, clipped to the metric's range; none with 2 seeds; with 1 seed, the "
        "evaluation's own 95% CI of that one training draw]. Every seed's value is in summary.csv and the "
        "JSONs. Baseline rows: value [95% interval over held-out patients; none below 5 patients]; they compare two disjoint halves of the real "
        "held-out images (split by patient): read every row against its dataset/class's baseline. "
        "Everything else (KID's std, relative KID/FRD, density, coverage, paired and utility scores, "
        "which Inception weights) is in summary.csv and the JSONs.",
        "",
        *legend(table),
        "",
        "## What the numbers say",
        "",
        rule.text(),
        "",
        *([line + "\n" for line in answer(table, rule)] or [no_verdict(rule)]),
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
            "jackknife]; the same U-Net budget and seed for every arm.", "",
            "| experiment | trained on | Dice | lesion sensitivity | test slices / patients | train images | chance Dice |",
            "|---|---|---|---|---|---|---|", *rows, ""]


def summarize(params: dict) -> pd.DataFrame:
    """Write summary.csv (everything) and summary.md (the headline table); return the former."""
    table = full_table(params)
    write_text(paths.SUMMARY_CSV, table.to_csv(index=False))
    write_text(paths.SUMMARY_MD, "\n".join([markdown(headline_table(params), VerdictRule.of(params)),
                                             *segmentation_section(params)]))
    write_summary_provenance(params)
    return table
