"""Visual Turing test: the blinded page and key (on tiny prepared data), and the scoring."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgan import cli, paths, turing


def key_of(n_real: int, n_synthetic: int) -> dict:
    items = [{"id": f"r{i}", "truth": "real"} for i in range(n_real)]
    items += [{"id": f"s{i}", "truth": "synthetic"} for i in range(n_synthetic)]
    return {"experiment": "x", "test_id": "abc", "items": items}


def answers_csv(path, key: dict, reader: str, answer_of) -> str:
    rows = [{"test_id": key["test_id"], "reader": reader, "image_id": it["id"], "answer": answer_of(it),
             "confidence": "3", "answered_at": "2026-12-01T00:00:00Z"} for it in key["items"]]
    pd.DataFrame(rows, columns=turing.ANSWER_COLUMNS).to_csv(path, index=False)
    return str(path)


def test_fleiss_kappa_matches_fleiss_1971_worked_example():
    # The 10 subjects x 5 categories, 14 raters table of Fleiss (1971); kappa = 0.210.
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert turing.fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)
    assert turing.fleiss_kappa(np.array([[2, 0], [0, 2]])) == pytest.approx(1.0)
    assert turing.fleiss_kappa(np.array([[2, 0], [2, 0]])) is None  # one category only: undefined


def test_a_reader_answering_from_the_key_scores_one_and_the_inverse_zero(tmp_path):
    key = key_of(10, 10)
    perfect = answers_csv(tmp_path / "a.csv", key, "a", lambda it: it["truth"])
    inverse = answers_csv(tmp_path / "b.csv", key, "b", lambda it: "real" if it["truth"] == "synthetic" else "synthetic")
    result = turing.score(key, [perfect, inverse])
    a, b = result["readers"]["a"], result["readers"]["b"]
    assert a["accuracy"]["value"] == 1.0 and a["sensitivity"]["value"] == 1.0 and a["specificity"]["value"] == 1.0
    assert a["accuracy"]["ci_low"] > 0.8 and a["binomial_p"] < 1e-4
    assert b["accuracy"]["value"] == 0.0
    assert result["pooled"]["accuracy"]["value"] == 0.5 and result["pooled"]["n_answered"] == 40
    assert result["agreement"]["fleiss_kappa"] < 0  # the two readers always disagree
    assert "Fleiss' kappa" in turing.score_text(result)


def test_random_readers_are_near_chance(tmp_path):
    key = key_of(20, 20)
    rng = np.random.default_rng(1)
    files = [answers_csv(tmp_path / f"{r}.csv", key, f"reader{r}", lambda it: str(rng.choice(turing.ANSWERS)))
             for r in range(50)]
    result = turing.score(key, files)
    assert result["pooled"]["accuracy"]["value"] == pytest.approx(0.5, abs=0.05)
    assert result["pooled"]["binomial_p"] > 0.01
    assert abs(result["agreement"]["fleiss_kappa"]) < 0.05


def test_answer_files_that_do_not_fit_the_key_are_refused_with_their_name(tmp_path):
    key = key_of(2, 2)
    other = answers_csv(tmp_path / "other.csv", {**key, "test_id": "zzz"}, "a", lambda it: "real")
    with pytest.raises(turing.AnswersError, match="other.csv.*test"):
        turing.score(key, [other])
    bad = tmp_path / "bad.csv"
    answers_csv(bad, key, "a", lambda it: "fake")
    with pytest.raises(turing.AnswersError, match="bad.csv.*'real' or 'synthetic'"):
        turing.score(key, [bad])
    (tmp_path / "cols.csv").write_text("reader,answer\na,real\n")
    with pytest.raises(turing.AnswersError, match="cols.csv: missing column"):
        turing.score(key, [tmp_path / "cols.csv"])


@pytest.fixture
def sampled(prepared):
    """Fake 'generated' images (noise) in the samples layout for tiny_dcgan_tumour."""
    folder = paths.path(paths.SAMPLES, experiment="tiny_dcgan_tumour")
    (folder / "tumour").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(folder / f"tumour/{i:05d}.png")
        rows.append({"path": f"tumour/{i:05d}.png", "class": "tumour", "kind": "fake", "pair": ""})
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)
    return prepared


def test_page_is_balanced_shuffled_by_the_seed_and_hides_the_key(sampled, capsys):
    assert cli.main(["turing", "tiny_dcgan_tumour"]) == 0
    page = paths.path(paths.TURING_PAGE, experiment="tiny_dcgan_tumour").read_text()
    key = json.loads(paths.path(paths.TURING_KEY, experiment="tiny_dcgan_tumour").read_text())
    assert key["n_real"] == key["n_synthetic"] > 0
    truths = [it["truth"] for it in key["items"]]
    assert truths != sorted(truths)  # interleaved, not all real then all synthetic
    items = json.loads(re.search(r'<script id="items" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert [it["id"] for it in items] == [it["id"] for it in key["items"]]
    assert all(set(it) == {"id", "src"} and it["src"].startswith("data:image/png;base64,") for it in items)
    assert "key.json" not in page and "samples" not in page and "slices" not in page
    assert all(re.fullmatch(r"[0-9a-f]{8}", it["id"]) for it in items)
    again = paths.path(paths.TURING_PAGE, experiment="tiny_dcgan_tumour").read_text()
    assert cli.main(["turing", "tiny_dcgan_tumour"]) == 0
    assert paths.path(paths.TURING_PAGE, experiment="tiny_dcgan_tumour").read_text() == again  # same seed, same page


def test_turing_score_cli_reads_the_answers_folder_and_explains_missing_files(sampled, capsys):
    assert cli.main(["turing-score", "tiny_dcgan_tumour"]) == 2
    assert "medgan turing tiny_dcgan_tumour" in capsys.readouterr().err
    cli.main(["turing", "tiny_dcgan_tumour"])
    assert cli.main(["turing-score", "tiny_dcgan_tumour"]) == 2
    assert "no answer files" in capsys.readouterr().err
    key = turing.load_key("tiny_dcgan_tumour")
    answers = paths.path(paths.TURING_ANSWERS, experiment="tiny_dcgan_tumour")
    answers.mkdir(parents=True)
    answers_csv(answers / "dr_a.csv", key, "dr_a", lambda it: it["truth"])
    assert cli.main(["turing-score", "tiny_dcgan_tumour", "--json", "scores.json"]) == 0
    assert "| dr_a" in capsys.readouterr().out
    assert json.loads(open("scores.json").read())["readers"]["dr_a"]["accuracy"]["value"] == 1.0


def test_answers_to_an_earlier_page_are_scored_with_its_archived_key(sampled, capsys):
    """Rebuilding the page (other params or samples) makes a new test; readers who answered the
    old page keep a key: every key is also written as keys/<test_id>.json (not a declared
    output, so Snakemake and DVC, which delete key.json before the rerun, leave it)."""
    name = "tiny_dcgan_tumour"
    assert cli.main(["turing", name]) == 0
    old = turing.load_key(name)
    answers = paths.path(paths.TURING_ANSWERS, experiment=name)
    answers.mkdir(parents=True)
    answers_csv(answers / "dr_a.csv", old, "dr_a", lambda it: it["truth"])
    sampled["turing"]["n_per_kind"] = 3  # the page is rebuilt with other items
    import yaml

    open("params.yaml", "w").write(yaml.safe_dump(sampled))
    paths.path(paths.TURING_KEY, experiment=name).unlink()  # Snakemake and DVC delete outputs before a rerun
    assert cli.main(["turing", name]) == 0
    assert turing.load_key(name)["test_id"] != old["test_id"]
    assert json.loads(turing.archived_key_path(name, old["test_id"]).read_text()) == old
    capsys.readouterr()
    assert cli.main(["turing-score", name]) == 0
    out = capsys.readouterr().out
    assert f"test {old['test_id']}" in out and "earlier page" in out and "| dr_a" in out

    answers_csv(answers / "dr_b.csv", turing.load_key(name), "dr_b", lambda it: it["truth"])
    assert cli.main(["turing-score", name]) == 2
    assert "2 different tests" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01binary", b"PK\x03\x04 an xlsx, not a csv"])
def test_an_answer_file_that_is_not_a_csv_is_named(tmp_path, content):
    path = tmp_path / "answers.csv"
    path.write_bytes(content)
    with pytest.raises(turing.AnswersError, match=str(path)):
        turing.score(key_of(2, 2), [path])


def test_a_damaged_key_is_named(sampled, capsys):
    assert cli.main(["turing", "tiny_dcgan_tumour"]) == 0
    paths.path(paths.TURING_KEY, experiment="tiny_dcgan_tumour").write_text("{not json")
    assert cli.main(["turing-score", "tiny_dcgan_tumour", "x.csv"]) == 2
    assert "key.json: damaged JSON" in capsys.readouterr().err
