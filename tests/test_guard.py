"""The training guards on their own (medgan.guard): what they report and when, and that their
state survives a checkpoint round trip."""

import math

from medgan import config
from medgan.guard import MODE_COLLAPSE, Guard
from conftest import tiny_params


def settings(**overrides) -> dict:
    divergence = config.training_settings(config.validate(tiny_params()), "tiny_dcgan_tumour")["train"]["divergence"]
    return {**divergence, "window": 2, "spread_min": 0.2, **overrides}


def never_collapsed(metrics, guard):
    return None


def test_mode_collapse_is_reported_once_per_episode_and_ends_only_on_clear_recovery():
    guard = Guard(settings(mode_collapse="warn"), ("loss",), never_collapsed)
    spreads = [0.1, 0.1, 0.1, 0.22, 0.22, 0.3, 0.3, 0.1, 0.1]
    alarms = [guard.check(step, {"loss": 1.0, "spread": s}) for step, s in enumerate(spreads, 1)]
    # 0.22 is above spread_min but not above 1.25 x spread_min: the first episode goes on
    assert [step for step, alarm in enumerate(alarms, 1) if alarm] == [2, 9]
    assert {(a.action, a.flag) for a in alarms if a} == {("warn", MODE_COLLAPSE)}
    assert [e["step"] for e in guard.events] == [2, 9]


def test_a_non_finite_loss_and_a_collapse_run_are_divergence():
    collapsed = lambda metrics, guard: "collapse" if metrics["d_accuracy"] > 0.99 else None  # noqa: E731
    guard = Guard(settings(action="rollback", mode_collapse="off"), ("loss_d",), collapsed)
    assert guard.check(1, {"loss_d": math.nan, "d_accuracy": 0.5}).reason == "a non-finite loss (NaN/Inf)"
    assert guard.check(2, {"loss_d": 1.0, "d_accuracy": 1.0}) is None  # one step is not a run
    alarm = guard.check(3, {"loss_d": 1.0, "d_accuracy": 1.0})
    assert (alarm.reason, alarm.action, alarm.flag) == ("collapse for 2 steps", "rollback", "")
    assert Guard(settings(action="off"), ("loss_d",), collapsed).check(1, {"loss_d": math.inf}) is None


def test_state_round_trip_keeps_an_episode_going():
    guard = Guard(settings(mode_collapse="warn"), ("loss",), never_collapsed)
    for step in (1, 2):
        guard.check(step, {"loss": 1.0, "spread": 0.1})
    assert list(guard.state()) == ["rollbacks", "guard_events", "spreads", "in_collapse", "collapse_run"]
    resumed = Guard(settings(mode_collapse="warn"), ("loss",), never_collapsed)
    resumed.load_state(guard.state())
    assert resumed.check(3, {"loss": 1.0, "spread": 0.1}) is None  # still the episode reported at step 2
    assert resumed.events == guard.events and resumed.in_collapse
