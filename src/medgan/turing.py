"""Visual Turing test: a blinded page of real held-out and generated images that a reader
classifies one at a time, and the scoring of the readers' answer files.

`medgan turing EXPERIMENT` writes results/turing/<experiment>/index.html (one self-contained
file: images embedded as PNG data URIs under opaque ids, in an order shuffled by the seed)
and key.json beside it (which id is real, which synthetic). The page never references the key:
hand readers index.html alone. Answers come back as CSVs exported by the page
(test_id, reader, image_id, answer, confidence, answered_at); put them in
results/turing/<experiment>/answers/ for the report, and score them with
`medgan turing-score EXPERIMENT CSV...`.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import config, paths
from .atomic import write_json, write_text
from .errors import MedganError
from .metrics.common import load_gray
from .render import data_uri_of_array, render

ANSWER_COLUMNS = ["test_id", "reader", "image_id", "answer", "confidence", "answered_at"]
ANSWERS = ("real", "synthetic")


class AnswersError(MedganError, ValueError):
    """An answer file does not fit the test's key; the message names the file."""


# ---------------------------------------------------------------------------------------------
# the page

def candidates(params: dict, name: str) -> tuple[list[str], list[str]]:
    """(real held-out files, generated files) of the experiment's classes."""
    from .evaluate import classes_named, manifest_with_files, samples_with_files

    exp = config.experiment(params, name)
    classes = classes_named(params, exp["dataset"], exp["class"])
    manifest, samples = manifest_with_files(exp["dataset"]), samples_with_files(name)
    real = manifest[(manifest["split"] == params["evaluate"]["real_split"]) & manifest["class"].isin(classes)]
    fake = samples[(samples["kind"] == "fake") & samples["class"].isin(classes)]
    if real.empty or fake.empty:
        raise config.ConfigError(f"turing test of '{name}': {len(real)} real held-out and {len(fake)} generated "
                                 "images — it needs at least one of each (run sample first)")
    return list(real["file"]), list(fake["file"])


def test_items(params: dict, name: str) -> list[dict]:
    """The blinded, shuffled items: as many real as generated images, each with an opaque id."""
    real, fake = candidates(params, name)
    n = min(params["turing"]["n_per_kind"], len(real), len(fake))
    rng = np.random.default_rng([params["seed"], zlib.crc32(name.encode())])
    chosen = ([(f, "real") for f in rng.choice(real, n, replace=False)]
              + [(f, "synthetic") for f in rng.choice(fake, n, replace=False)])
    order = rng.permutation(len(chosen))
    ids: list[str] = []
    while len(ids) < len(chosen):
        image_id = rng.bytes(4).hex()
        if image_id not in ids:
            ids.append(image_id)
    return [{"id": image_id, "file": str(chosen[k][0]), "truth": chosen[k][1]} for image_id, k in zip(ids, order)]


def build(params: dict, name: str) -> dict:
    """Write the page and its key; return the key."""
    exp = config.experiment(params, name)
    items = test_items(params, name)
    size = tuple(params["datasets"][exp["dataset"]]["image_size"])
    pixels = (load_gray([it["file"] for it in items], size) * 255).round().astype(np.uint8)
    shown = [{"id": it["id"], "src": data_uri_of_array(image)} for it, image in zip(items, pixels)]
    test_id = hashlib.sha256(json.dumps([name, params["seed"], [it["id"] for it in items]]).encode()).hexdigest()[:12]
    page = render("turing.html.j2", test_id=test_id, items=shown, display_px=params["turing"]["display_px"])
    key = {"experiment": name, "test_id": test_id, "seed": params["seed"],
           "real_split": params["evaluate"]["real_split"],
           "n_real": sum(it["truth"] == "real" for it in items),
           "n_synthetic": sum(it["truth"] == "synthetic" for it in items),
           "items": [{"id": it["id"], "truth": it["truth"], "source": it["file"]} for it in items]}
    previous = _readable_key(paths.path(paths.TURING_KEY, experiment=name))
    if previous and previous.get("test_id") != test_id:
        archive_key(name, previous)  # readers may hold the old page: its key must outlive it
    write_text(paths.path(paths.TURING_PAGE, experiment=name), page)
    write_json(paths.path(paths.TURING_KEY, experiment=name), key)
    archive_key(name, key)
    return key


