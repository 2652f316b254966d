"""summary.md labels the features PRDC and memorisation were computed on (their entries'
`features` field): Inception, or radiomics under `inception: auto` without weights."""

import pandas as pd

from medgan import summary


def _metrics(features):
    entry = {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "features": features}
    return {"prdc_precision": entry, "prdc_recall": entry, "memorisation_share_feature": entry}


def _table(monkeypatch, *features):
    rows = [({"experiment": f"e{i}", "dataset": "d", "variant": "dcgan", "class": "tumour", "n_real": 8,
              "n_fake": 8, "flags": ""}, _metrics(f)) for i, f in enumerate(features)]
    monkeypatch.setattr(summary, "records", lambda params: rows)
    return summary.headline_table({})


def _legend_lines(table):
    text = summary.markdown(table)
    precision = next(line for line in text.splitlines() if line.startswith("- precision"))
    memorisation = next(line for line in text.splitlines() if line.startswith("- memorisation"))
    return precision, memorisation


def test_radiomics_fallback_is_labelled_radiomics_not_inception(monkeypatch):
    table = _table(monkeypatch, "radiomics-93 (no Inception weights)", "radiomics-93 (no Inception weights)")
    for line in _legend_lines(table):
        assert "radiomics features (radiomics-93" in line and "Inception features" not in line


def test_inception_rows_are_labelled_inception(monkeypatch):
    for line in _legend_lines(_table(monkeypatch, "inception-2048")):
        assert "Inception features" in line and "radiomics" not in line


def test_rows_on_different_features_say_so(monkeypatch):
    precision, _ = _legend_lines(_table(monkeypatch, "inception-2048", "radiomics-93 (no Inception weights)"))
    assert "Inception or radiomics features by row" in precision


def test_summary_csv_carries_each_entrys_features(monkeypatch):
    rows = [({"experiment": "e", "dataset": "d", "variant": "dcgan", "class": "tumour", "n_real": 8, "n_fake": 8},
             _metrics("radiomics-93 (no Inception weights)"))]
    monkeypatch.setattr(summary, "records", lambda params: rows)
    monkeypatch.setattr(summary, "metric_names", lambda params: ["prdc_precision"])
    assert summary.full_table({})["prdc_precision_features"].iloc[0] == "radiomics-93 (no Inception weights)"
