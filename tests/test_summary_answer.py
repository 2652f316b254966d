"""summary.md's verdict: a claim between arms only under the pre-declared rule across seeds
(exact one-sided Mann–Whitney on per-seed values of `evaluate.verdict.rank_by`), each arm against
the real-vs-real floor by `floor_by`, the guard's findings per seed, and a sentence that another
CPU reproduces when the order holds."""

import pandas as pd
import pytest

from medgan import summary


def _row(name, seeds, flags="", base=False, floor=(0.01, 0.0, 0.02), key="kid"):
    row = {"experiment": "baseline: real vs real" if base else name, "dataset": "d", "class": "tumour",
           "n_real": 80, "n_fake": 40 if base else 100, "flags": flags, "replicates": None if base else len(seeds)}
    for column, _, _ in summary.HEADLINE:
        row.update({column: float("nan"), f"{column}_ci_low": float("nan"), f"{column}_ci_high": float("nan"),
                    f"{column}_skipped": "not computed", f"{column}_patients": None, f"{column}_seeds": [],
                    f"{column}_interval": ""})
    if base:
        value, low, high = floor
        row.update({key: value, f"{key}_ci_low": low, f"{key}_ci_high": high, f"{key}_skipped": ""})
    else:
        row.update({key: sum(seeds) / len(seeds), f"{key}_skipped": "", f"{key}_seeds": list(seeds),
                    f"{key}_interval": "Student t"})
    return row


def table(arms: dict, floor=(0.01, 0.0, 0.02), flags=None, key="kid"):
    rows = [_row(n, s, (flags or {}).get(n, ""), key=key) for n, s in arms.items()]
    return pd.DataFrame(rows + [_row("", [], base=True, floor=floor, key=key)])


def with_metric(kid_table: pd.DataFrame, key: str, arms: dict, floor) -> pd.DataFrame:
    """kid_table with a second metric `key` filled in (arms' seeds and the floor's interval)."""
    other = table(arms, floor=floor, key=key)
    columns = [c for c in other.columns if c == key or c.startswith(f"{key}_")]
    out = kid_table.copy()
    out[columns] = other[columns]
    return out


SEPARATED = {"plain": [0.15, 0.17, 0.22], "small": [0.26, 0.27, 0.28], "mlp": [0.25, 0.31, 0.40]}


def verdict_line(t) -> str:
    return summary.answer(t)[0]


def test_complete_separation_of_three_seeds_is_a_claim_and_overlap_is_not():
    text = verdict_line(table(SEPARATED))
    assert "`plain` better than `small`" in text and "`plain` better than `mlp`" in text
    assert "no difference detected between `small` and `mlp`" in text  # 0.25 < 0.26: overlap
    assert "3 seeds per arm" in text
    assert summary.one_sided_p([0.15, 0.17, 0.22], [0.26, 0.27, 0.28]) == pytest.approx(0.05)


def test_one_seed_out_of_order_removes_the_claim():
    """The Xeon's collapsed plain seed (0.407) above a small-data seed: no claim left."""
    collapsed = {**SEPARATED, "plain": [0.407, 0.17, 0.22]}
    text = verdict_line(table(collapsed))
    assert "better than" not in text
    assert "no difference detected between `plain` and `small`" in text


def test_with_two_seeds_no_claim_is_possible_and_the_sentence_says_so():
    text = verdict_line(table({"a": [0.1, 0.11], "b": [0.5, 0.6]}))
    assert "better" not in text and "no claim possible between `a` and `b`" in text
    assert summary.smallest_p(2, 2) > summary.ALPHA


def test_the_verdict_sentence_has_no_numbers_and_survives_a_redraw_that_keeps_the_order():
    """Another CPU redraws every training: other values, same order -> the same sentence."""
    first = verdict_line(table(SEPARATED))
    redrawn = {"plain": [0.12, 0.2, 0.23], "small": [0.3, 0.24, 0.29], "mlp": [0.35, 0.26, 0.5]}
    assert verdict_line(table(redrawn, floor=(0.02, 0.01, 0.03))) == first
    assert not any(ch.isdigit() for ch in first.replace("3 seeds", ""))
    evidence = summary.answer(table(SEPARATED))[1]
    assert "seeds 0.15, 0.17, 0.22" in evidence and "p = 0.05" in evidence  # numbers: below the sentence


