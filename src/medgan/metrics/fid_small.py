"""FID at a small fixed n (the LiTS thesis scored 29 generated vs 29 real images), beside the
full-n FID: its 95% range over random draws of n vs n shows how much of such a number is the
draw. `evaluate.fid_small_n` sets n."""

from __future__ import annotations

import numpy as np

from .fid import frechet, frechet_fast

NAMES = ["fid_small"]


def compute(inp) -> dict:
    from .common import MetricSkipped, inception_features, inception_record, number

    real, fake = inception_features(inp, "FID at small n")
    n = min(inp.settings["fid_small_n"], len(real), len(fake))
    if n < 2:
        raise MetricSkipped("FID at small n needs at least 2 real and 2 generated images")
    rng = np.random.default_rng(inp.seed)
    draw = lambda: (real[rng.choice(len(real), n, replace=False)],  # noqa: E731
                    fake[rng.choice(len(fake), n, replace=False)])
    value = frechet(*draw())
    ci = None
    if inp.settings["bootstrap"]:
        spread = [frechet_fast(*draw()) for _ in range(inp.settings["bootstrap"])]
        ci = tuple(np.percentile(spread, [2.5, 97.5]))
    return {"fid_small": number(value, inp, ci, n, n, interval="95% range over random draws of n vs n",
                                **inception_record(inp))}
