"""The training families' optimisers and learning-rate schedules (train.lr_schedule), built the
same way for every family (medgan.train.GANStep, medgan.diffusion.DiffusionStep)."""

from __future__ import annotations

import torch
from torch import nn


def lr_factor(schedule: str, decay_start: float, total: int):
    """LambdaLR's factor after `step` completed G steps: 1, or constant until decay_start x total
    then linear towards 0 (the last step runs at 1/(decay steps) of the rate, as in
    pix2pix-official's `linear` policy over its decay epochs)."""
    if schedule == "constant":
        return lambda step: 1.0
    start = int(round(decay_start * total))
    return lambda step: 1.0 if step < start else max(0.0, (total - step) / max(1, total - start))


def adam(net: nn.Module, hp: dict) -> torch.optim.Adam:
    """Adam with its fused kernel: one pass over each parameter's memory instead of torch's
    default CPU loop of ~7 element-wise ops per tensor (those ops were ~27% of the MLP GAN's
    step under cProfile; its 300-iteration demo training took 20 s instead of 33 s on a 2-core
    Xeon; the DCGAN's small weights gain nothing). Same update rule; other rounding, so a run
    differs from an unfused one in the last bits (a training draw, like another thread count)."""
    return torch.optim.Adam(net.parameters(), lr=hp["lr"], betas=tuple(hp["betas"]), fused=True)


def lr_schedulers(optimizers, train_cfg: dict, total: int) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """One LambdaLR per optimiser, all on train.lr_schedule over `total` steps."""
    factor = lr_factor(train_cfg["lr_schedule"], train_cfg["lr_decay_start"], total)
    return [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in optimizers]
