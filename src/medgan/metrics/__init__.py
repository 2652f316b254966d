"""Metric registry: one small module per metric, selected by name in params.yaml.

Every metric takes (real image paths, generated image paths, evaluate settings) and returns
a dict with at least `n_real` and `n_fake`, and either `value` or `skipped` (the reason).
"""

from __future__ import annotations

from . import fid, frd

REGISTRY = {"frd": frd.compute, "fid": fid.compute}
