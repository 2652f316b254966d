"""Metric registry: one small module per metric, selected by name in params.yaml
(`evaluate.metrics`), as in stylegan2-ada-pytorch's metric_main.

Each module has `NAMES` (the entries it reports: the summary table's columns) and
`compute(inputs: common.Inputs) -> {name: entry}`. An entry holds `value`, `ci_low`/`ci_high`
(95% interval over patients where defined, common.intervals; `ci_missing` says why not), `n_real`, `n_fake` and `seed`, or `skipped` with the reason.
A module raises common.MetricSkipped(reason) when it cannot run at all.
"""

from __future__ import annotations

from . import diversity, fid, fid_small, frd, kid, memorisation, paired, prdc, relative, segmentation, utility

REGISTRY = {
    "fid": fid,
    "fid_small": fid_small,
    "kid": kid,
    "frd": frd,
    "relative": relative,
    "prdc": prdc,
    "diversity": diversity,
    "memorisation": memorisation,
    "paired": paired,
    "utility": utility,
    "segmentation_utility": segmentation,
}
