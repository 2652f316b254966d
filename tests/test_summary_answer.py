"""summary.md says in words what the table shows: which generator wins, whether its CI
separates it from the others, against the real-vs-real floor, and what the guard flagged."""

import pandas as pd

from medgan import summary


def _row(name, kid, low, high, flags="", base=False):
    row = {"experiment": "baseline: real vs real" if base else name, "dataset": "d", "class": "tumour",
           "n_real": 80, "n_fake": 40 if base else 100, "flags": flags}
    for key, _, _ in summary.HEADLINE:
        row.update({key: float("nan"), f"{key}_ci_low": float("nan"), f"{key}_ci_high": float("nan"),
                    f"{key}_skipped": "not computed", f"{key}_patients": None})
    row.update({"kid": kid, "kid_ci_low": low, "kid_ci_high": high, "kid_skipped": ""})
    return row


def test_answer_names_the_winner_the_separated_and_the_unclear_and_the_flags():
    table = pd.DataFrame([_row("small", 0.2, 0.19, 0.21), _row("plain", 0.6, 0.59, 0.61, "mode collapse at step 900"),
                          _row("close", 0.205, 0.2, 0.22), _row("", 0.01, 0.0, 0.02, base=True)])
    (text,) = summary.answer(table)
    assert "best by KID is `small` (0.2 [0.19, 0.21])" in text
    assert "real-vs-real floor of 0.01 [0, 0.02]" in text
    assert "entirely below `plain` (0.6 [0.59, 0.61])" in text and "Not separable from `close`" in text
    assert "flagged `plain` (mode collapse at step 900)" in text


def test_markdown_marks_a_flagged_row_and_stays_within_14_columns():
    table = pd.DataFrame([_row("plain", 0.6, 0.59, 0.61, "mode collapse at step 900"), _row("", 0.01, 0, 0.02, base=True)])
    text = summary.markdown(table)
    header = next(line for line in text.splitlines() if line.startswith("| experiment"))
    assert header.count("|") - 1 <= 14
    assert "| plain ⚠ mode collapse at step 900 |" in text
