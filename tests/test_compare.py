"""medgan compare-metrics (beside the raw `dvc metrics diff` in a pull request): which changes of
a mean over seeds exceed the across-seed interval, and whether the verdict sentence changed."""

import json

from medgan import cli, compare, paths, replicates


def entry(seeds: list[float]) -> dict:
    out = {"value": sum(seeds) / len(seeds), "seeds": [{"value": v} for v in seeds]}
    return {**out, **replicates.across_seed_interval(seeds, "kid")}


def write(folder, kids: dict[str, list[float]], verdict: str):
    (folder / "experiments").mkdir(parents=True)
    for name, seeds in kids.items():
        (folder / "experiments" / f"{name}.json").write_text(json.dumps({"experiment": name,
                                                                       "metrics": {"kid": entry(seeds)}}))
    (folder / "summary.md").write_text(f"# medgan metrics\n\n{verdict}\n\n- `a`: KID 0.2\n")
    return folder


VERDICT = "**d / tumour**, by KID across seeds (3 seeds per arm): `a` better than `b`."


def test_a_change_within_the_seed_spread_is_noise_and_one_beyond_it_is_signal(tmp_path):
    old = write(tmp_path / "old", {"a": [0.15, 0.17, 0.22], "b": [0.26, 0.27, 0.28]}, VERDICT)
    new = write(tmp_path / "new", {"a": [0.16, 0.19, 0.2], "b": [0.5, 0.52, 0.55]}, VERDICT)
    text = compare.report(old, new)
    assert "1 of 2 changed headline numbers" in text
    assert "| b | KID | 0.27 | 0.5233 |" in text and "| a | KID" not in text
    assert "The verdict is unchanged." in text


def test_a_changed_verdict_and_numbers_without_an_interval_are_said(tmp_path):
    old = write(tmp_path / "old", {"a": [0.15, 0.2], "b": [0.3]}, VERDICT)
    other = VERDICT.replace("`a` better than `b`", "no difference detected between `a` and `b`")
    new = write(tmp_path / "new", {"a": [0.16, 0.21], "c": [0.1]}, other)
    text = compare.report(old, new)
    assert "0 of 1 changed headline numbers" in text and "cannot be judged" in text and "a KID" in text
    assert "added: c; removed: b" in text
    assert "**The verdict changed.**" in text and f"> {other}" in text and f"> {VERDICT}" in text


def test_the_cli_verb_prints_the_report_and_names_a_missing_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml needed
    old = write(tmp_path / "old", {"a": [0.15, 0.17, 0.22]}, VERDICT)
    assert cli.main(["compare-metrics", str(old), str(old)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Signal or seed noise") and "0 of 0" in out
    assert cli.main(["compare-metrics", str(tmp_path / "nowhere"), str(old)]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err


def test_the_folder_layout_follows_paths():
    assert compare.EXPERIMENTS.as_posix() == "experiments" and paths.METRICS.startswith("results/metrics/")
