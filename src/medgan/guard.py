"""The training run's guards (train.divergence), with their state and what they write to the log.

- Divergence: a non-finite loss (NaN/Inf), or the family's collapse sign (a GAN's D accuracy at
  1.0 on near-constant generated images) for `window` steps in a row. Action: stop or roll back.
- Mode collapse: the mean cross-sample `spread` over the last `window` steps below spread_min.
  Action: warn (the log's `guard` column and the model file say so), stop or roll back.

The loop (medgan.train.Trainer) asks `check` after every step and carries out the alarm; the
guard's state travels in the checkpoint (`state`, `load_state`), so a resumed run guards alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import MedganError

SPREAD_RECOVERY = 1.25  # a collapse episode ends when the mean spread is back above 1.25 x spread_min
MODE_COLLAPSE = "mode_collapse"  # the `guard` column's flag on a step that warned of mode collapse


class DivergenceError(MedganError, RuntimeError):
    """Training diverged; the message says when, why and what to try."""


@dataclass(frozen=True)
class Alarm:
    reason: str
    action: str  # warn | stop | rollback
    flag: str = ""  # the log's `guard` column for this step (warnings only: other alarms undo the step)


class Guard:
    def __init__(self, settings: dict, loss_keys, collapse_reason):
        self.settings = settings  # train.divergence
        self.loss_keys, self.collapse_reason = loss_keys, collapse_reason  # the family's
        self.rollbacks, self.collapse_run = 0, 0
        self.spreads: list[float] = []
        self.in_collapse = False
        self.events: list[dict] = []  # mode-collapse alarms, written into the model file

    def check(self, step: int, metrics: dict) -> Alarm | None:
        """None when all is well, else what is wrong and what to do about it."""
        reason = self.divergence(metrics)
        if reason:
            return Alarm(reason, self.settings["action"])
        reason = self.mode_collapse(metrics)
        if reason:
            action = self.settings["mode_collapse"]
            self.events.append({"step": step, "guard": MODE_COLLAPSE, "reason": reason, "action": action})
            return Alarm(reason, action, MODE_COLLAPSE)
        return None

    def divergence(self, metrics: dict) -> str | None:
        if self.settings["action"] == "off":
            return None
        if not all(math.isfinite(metrics[k]) for k in self.loss_keys):
            return "a non-finite loss (NaN/Inf)"
        collapsed = self.collapse_reason(metrics, self.settings)
        self.collapse_run = self.collapse_run + 1 if collapsed else 0
        if self.collapse_run >= self.settings["window"]:
            return f"{collapsed} for {self.settings['window']} steps"
        return None

    def mode_collapse(self, metrics: dict) -> str | None:
        """A collapse episode starts when the mean `spread` over the last `window` steps falls
        below spread_min (a mean: one batch's spread is noisy); it is reported once, at that
        step, and ends only when the mean recovers clearly (above RECOVERY x spread_min), so a
        run hovering at the threshold is not reported again and again. Families without a
        per-step spread (diffusion: measured on progress grids only) are not checked."""
        guard = self.settings
        if guard["mode_collapse"] == "off" or "spread" not in metrics:
            return None
        self.spreads = (self.spreads + [metrics["spread"]])[-guard["window"]:]
        mean = sum(self.spreads) / len(self.spreads)
        full = len(self.spreads) == guard["window"]
        starts = full and not self.in_collapse and mean < guard["spread_min"]
        self.in_collapse = full and mean < guard["spread_min"] * (SPREAD_RECOVERY if self.in_collapse else 1.0)
        if starts:
            return (f"mode collapse: generated images of a batch differ {1 / max(mean, 1e-6):.1f}x less "
                    f"than real ones (mean spread {mean:.3f} < {guard['spread_min']} over {guard['window']} steps)")
        return None

    def may_roll_back(self, action: str) -> bool:
        return action == "rollback" and self.rollbacks < self.settings["max_rollbacks"]

    def rolled_back(self, rollbacks: int) -> None:
        """After the loop reloaded a checkpoint (and with it this guard's older state)."""
        self.rollbacks, self.collapse_run, self.spreads, self.in_collapse = rollbacks, 0, [], False

    def stop_hint(self, action: str) -> str:
        return (" — or train.divergence.action: rollback" if action == "stop"
                else f" — rollbacks exhausted ({self.rollbacks})")

    # -- checkpoints: the keys a checkpoint has always had ------------------------------------------
    def state(self) -> dict:
        return {"rollbacks": self.rollbacks, "guard_events": self.events, "spreads": self.spreads,
                "in_collapse": self.in_collapse, "collapse_run": self.collapse_run}

    def load_state(self, state: dict) -> None:
        self.rollbacks, self.events = state["rollbacks"], state["guard_events"]
        self.spreads, self.in_collapse = state["spreads"], state["in_collapse"]
        self.collapse_run = state["collapse_run"]
