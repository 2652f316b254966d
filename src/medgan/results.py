"""Writing metric files: every float rounded to SIGNIFICANT_DIGITS at write time (so thread-order
noise in the last digits of a value or a CI bound never reaches git, and the same machine
reproduces the file byte for byte), and the run's provenance in a sidecar file that the metrics
file names. The sidecar is not a DVC metric: its commit hash must not read as a metric change."""

from __future__ import annotations

import math
from pathlib import Path

from . import paths, provenance
from .atomic import write_json

SIGNIFICANT_DIGITS = 6


def rounded(data, digits: int = SIGNIFICANT_DIGITS):
    """`data` with every finite float rounded to `digits` significant digits (ints, bools,
    strings, None, inf and nan kept as they are)."""
    if isinstance(data, dict):
        return {k: rounded(v, digits) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [rounded(v, digits) for v in data]
    if isinstance(data, float) and math.isfinite(data):
        return float(f"{data:.{digits}g}")
    return data


def provenance_path(stage: str, target: str | None, replicate: int = 0) -> Path:
    return {"evaluate": lambda: paths.path(paths.EVALUATE_PROVENANCE, experiment=target, replicate=replicate),
            "aggregate": lambda: paths.path(paths.AGGREGATE_PROVENANCE, experiment=target),
            "baseline": lambda: paths.path(paths.BASELINE_PROVENANCE, dataset=target),
            "summarize": lambda: paths.path(paths.PROVENANCE_SUMMARY)}[stage]()


def write_metrics(out: str | Path, data: dict, params: dict, stage: str, target: str, replicate: int = 0,
                  **extra) -> dict:
    """Write a metrics JSON (rounded) and its provenance sidecar; `extra` goes to
    provenance.collect (feature_weights, training)."""
    sidecar = provenance_path(stage, target, replicate)
    extra.setdefault("feature_weights", provenance.inception_weight_files(params["evaluate"].get("inception_weights")))
    write_json(sidecar, provenance.collect(stage, params, target, **extra))
    data = {**rounded(data), "provenance": sidecar.as_posix()}
    write_json(out, data)
    return data


def write_summary_provenance(params: dict) -> None:
    """summary.csv's sidecar: the summarize run's block and the block of every metrics file
    that fed a row (rows may come from runs at other commits): each experiment's aggregate, the
    evaluate run of each of its replicates (found by the path scheme), each baseline."""
    import json

    from . import config

    sources = [paths.path(paths.METRICS, experiment=e) for e in params["experiments"]]
    sources += [paths.path(paths.BASELINE, dataset=d) for d in params["datasets"]]
    blocks = {}
    for source in sources:
        sidecar = Path(json.loads(source.read_text()).get("provenance") or "")
        blocks[source.as_posix()] = (json.loads(sidecar.read_text()) if sidecar.is_file()
                                     else {"recorded": "no (metrics file written before provenance)"})
    for name in params["experiments"]:
        for replicate in range(config.replicates_of(params, name)):
            sidecar = paths.path(paths.EVALUATE_PROVENANCE, experiment=name, replicate=replicate)
            if sidecar.is_file():
                key = paths.path(paths.REPLICATE_METRICS, experiment=name, replicate=replicate).as_posix()
                blocks[key] = json.loads(sidecar.read_text())
    write_json(provenance_path("summarize", None), {**provenance.collect("summarize", params), "sources": blocks})
