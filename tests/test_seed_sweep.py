"""benchmarks/seed_sweep.py: the share of seed choices for which the verdict rule separates two arms."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "seed_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("seed_sweep", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_separation_counts_the_seed_choices_the_rule_separates(sweep):
    worse, better = np.array([5.0, 6, 7, 8]), np.array([1.0, 2, 3, 4])
    assert sweep.separation(worse, better, 3) == 1.0
    assert sweep.separation(better, worse, 3) == 0.0
    # one better-arm seed (5.5) above one worse-arm seed (5): only choices without both separate
    mixed = np.array([1.0, 2, 3, 5.5])
    expected = 1 - (3 / 4) * (3 / 4)  # share of 3-of-4 choices holding both 5.0 and 5.5
    assert sweep.separation(worse, mixed, 3) == pytest.approx(expected)


def write_aggregate(root, arm, base, replicates, metrics):
    """An aggregate file (medgan aggregate's layout) whose seed i scores base + i / 10 in every metric."""
    path = root / "results/metrics/experiments" / f"{arm}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    seeds = [{"replicate": i, "seed": 100 + i, "value": base + i / 10} for i in range(replicates)]
    path.write_text(json.dumps({"metrics": {m: {"value": base, "seeds": seeds} for m in metrics}}))


def test_reads_a_runs_replicates_and_refuses_too_few(sweep, tmp_path):
    for arm, base in zip(sweep.ARMS, (2.0, 1.0)):
        write_aggregate(tmp_path, arm, base, 4, sweep.METRICS)
    table = sweep.seed_table(tmp_path)
    assert len(table) == 8 and table["replicate"].tolist() == [0, 1, 2, 3] * 2
    result = sweep.separation_table(table).set_index("metric")
    assert result.loc["KID", "DCGAN called better, 3 seeds per arm"] == 1.0
    sweep.main(["--root", str(tmp_path), "--out", str(tmp_path / "out")])
    assert "DCGAN called better" in (tmp_path / "out/seed_sweep.md").read_text()
    write_aggregate(tmp_path, sweep.ARMS[0], 2.0, 3, sweep.METRICS)
    with pytest.raises(SystemExit, match=">= 4 replicates"):
        sweep.main(["--root", str(tmp_path), "--out", str(tmp_path / "out")])
