"""The seeds' own networks, each one named definition in a small block language.

A definition is a list of `Layer`s; `BlockGenerator` and `BlockDiscriminator` build any of them
at any image size, so a seed network is a few lines of data here, not another copy of the DCGAN
code. Keras' 'same' padding is reproduced exactly for the strides the seeds use, and a Keras
`Dense` applied to a feature map (it acts on the channel axis at each pixel) is `pixel_dense`
(a 1x1 convolution). Parameter counts match the seeds' Keras summaries (BatchNorm's moving
statistics are buffers here, not parameters, as Keras reports them as non-trainable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .networks import SizeError, init_dcgan_weights, maybe_spectral_norm


@dataclass(frozen=True)
class Layer:
    """op: project (G's first layer: dense z -> channels x grid, the grid being the image size
    divided by the strides of the layers after it), up (transposed convolution), conv,
    pixel_dense (Keras Dense on a feature map), head (D's last: flatten, dropout, dense -> 1)."""

    op: str
    channels: int = 1
    kernel: int = 4
    stride: int = 1
    bias: bool = True
    norm: bool = False  # BatchNorm after the layer
    act: str = "none"  # none | relu | leaky | tanh
    slope: float = 0.2  # LeakyReLU's negative slope (Keras' default alpha is 0.3)
    dropout: float = 0.0


@dataclass(frozen=True)
class SeedNetwork:
    generator: tuple[Layer, ...]
    discriminator: tuple[Layer, ...]
    source: str  # where the definition comes from


def _activation(layer: Layer) -> list[nn.Module]:
    if layer.act == "relu":
        return [nn.ReLU(True)]
    if layer.act == "leaky":
        return [nn.LeakyReLU(layer.slope, True)]
    if layer.act == "tanh":
        return [nn.Tanh()]
    if layer.act == "none":
        return []
    raise ValueError(f"unknown activation '{layer.act}'")


def _keras_same_conv(c_in: int, layer: Layer) -> nn.Module:
    if layer.stride == 1:  # TF pads k - 1 in total, the extra pixel (even k) at the end
        before = (layer.kernel - 1) // 2
        after = layer.kernel - 1 - before
        return nn.Sequential(nn.ZeroPad2d((before, after, before, after)),
                             nn.Conv2d(c_in, layer.channels, layer.kernel, 1, 0, bias=layer.bias))
    # for even inputs a symmetric (k - 1) // 2 gives TF's output size (and, for odd k, its alignment)
    return nn.Conv2d(c_in, layer.channels, layer.kernel, layer.stride, (layer.kernel - 1) // 2, bias=layer.bias)


def _keras_same_up(c_in: int, layer: Layer) -> nn.Module:
    padding = math.ceil((layer.kernel - layer.stride) / 2)
    output_padding = layer.stride - layer.kernel + 2 * padding
    if not 0 <= output_padding < layer.stride or padding < 0:
        raise ValueError(f"no 'same' transposed convolution for kernel {layer.kernel}, stride {layer.stride}")
    return nn.ConvTranspose2d(c_in, layer.channels, layer.kernel, layer.stride, padding, output_padding,
                              bias=layer.bias)


def _downscale(layers, image_size) -> tuple[int, int]:
    """The grid after the strided layers, checking that every stride divides the image."""
    height, width = image_size
    for layer in layers:
        if layer.op in ("up", "conv") and layer.stride > 1:
            if height % layer.stride or width % layer.stride:
                raise SizeError(f"image size {tuple(image_size)} does not halve through this network's "
                                f"strided layers — choose an image_size divisible by "
                                f"{math.prod(l.stride for l in layers if l.op in ('up', 'conv'))}")
            height, width = height // layer.stride, width // layer.stride
    return height, width


def _body(layers, c_in: int) -> tuple[list[nn.Module], int]:
    modules: list[nn.Module] = []
    for layer in layers:
        if layer.op == "up":
            modules.append(_keras_same_up(c_in, layer))
        elif layer.op == "conv":
            modules.append(_keras_same_conv(c_in, layer))
        elif layer.op == "pixel_dense":
            modules.append(nn.Conv2d(c_in, layer.channels, 1, bias=layer.bias))
        else:
            raise ValueError(f"layer '{layer.op}' cannot follow the first layer here")
        if layer.norm:
            modules.append(nn.BatchNorm2d(layer.channels))
        modules += _activation(layer)
        if layer.dropout:
            modules.append(nn.Dropout(layer.dropout))
        c_in = layer.channels
    return modules, c_in


class BlockGenerator(nn.Module):
    def __init__(self, layers, image_size, z_dim: int = 100):
        super().__init__()
        first, rest = layers[0], layers[1:]
        if first.op != "project":
            raise ValueError("a generator definition starts with a 'project' layer")
        self.z_dim, self.image_size = z_dim, tuple(image_size)
        self.grid = (first.channels, *_downscale(rest, image_size))
        stem: list[nn.Module] = [nn.Linear(z_dim, math.prod(self.grid), bias=first.bias)]
        if first.norm:
            stem.append(nn.BatchNorm1d(math.prod(self.grid)))
        self.stem = nn.Sequential(*stem, *_activation(first))
        body, c_out = _body(rest, first.channels)
        if c_out != 1:
            raise ValueError("a generator definition ends with one channel")
        self.body = nn.Sequential(*body)
        self.apply(init_dcgan_weights)

    def forward(self, z, labels=None):
        return self.body(self.stem(z).view(len(z), *self.grid))


class BlockDiscriminator(nn.Module):
    def __init__(self, layers, image_size, channels: int = 1, spectral_norm: bool = False):
        super().__init__()
        body_layers, head = layers[:-1], layers[-1]
        if head.op != "head":
            raise ValueError("a discriminator definition ends with a 'head' layer")
        height, width = _downscale(body_layers, image_size)
        body, c_out = _body(body_layers, channels)
        self.features = nn.Sequential(*body)
        self.head = nn.Sequential(nn.Flatten(), *([nn.Dropout(head.dropout)] if head.dropout else []),
                                  nn.Linear(c_out * height * width, 1))
        self.apply(init_dcgan_weights)
        if spectral_norm:  # medgan's option on a seed's D: every convolution and the dense logit
            for parent in self.modules():
                for child_name, child in parent.named_children():
                    if isinstance(child, (nn.Conv2d, nn.Linear)):
                        setattr(parent, child_name, maybe_spectral_norm(child, True))

    def forward(self, images, labels=None):
        return self.head(self.features(images)).squeeze(1)  # a logit; the seeds' sigmoid is in the loss


def _tf_tutorial(dropout: float) -> SeedNetwork:
    """tensorflow.org/tutorials/generative/dcgan: G dense 7x7x256 (no bias), BN, LeakyReLU, then
    5x5 transposed convolutions 128 (stride 1), 64 and 1 (stride 2, tanh), each but the last with
    BN + LeakyReLU; D 5x5 stride-2 convolutions 64, 128 with LeakyReLU and dropout 0.3, a dense
    logit. Keras' LeakyReLU default slope 0.3."""
    leaky = {"act": "leaky", "slope": 0.3}
    return SeedNetwork(
        generator=(Layer("project", 256, bias=False, norm=True, **leaky),
                   Layer("up", 128, 5, 1, bias=False, norm=True, **leaky),
                   Layer("up", 64, 5, 2, bias=False, norm=True, **leaky),
                   Layer("up", 1, 5, 2, bias=False, act="tanh")),
        discriminator=(Layer("conv", 64, 5, 2, dropout=dropout, **leaky),
                       Layer("conv", 128, 5, 2, dropout=dropout, **leaky),
                       Layer("head")),
        source="TensorFlow DCGAN tutorial (seed 003's blueprint)")


SEED_NETWORKS: dict[str, SeedNetwork] = {
    # seed 002, figures 4.1-4.2 (Keras model.summary): G 27,265,281 and D 582,785 parameters
    "manipal_brain_mri": SeedNetwork(
        generator=(Layer("project", 256, act="leaky"),  # dense 100 -> 32x32x256 at 128x128
                   Layer("up", 128, 4, 2, act="leaky"),
                   Layer("up", 128, 4, 2, act="leaky"),
                   Layer("conv", 1, 4, 1, act="tanh")),
        discriminator=(Layer("conv", 64, 3, 1, act="leaky"),
                       Layer("conv", 128, 3, 2, act="leaky"),
                       Layer("conv", 128, 3, 2, act="leaky"),
                       Layer("conv", 256, 3, 2, act="leaky"),
                       Layer("head", dropout=0.4)),  # its summary: flatten, one dropout (0.4), dense
        source="seed 002 (Manipal brain-MRI DCGAN), figures 4.1-4.2"),
    # seed 003 kept the tutorial's networks (11 G / 8 D layers) and dropped the dropout
    "tf_tutorial": _tf_tutorial(dropout=0.0),
    "tf_tutorial_dropout": _tf_tutorial(dropout=0.3),
    # seed 001: deconvolutions doubling the size up to the image, then "a fully dense layer as
    # the final step" — read as Keras Dense on the last feature map (per pixel; a dense layer over
    # all 128x128 pixels would alone hold 268 M parameters); D halves down to one output.
    "ucla_covid_ct": SeedNetwork(
        generator=(Layer("project", 512, bias=False, norm=True, act="relu"),
                   Layer("up", 256, 4, 2, bias=False, norm=True, act="relu"),
                   Layer("up", 128, 4, 2, bias=False, norm=True, act="relu"),
                   Layer("up", 64, 4, 2, bias=False, norm=True, act="relu"),
                   Layer("up", 32, 4, 2, bias=False, norm=True, act="relu"),
                   Layer("up", 16, 4, 2, bias=False, norm=True, act="relu"),
                   Layer("pixel_dense", 1, act="tanh")),
        discriminator=(Layer("conv", 32, 4, 2, act="leaky"),
                       Layer("conv", 64, 4, 2, bias=False, norm=True, act="leaky"),
                       Layer("conv", 128, 4, 2, bias=False, norm=True, act="leaky"),
                       Layer("conv", 256, 4, 2, bias=False, norm=True, act="leaky"),
                       Layer("conv", 512, 4, 2, bias=False, norm=True, act="leaky"),
                       Layer("head")),
        source="seed 001 (UCLA COVID-CT DCGAN), section II.B"),
}


def build(name: str, image_size, z_dim: int, spectral_norm: bool = False) -> tuple[nn.Module, nn.Module]:
    spec = SEED_NETWORKS[name]
    return (BlockGenerator(spec.generator, image_size, z_dim),
            BlockDiscriminator(spec.discriminator, image_size, spectral_norm=spectral_norm))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_without_building(name: str, image_size, z_dim: int = 100) -> tuple[int, int]:
    """(G, D) parameter counts, built on the meta device (no memory: 336x504 holds ~271 M)."""
    with torch.device("meta"):
        G, D = build(name, image_size, z_dim)
    return parameter_count(G), parameter_count(D)
