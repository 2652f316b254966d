"""Adversarial losses as one small class selected by name, plus the gradient penalties."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "non_saturating", "saturating", "hinge", "lsgan", "wgan")


class GANLoss:
    """`bce` / `non_saturating`: BCE on logits, G trained towards the 'real' label (PyTorch's
    DCGAN example; the non-saturating form). `saturating`: G minimises log(1 - D(G(z))), the
    original minimax. `hinge`, `lsgan` (least squares) and `wgan` (critic scores)."""

    def __init__(self, mode: str):
        if mode not in LOSSES:
            raise ValueError(f"unknown loss '{mode}' (choose from {', '.join(LOSSES)})")
        self.mode = mode

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.mode in ("bce", "non_saturating", "saturating"):
            return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if self.mode == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        if self.mode == "lsgan":
            return 0.5 * (((real - 1) ** 2).mean() + (fake ** 2).mean())
        return fake.mean() - real.mean()  # wgan

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        if self.mode in ("bce", "non_saturating"):
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.mode == "saturating":
            return -F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        if self.mode == "lsgan":
            return 0.5 * ((fake - 1) ** 2).mean()
        return -fake.mean()  # hinge and wgan

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """What the log calls D(x): a probability for logit losses, the raw score otherwise."""
        return torch.sigmoid(logits) if self.mode in ("bce", "non_saturating", "saturating") else logits


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, labels=None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)^2 on random interpolates."""
    alpha = torch.rand(len(real), 1, 1, 1, device=real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed, labels)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D on real data; `real` must require grad."""
    (grad,) = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()
