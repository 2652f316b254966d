"""compare-metrics: what a pull request changed, told apart from seed noise.

Every number of a rerun moves (another CPU redraws every training), so the raw `dvc metrics
diff` cannot say which changes matter. This compares two results/metrics folders (the base
revision's and the workspace's): per experiment and headline metric, whether the change of the
median over seeds exceeds the across-seed 95% interval (medgan.replicates), and whether summary.md's
verdict sentences changed. metrics_report.sh prints it beside the raw diff.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import paths, replicates, summary
from .errors import MedganError

EXPERIMENTS = Path(paths.METRICS).parent.relative_to(Path(paths.SUMMARY_MD).parent)  # experiments/


class CompareError(MedganError):
    """A metrics folder is missing or unreadable; the message names it."""


def aggregates(folder: Path) -> dict[str, dict]:
    """Experiment name -> its aggregate file, from a results/metrics folder."""
    if not folder.is_dir():
        raise CompareError(f"{folder}: not a folder — pass two results/metrics folders (base, workspace)")
    found = {}
    for file in sorted((folder / EXPERIMENTS).glob("*.json")):
        try:
            found[file.stem] = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise CompareError(f"{file}: damaged JSON ({err.msg}) — rerun `medgan aggregate {file.stem}`") from None
    return found


def has_across_seed_interval(entry: dict) -> bool:
    return "ci_low" in entry and entry.get("interval", "").startswith("Student t")


def change_of(old: dict, new: dict) -> dict | None:
    """How one metric's median over seeds moved: None when either side has no value. `beyond` is True
    when either median lies outside the other run's across-seed interval, None when a side has none."""
    if "value" not in old or "value" not in new:
        return None
    out = {"old": old["value"], "new": new["value"], "beyond": None}
    if has_across_seed_interval(old) and has_across_seed_interval(new):
        out["beyond"] = not (old["ci_low"] <= new["value"] <= old["ci_high"]
                             and new["ci_low"] <= old["value"] <= new["ci_high"])
    return out


def metric_changes(old: dict[str, dict], new: dict[str, dict]) -> list[dict]:
    """Every headline metric of every experiment in both folders whose median over seeds changed."""
    rows = []
    for name in [n for n in new if n in old]:
        for _, title, source in summary.HEADLINE:
            change = change_of(old[name]["metrics"].get(source, {}), new[name]["metrics"].get(source, {}))
            if change and change["old"] != change["new"]:
                rows.append({"experiment": name, "metric": title, **change})
    return rows


def verdict_lines(folder: Path) -> list[str]:
    md = folder / Path(paths.SUMMARY_MD).name
    return summary.verdict_lines(md.read_text()) if md.is_file() else []


def _number(value: float) -> str:
    return f"{value:.4g}"


def report(old_folder: Path, new_folder: Path) -> str:
    """Markdown: the changes beyond the across-seed interval, those within it, and the verdict."""
    old, new = aggregates(Path(old_folder)), aggregates(Path(new_folder))
    changes = metric_changes(old, new)
    beyond = [c for c in changes if c["beyond"]]
    unknown = [c for c in changes if c["beyond"] is None]
    lines = ["### Signal or seed noise", "",
             f"Changes of a median over seeds beyond the across-seed 95% interval ({replicates.INTERVAL_METHOD}): "
             f"{len(beyond)} of {len(changes)} changed headline numbers."]
    if beyond:
        lines += ["", "| experiment | metric | base | workspace |", "|---|---|---|---|"]
        lines += [f"| {c['experiment']} | {c['metric']} | {_number(c['old'])} | {_number(c['new'])} |" for c in beyond]
    if unknown:
        lines += ["", f"{len(unknown)} changed number(s) cannot be judged (fewer than {replicates.MIN_SEEDS} seeds on a "
                      f"side: no across-seed interval): " + ", ".join(f"{c['experiment']} {c['metric']}" for c in unknown)
                  + "."]
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    if added or removed:
        lines += ["", f"Experiments added: {', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'}."]
    before, after = verdict_lines(Path(old_folder)), verdict_lines(Path(new_folder))
    lines += ["", "### Verdict", ""]
    if before == after:
        lines.append("The verdict is unchanged." if after else "No verdict in either summary.md.")
    else:
        lines += ["**The verdict changed.**", "", "Base:", "", *(f"> {v}" for v in before or ["(none)"]), "",
                  "Workspace:", "", *(f"> {v}" for v in after or ["(none)"])]
    return "\n".join(lines) + "\n"
