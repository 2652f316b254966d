"""GAN networks, each built once and selected by name through `VARIANTS`."""

from __future__ import annotations

import torch
from torch import nn


def upsampling_steps(height: int, width: int) -> int:
    """How many x2 up-sampling layers lead from a >= 4-pixel base grid to (height, width).

    64x64 -> 4 (base 4x4); 128x192 -> 5 (base 4x6); 336x504 -> 3 (base 42x63).
    """
    steps = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width, steps = height // 2, width // 2, steps + 1
    if steps == 0:
        raise ValueError(f"image size {height}x{width} must be divisible by 2 at least once "
                         f"with both sides >= 8 (e.g. 64x64, 128x192)")
    return steps


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales (Radford et al. 2016)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, image_size: tuple[int, int], z_dim: int = 100, ngf: int = 64, channels: int = 1):
        super().__init__()
        height, width = image_size
        steps = upsampling_steps(height, width)
        base = (height >> steps, width >> steps)
        width_mult = 2 ** (steps - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ngf * width_mult, base, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * width_mult),
            nn.ReLU(True),
        ]
        for _ in range(steps - 1):
            layers += [
                nn.ConvTranspose2d(ngf * width_mult, ngf * width_mult // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * width_mult // 2),
                nn.ReLU(True),
            ]
            width_mult //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.z_dim = z_dim
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, image_size: tuple[int, int], ndf: int = 64, channels: int = 1):
        super().__init__()
        height, width = image_size
        steps = upsampling_steps(height, width)
        base = (height >> steps, width >> steps)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width_mult = 1
        for _ in range(steps - 1):
            layers += [
                nn.Conv2d(ndf * width_mult, ndf * width_mult * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * width_mult * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width_mult *= 2
        layers.append(nn.Conv2d(ndf * width_mult, 1, base, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten(1).squeeze(1)


def build_dcgan(image_size, hp: dict) -> tuple[nn.Module, nn.Module]:
    return (DCGANGenerator(image_size, hp["z_dim"], hp["ngf"]),
            DCGANDiscriminator(image_size, hp["ndf"]))


VARIANTS = {"dcgan": build_dcgan}


def build(variant: str, image_size, hp: dict) -> tuple[nn.Module, nn.Module]:
    return VARIANTS[variant](tuple(image_size), hp)
