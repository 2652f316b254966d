"""Fréchet Radiomics Distance (frd-score on pyradiomics-bhklab): weights-free, offline.

frd-score's v1 value is log(d_F^2); identical sets give -inf. We report that value as
`value` and d_F^2 itself as `frechet_squared` so that both readings are available.
"""

from __future__ import annotations

import contextlib
import io
import math


def compute(real: list[str], fake: list[str], settings: dict) -> dict:
    from frd_score import compute_frd  # heavy import (pyradiomics): only when used

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its own result line
        value = float(compute_frd([list(real), list(fake)], frd_version="v1", num_workers=1))
    return {"value": value, "frechet_squared": math.exp(value) if value > -math.inf else 0.0,
            "n_real": len(real), "n_fake": len(fake), "scale": "log(d_F^2), frd v1"}
