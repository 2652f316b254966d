"""The 95% intervals hold what they say: benchmarks/bench_calibration.py --quick (200 draws of a
6-patient held-out set with a per-patient random effect, known true values) must give every
listed coverage within [0.90, 0.99]. Binomial error at 200 draws is ~0.015, so a method that
covers 0.85 or 1.00 fails here; ~25 s of CPU, minutes on a loaded machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_calibration.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_calibration", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_listed_interval_covers_its_true_value_95_percent_of_the_time(tmp_path):
    _bench().main(["--quick", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "calibration_quick.csv")
    within = table[table["patients"].notna()]
    assert set(within["interval"]) == {"fid", "kid", "prdc_precision", "prdc_recall", "prdc_coverage", "relative_fid"}
    assert (within["draws"] >= 200).all() and (within["no_interval"] == 0).all()
    for row in within.itertuples():
        assert 0.90 <= row.coverage <= 0.99, (row.interval, row.coverage)
    seeds = table[table["patients"].isna()].set_index("scenario")["coverage"]
    no_collapse = seeds[seeds.index.str.endswith("probability 0")]
    assert len(no_collapse) == 1 and 0.90 <= no_collapse.iloc[0] <= 0.99
    # Honest about what it depends on: rare collapses (a mixture) make 3 seeds under-cover.
    assert seeds[seeds.index.str.endswith("probability 0.2")].iloc[0] < no_collapse.iloc[0] - 0.05
    note = (tmp_path / "calibration_quick.md").read_text()
    assert "interval needs >= 5 held-out patients, this set has 4" in note