def archived_key_path(name: str, test_id: str) -> Path:
    """keys/<test_id>.json beside key.json: every key a page was ever built with, so that answers
    to an earlier page (rebuilt since with other params or samples) can still be scored."""
    return paths.path(paths.TURING_KEY, experiment=name).parent / "keys" / f"{test_id}.json"


def archive_key(name: str, key: dict) -> None:
    path = archived_key_path(name, str(key["test_id"]))
    if not path.exists():
        write_json(path, key)


def _readable_key(path: Path) -> dict | None:
    try:
        key = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return key if isinstance(key, dict) and "test_id" in key else None


# ---------------------------------------------------------------------------------------------
# scoring

def read_answers(path: Path, key: dict) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:  # ValueError: not UTF-8
        raise AnswersError(f"{path}: cannot read the answer file ({str(err).strip().splitlines()[0]}) — export "
                           f"it again from the test page (a CSV)") from None
    missing = [c for c in ANSWER_COLUMNS if c not in frame.columns]
    if missing:
        raise AnswersError(f"{path}: missing column(s) {missing}; export the answers from the test page "
                           f"(columns {', '.join(ANSWER_COLUMNS)})")
    wrong_test = sorted(set(frame["test_id"]) - {key["test_id"]})
    if wrong_test:
        raise AnswersError(f"{path}: answers to test {wrong_test}, but the key of '{key['experiment']}' is for "
                           f"test {key['test_id']}: score each file against its own experiment")
    truth = {it["id"]: it["truth"] for it in key["items"]}
    unknown = sorted(set(frame["image_id"]) - set(truth))
    bad = sorted(set(frame["answer"]) - set(ANSWERS))
    if unknown or bad:
        raise AnswersError(f"{path}: " + "; ".join(
            ([f"image ids not in the key: {unknown[:5]}"] if unknown else [])
            + ([f"answers must be 'real' or 'synthetic', got {bad[:5]}"] if bad else [])))
    frame = frame.drop_duplicates(["reader", "image_id"], keep="last")  # a changed answer: the last one counts
    return frame.assign(truth=frame["image_id"].map(truth), source_file=str(path))


def proportion(k: int, n: int) -> dict:
    """k/n with a Wilson 95% CI (scipy)."""
    if n == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "k": 0, "n": 0}
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return {"value": k / n, "ci_low": float(ci.low), "ci_high": float(ci.high), "k": int(k), "n": int(n)}


def reader_scores(answers: pd.DataFrame) -> dict:
    """Accuracy, sensitivity (synthetic images called synthetic), specificity (real called real),
    balanced accuracy, and a two-sided binomial test of accuracy against chance (0.5)."""
    said_fake, is_fake = answers["answer"] == "synthetic", answers["truth"] == "synthetic"
    correct = int((said_fake == is_fake).sum())
    n = len(answers)
    sens = proportion(int((said_fake & is_fake).sum()), int(is_fake.sum()))
    spec = proportion(int((~said_fake & ~is_fake).sum()), int((~is_fake).sum()))
    balanced = (None if sens["value"] is None or spec["value"] is None
                else (sens["value"] + spec["value"]) / 2)
    return {"n_answered": n, "accuracy": proportion(correct, n), "sensitivity": sens, "specificity": spec,
            "balanced_accuracy": balanced,
            "binomial_p": float(stats.binomtest(correct, n, 0.5).pvalue) if n else None}


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' kappa of an (items x categories) count table, every item rated by the same number
    of raters. Written out (ten lines) rather than adding statsmodels for one function."""
    raters = table.sum(axis=1)
    if len(table) == 0 or raters.min() < 2 or raters.min() != raters.max():
        return None
    n = raters[0]
    p_item = ((table ** 2).sum(axis=1) - n) / (n * (n - 1))
    p_cat = table.sum(axis=0) / table.sum()
    expected = float((p_cat ** 2).sum())
    if expected >= 1.0:  # every rating in one category: agreement beyond chance is undefined
        return None
    return float((p_item.mean() - expected) / (1 - expected))


def agreement(answers: pd.DataFrame) -> dict:
    """Fleiss' kappa over the images every reader answered (needs >= 2 readers)."""
    readers = answers["reader"].unique()
    if len(readers) < 2:
        return {"fleiss_kappa": None, "n_items": 0, "why": "needs at least 2 readers"}
    per_item = answers.groupby("image_id")
    common = [i for i, rows in per_item if rows["reader"].nunique() == len(readers)]
    rows = answers[answers["image_id"].isin(common)]
    table = pd.crosstab(rows["image_id"], rows["answer"]).reindex(columns=list(ANSWERS), fill_value=0)
    kappa = fleiss_kappa(table.to_numpy())
    return {"fleiss_kappa": kappa, "n_items": len(common),
            "why": "" if kappa is not None else "undefined: no images answered by all readers, or one answer only"}


