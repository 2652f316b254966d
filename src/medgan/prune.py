"""Outputs of experiments and datasets that params.yaml no longer has.

results/ must hold exactly what the current params produce: a grid or metrics file of an
experiment that was renamed or removed would otherwise sit beside the current ones, be
committed, and be read as a current result. `medgan summarize` (the stage that sees every
experiment) removes them; tests/test_results_current.py checks the committed results/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from . import paths

# Readers' Turing-test answers are people's work, not outputs: never removed.
KEPT = {paths.TURING_ANSWERS}


def _patterns(placeholder: str) -> list[str]:
    """Every per-experiment / per-dataset output pattern under results/ (paths.py names them)."""
    names = [getattr(paths, n) for n in dir(paths) if isinstance(getattr(paths, n), str)]
    # a per-replicate output belongs to its experiment's folder (results/models/{experiment}/r0.pt)
    owned = [p.split("/r{replicate}")[0] for p in names if "{" + placeholder + "}" in p
             and p.startswith("results/") and p not in KEPT]
    return list(dict.fromkeys(owned))


PER_EXPERIMENT, PER_DATASET = _patterns("experiment"), _patterns("dataset")


def _owner_pattern(pattern: str, placeholder: str) -> tuple[str, re.Pattern]:
    """('results/grids/*.png', regex capturing the name) for a pattern with one placeholder."""
    prefix, suffix = pattern.split("{" + placeholder + "}")
    regex = re.compile(re.escape(prefix) + r"([^/]+?)" + re.escape(suffix) + "$")
    return prefix + "*" + suffix, regex


def stale_outputs(params: dict, root: Path = Path(".")) -> list[Path]:
    """Files and folders under results/ made for an experiment or dataset not in `params`."""
    current = {"experiment": set(params["experiments"]), "dataset": set(params["datasets"])}
    stale = []
    for placeholder, patterns in (("experiment", PER_EXPERIMENT), ("dataset", PER_DATASET)):
        for pattern in patterns:
            glob, regex = _owner_pattern(pattern, placeholder)
            for found in sorted(root.glob(glob)):
                match = regex.match(found.relative_to(root).as_posix())
                if match and match.group(1) not in current[placeholder]:
                    stale.append(found)
    return stale


def remove_stale(params: dict, root: Path = Path(".")) -> list[Path]:
    removed = stale_outputs(params, root)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        print(f"removed {path}: its experiment or dataset is no longer in params.yaml")
    return removed
