"""GAN building blocks, each defined once (after pix2pix-official's networks.py):
MLP, DCGAN-style generator/discriminator (optionally class-conditional), U-Net generator and
PatchGAN discriminator. Variants compose them in `medgan.variants`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm as _spectral_norm

from .errors import MedganError


class SizeError(MedganError, ValueError):
    """An image size the networks cannot be built for; the message says which sizes work."""



def upsampling_steps(height: int, width: int) -> int:
    """How many x2 up-sampling layers lead from a >= 4-pixel base grid to (height, width).

    64x64 -> 4 (base 4x4); 128x192 -> 5 (base 4x6); 336x504 -> 3 (base 42x63).
    """
    steps = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width, steps = height // 2, width // 2, steps + 1
    if steps == 0:
        raise SizeError(f"image size {height}x{width} must be divisible by 2 at least once "
                        f"with both sides >= 8 (e.g. 64x64, 128x192) — change the experiment's or the "
                        f"dataset's image_size")
    return steps


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions and linear layers, N(1, 0.02) for norm scales (Radford et al.)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(module) if enabled else module


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":  # WGAN-GP critics must not use batch statistics
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'")


# -- MLP (the LiTS thesis' vanilla GAN) -------------------------------------------------------

class MLPGenerator(nn.Module):
    def __init__(self, image_size, z_dim: int = 100, hidden=(256, 512, 1024)):
        super().__init__()
        self.image_size, self.z_dim = tuple(image_size), z_dim
        layers, width = [], z_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(True)]
            width = h
        layers += [nn.Linear(width, self.image_size[0] * self.image_size[1]), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z, labels=None):
        return self.net(z).view(len(z), 1, *self.image_size)


class MLPDiscriminator(nn.Module):
    def __init__(self, image_size, hidden=(512, 256), spectral_norm: bool = False):
        super().__init__()
        layers, width = [], image_size[0] * image_size[1]
        for h in hidden:
            layers += [maybe_spectral_norm(nn.Linear(width, h), spectral_norm), nn.LeakyReLU(0.2, True)]
            width = h
        layers.append(maybe_spectral_norm(nn.Linear(width, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, images, labels=None):
        return self.net(images.flatten(1)).squeeze(1)


# -- DCGAN (Radford et al.), any size with a >= 4-pixel base grid, optional class input -------

class DCGANGenerator(nn.Module):
    def __init__(self, image_size, z_dim: int = 100, ngf: int = 64, n_classes: int = 0,
                 embed_dim: int = 0, channels: int = 1):
        super().__init__()
        height, width = image_size
        steps = upsampling_steps(height, width)
        base = (height >> steps, width >> steps)
        mult = 2 ** (steps - 1)
        self.z_dim = z_dim
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + (embed_dim if n_classes else 0), ngf * mult, base, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        for _ in range(steps - 1):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z, labels=None):
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z.view(len(z), -1, 1, 1))


class MinibatchStd(nn.Module):
    """Appends the batch's mean feature standard deviation as one more channel (Karras et al.
    2018), so D can see a collapsed batch and G is pushed towards diversity."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, c, height, width = h.shape
        g = min(self.group, n)
        while n % g:
            g -= 1
        std = h.view(g, -1, c, height, width).float().var(0, unbiased=False).add(1e-8).sqrt()
        std = std.mean(dim=(1, 2, 3)).to(h.dtype).view(-1, 1, 1, 1).repeat(g, 1, height, width)
        return torch.cat([h, std], 1)


class DCGANDiscriminator(nn.Module):
    """Strided-conv discriminator. With n_classes it is a projection discriminator
    (Miyato & Koyama 2018): logit = linear(h) + <embed(y), h>. `minibatch_std` adds the
    minibatch standard-deviation channel before the head."""

    def __init__(self, image_size, ndf: int = 64, norm: str = "batch", spectral_norm: bool = False,
                 n_classes: int = 0, channels: int = 1, minibatch_std: bool = False):
        super().__init__()
        height, width = image_size
        steps = upsampling_steps(height, width)
        base = (height >> steps, width >> steps)
        sn = lambda m: maybe_spectral_norm(m, spectral_norm)  # noqa: E731
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(steps - 1):
            layers += [sn(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=norm == "none")),
                       norm_layer(norm, ndf * mult * 2), nn.LeakyReLU(0.2, True)]
            mult *= 2
        if minibatch_std:
            layers.append(MinibatchStd())
        self.features = nn.Sequential(*layers)
        head_in = ndf * mult + (1 if minibatch_std else 0)
        self.head = sn(nn.Conv2d(head_in, 1, base, 1, 0))
        self.pool = nn.Conv2d(head_in, ndf * mult, base, 1, 0, bias=False) if n_classes else None
        self.embed = sn(nn.Embedding(n_classes, ndf * mult)) if n_classes else None
        self.apply(init_dcgan_weights)

    def forward(self, images, labels=None):
        h = self.features(images)
        logits = self.head(h).flatten(1).squeeze(1)
        if self.embed is not None:
            logits = logits + (self.embed(labels) * self.pool(h).flatten(1)).sum(1)
        return logits


# -- pix2pix: U-Net generator + PatchGAN discriminator (Isola et al. 2017) --------------------

class UnetSkipBlock(nn.Module):
    """One U-Net level: down -> (inner levels) -> up, with the input concatenated to the output."""

    def __init__(self, outer: int, inner: int, submodule: nn.Module | None = None, outermost=False,
                 innermost=False, dropout: float = 0.0, in_channels: int | None = None):
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(in_channels or outer, inner, 4, 2, 1, bias=False)
        if outermost:
            layers = [down, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def unet_depth(image_size) -> int:
    """Levels down to the smallest grid both sides can halve to (256 -> 8, 128 -> 7, 64 -> 6)."""
    height, width = image_size
    depth = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) > 1:
        height, width, depth = height // 2, width // 2, depth + 1
    if depth < 5:
        raise SizeError(f"pix2pix needs both image sides divisible by 32, got {tuple(image_size)} — change "
                        f"the experiment's or the dataset's image_size")
    return depth


class UnetGenerator(nn.Module):
    """U-Net sized to the resolution: as many levels as the image halves (pix2pix-official)."""

    def __init__(self, image_size, in_channels: int = 1, out_channels: int = 1, ngf: int = 64, dropout: float = 0.5):
        super().__init__()
        depth = unet_depth(image_size)
        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(depth - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, block, dropout=dropout)
        for outer_mult in (4, 2, 1):
            block = UnetSkipBlock(ngf * outer_mult, ngf * outer_mult * 2, block)
        self.model = UnetSkipBlock(out_channels, ngf, block, outermost=True, in_channels=in_channels)
        self.apply(init_dcgan_weights)

    def forward(self, condition, labels=None):
        return self.model(condition)


class PatchDiscriminator(nn.Module):
    """n_layers=3 gives the 70x70 PatchGAN: one logit per overlapping 70x70 patch."""

    def __init__(self, in_channels: int = 2, ndf: int = 64, n_layers: int = 3, spectral_norm: bool = False):
        super().__init__()
        sn = lambda m: maybe_spectral_norm(m, spectral_norm)  # noqa: E731
        layers: list[nn.Module] = [sn(nn.Conv2d(in_channels, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [sn(nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False)),
                       nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(sn(nn.Conv2d(ndf * mult, 1, 4, 1, 1)))
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, images, labels=None):
        return self.net(images)