def score(key: dict, files: list[Path]) -> dict:
    if not files:
        raise AnswersError(f"no answer files for '{key['experiment']}': pass the CSVs exported by the test page")
    answers = pd.concat([read_answers(Path(f), key) for f in files], ignore_index=True)
    answers = answers.drop_duplicates(["reader", "image_id"], keep="last")
    readers = {reader: reader_scores(rows) for reader, rows in answers.groupby("reader", sort=True)}
    return {"experiment": key["experiment"], "test_id": key["test_id"], "n_images": len(key["items"]),
            "files": [str(f) for f in files], "readers": readers, "pooled": reader_scores(answers),
            "agreement": agreement(answers)}


def load_key(name: str) -> dict:
    from .atomic import read_json

    path = paths.path(paths.TURING_KEY, experiment=name)
    if not path.exists():
        raise config.ConfigError(f"{path} not found: run `medgan turing {name}` first")
    key = read_json(path, f"restore it from {archived_key_path(name, 'TEST_ID').parent}/ or your copy; "
                          f"rebuilding the page makes a new test")
    if not isinstance(key, dict) or not {"test_id", "items", "experiment"} <= set(key):
        raise AnswersError(f"{path}: not a Turing key (test_id, items, experiment) — restore it from "
                           f"{archived_key_path(name, 'TEST_ID').parent}/ or your copy")
    return key


def answered_tests(files: list[Path]) -> set[str]:
    """The test ids the answer files answer (unreadable files are left to read_answers)."""
    tests = set()
    for path in files:
        try:
            tests |= set(pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["test_id"])["test_id"])
        except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
    return tests


def key_for(name: str, files: list[Path]) -> dict:
    """The key of the test the answer files answer: key.json, or an archived key of an earlier
    page of this experiment (keys/<test_id>.json)."""
    key = load_key(name)
    tests = answered_tests(files)
    if len(tests) > 1:
        raise AnswersError(f"the answer files answer {len(tests)} different tests of '{name}' ({', '.join(sorted(tests))}): "
                           f"the page was rebuilt between readers — score each test's files separately "
                           f"(`medgan turing-score {name} FILE...`)")
    if tests and key["test_id"] not in tests:
        archived = archived_key_path(name, next(iter(tests)))
        if archived.exists():
            print(f"answers to an earlier page of '{name}': scored with its key {archived}")
            return _readable_key(archived) or key
    return key


def answer_files(name: str) -> list[Path]:
    return sorted(paths.path(paths.TURING_ANSWERS, experiment=name).glob("*.csv"))


def score_table(result: dict) -> pd.DataFrame:
    """One row per reader and a pooled row: value [95% CI] of each rate."""
    def cell(p):
        return "—" if p["value"] is None else f"{p['value']:.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}] ({p['k']}/{p['n']})"

    rows = []
    for reader, s in [*result["readers"].items(), ("pooled", result["pooled"])]:
        rows.append({"reader": reader, "answered": s["n_answered"], "accuracy": cell(s["accuracy"]),
                     "sensitivity (synthetic spotted)": cell(s["sensitivity"]),
                     "specificity (real kept)": cell(s["specificity"]),
                     "balanced accuracy": "—" if s["balanced_accuracy"] is None else f"{s['balanced_accuracy']:.2f}",
                     "binomial p vs 0.5": "—" if s["binomial_p"] is None else f"{s['binomial_p']:.3g}"})
    return pd.DataFrame(rows)


def score_text(result: dict) -> str:
    kappa = result["agreement"]
    agree = (f"Fleiss' kappa {kappa['fleiss_kappa']:.3f} over {kappa['n_items']} images answered by every reader"
             if kappa["fleiss_kappa"] is not None else f"Fleiss' kappa: {kappa['why']}")
    return (f"visual Turing test of {result['experiment']} (test {result['test_id']}, {result['n_images']} images)\n"
            + score_table(result).to_markdown(index=False) + f"\n\n{agree}\n"
            "Rates with Wilson 95% CIs; pooled rows treat every answer as independent.\n")