def test_each_arm_against_the_floor():
    text = verdict_line(table(SEPARATED))
    assert "`plain`, `small` and `mlp`: not yet indistinguishable from real images" in text
    close = verdict_line(table({"good": [0.005, 0.01, 0.015], "mixed": [0.01, 0.2, 0.3]}))
    assert "`good`: within the real-vs-real floor by KID in every seed" in close
    assert "`mixed`: above the real-vs-real floor by KID in some seeds only" in close


def test_arms_ranked_by_one_metric_and_read_against_the_floor_by_another():
    """evaluate.verdict {rank_by: frd, floor_by: kid}: FRD separates the arms, KID overlaps
    (so a KID rule would claim nothing); the floor clause names KID and uses KID's floor."""
    kid = {"mlp": [0.29, 0.40, 0.38], "dcgan": [0.23, 0.31, 0.25]}
    frd = {"mlp": [1350, 1440, 1370], "dcgan": [880, 840, 1050]}
    both = with_metric(table(kid), "frd", frd, floor=(258, 0, 855))
    rule = summary.VerdictRule(rank_by="frd", floor_by="kid")
    text = summary.answer(both, rule)[0]
    assert text.startswith("**d / tumour**, by FRD across seeds (3 seeds per arm): `dcgan` better than `mlp`.")
    assert "`mlp` and `dcgan`: not yet indistinguishable from real images (every seed's KID above" in text
    assert "no difference detected" in summary.answer(both)[0]  # the same runs by the KID rule
    # by FRD's own floor (upper bound 855) one DCGAN seed (840) lies within it: the clause would differ
    assert "some seeds only" in summary.answer(both, summary.VerdictRule("frd", "frd"))[0]
    evidence = summary.answer(both, rule)[1]
    assert "`mlp`: FRD 1387 over 3 seed(s)" in evidence and "seeds 880, 840, 1050; KID seeds 0.23, 0.31, 0.25" in evidence
    assert "real-vs-real floor: FRD 258 [0, 855]; KID 0.01 [0, 0.02]." in evidence
    assert "per-seed FRDs" in summary.markdown(both, rule) and "floor's interval of KID" in rule.text()
    # an arm without the floor's metric (KID skipped) gets no floor clause, rather than "every seed"
    no_kid = both.copy()
    no_kid.at[0, "kid_seeds"] = []
    assert "`dcgan`: not yet indistinguishable" in summary.answer(no_kid, rule)[0]
    assert "`mlp`" not in summary.answer(no_kid, rule)[0].split("better than `mlp`.")[1]


def test_guard_findings_are_counted_per_seed_and_multiplicity_is_named():
    assert summary.guard_text({"mode_collapse": 1}, 3) == "mode collapse in 1 of 3 seeds"
    lines = summary.answer(table(SEPARATED, flags={"plain": summary.guard_text({"mode_collapse": 1}, 3)}))
    assert "training guard: mode collapse in 1 of 3 seeds" in lines[1]
    assert "3 pairs compared" in lines[1] and "Bonferroni" in lines[1]


def test_summary_md_states_the_rule_and_its_error_rate():
    text = summary.markdown(table(SEPARATED))
    assert summary.VerdictRule().text() in text
    assert "p = 1/20 = 0.05" in text and "≤ 0.1" in text and "m × 0.1" in text
    header = next(line for line in text.splitlines() if line.startswith("| experiment"))
    assert header.count("|") - 1 <= 14 and "| seeds |" in header


def test_without_the_ranking_metric_summary_md_says_why_there_is_no_verdict():
    text = summary.markdown(table(SEPARATED), summary.VerdictRule("frd", "kid"))
    assert "(no verdict: no generator has a FRD to compare. If evaluate.metrics does not compute frd" in text
    assert summary.VERDICT_MARK not in text.split("## The table")[0].split("Verdict rule")[1].split("\n", 1)[1]


def test_markdown_marks_a_flagged_row():
    text = summary.markdown(table({"plain": [0.6, 0.5, 0.7]}, flags={"plain": "mode collapse in 1 of 3 seeds"}))
    assert "| plain ⚠ mode collapse in 1 of 3 seeds |" in text


def test_a_seed_without_a_finite_value_is_not_ranked():
    assert summary.seed_values({"seeds": [{"value": 0.1}, {"value": float("nan")}, {"skipped": "x"},
                                          {"value": 0.3}]}) == [0.1, 0.3]
    text = verdict_line(table({"a": [0.1, 0.11, 0.12], "b": [0.5, 0.6]}))
    assert "no claim possible between `a` and `b`" in text and "3 or 2 seeds" not in text
    assert "2 or 3 seeds per arm" in text
