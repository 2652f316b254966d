"""DiffAugment (Zhao et al., NeurIPS 2020): the same differentiable augmentation applied to
real and generated images before the discriminator, so that a discriminator trained on a few
hundred images cannot simply memorise them. Written here because the authors publish it as
research code, not as a maintained package. Ops: brightness, contrast, translation, cutout
(saturation is left out: it is a no-op on one-channel images)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def brightness(x: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, generator=rng, device=x.device) - 0.5)


def contrast(x: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, generator=rng, device=x.device) + 0.5) + mean


def translation(x: torch.Tensor, rng: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), generator=rng, device=x.device)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=rng, device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # zero border: shifted-in pixels are 0
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, rng: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=rng, device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=rng, device=x.device)
    gy, gx = torch.meshgrid(torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx[None] + ox - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, device=x.device, dtype=x.dtype)
    mask[torch.arange(n, device=x.device)[:, None, None], gy, gx] = 0
    return x * mask[:, None]


OPS = {"brightness": brightness, "contrast": contrast, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: list[str], rng: torch.Generator | None = None) -> torch.Tensor:
    for name in policy:
        x = OPS[name](x, rng)
    return x.contiguous()
