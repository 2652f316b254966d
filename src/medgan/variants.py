"""The GAN variants, selected by name in params.yaml. A variant only says which networks to
build and what data it needs; the one training engine (medgan.train) does the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from . import blocks, inpaint, networks


@dataclass(frozen=True)
class Variant:
    build: Callable[..., tuple[nn.Module, nn.Module]]  # (image_size, hp, n_classes) -> (G, D)
    conditional: bool = False  # G and D take class labels; trained on all classes
    paired: bool = False  # G maps a label mask to an image (pix2pix)
    # paired: (images in [-1, 1], label maps uint8, encoding, hp, rng) -> G's input
    condition: Callable | None = None
    paints: bool = False  # G repaints a region of a real slice (medgan.inpaint)


def _label_map_condition(images, label_maps_uint8, encoding, hp, rng):
    return encoding.to_model_range(label_maps_uint8)


def _vanilla(size, hp, n_classes):
    return (networks.MLPGenerator(size, hp["z_dim"], hp["hidden_g"]),
            networks.MLPDiscriminator(size, hp["hidden_d"], hp["spectral_norm"]))


def _dcgan(size, hp, n_classes):
    return (networks.DCGANGenerator(size, hp["z_dim"], hp["ngf"]),
            networks.DCGANDiscriminator(size, hp["ndf"], "batch", hp["spectral_norm"],
                                        minibatch_std=hp["minibatch_std"]))


def _cgan(size, hp, n_classes):
    return (networks.DCGANGenerator(size, hp["z_dim"], hp["ngf"], n_classes, hp["embed_dim"]),
            networks.DCGANDiscriminator(size, hp["ndf"], "batch", hp["spectral_norm"], n_classes,
                                        minibatch_std=hp["minibatch_std"]))


def _wgan_gp(size, hp, n_classes):
    return (networks.DCGANGenerator(size, hp["z_dim"], hp["ngf"]),
            networks.DCGANDiscriminator(size, hp["ndf"], hp["critic_norm"], hp["spectral_norm"],
                                        minibatch_std=hp["minibatch_std"]))


def _seednet(size, hp, n_classes):
    return blocks.build(hp["network"], size, hp["z_dim"], hp["spectral_norm"])


def _pix2pix(size, hp, n_classes):
    return (networks.UnetGenerator(size, 1, 1, hp["ngf"], hp["dropout"]),
            networks.PatchDiscriminator(2, hp["ndf"], hp["n_layers_d"], hp["spectral_norm"]))


def _pix2pix_inpaint(size, hp, n_classes):
    # D judges (slice, label map, region, output) together, so it sees what was asked for where
    return (inpaint.InpaintGenerator(size, hp["ngf"], hp["dropout"], hp["feather"]),
            networks.PatchDiscriminator(4, hp["ndf"], hp["n_layers_d"], hp["spectral_norm"]))


VARIANTS = {
    "vanilla": Variant(_vanilla),
    "dcgan": Variant(_dcgan),
    "cgan": Variant(_cgan, conditional=True),
    "wgan_gp": Variant(_wgan_gp),
    "seednet": Variant(_seednet),  # a seed's own networks, by name (medgan.blocks)
    "pix2pix": Variant(_pix2pix, paired=True, condition=_label_map_condition),
    "pix2pix_inpaint": Variant(_pix2pix_inpaint, paired=True, condition=inpaint.training_condition, paints=True),
}


def build(name: str, image_size, hp: dict, n_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    return VARIANTS[name].build(tuple(image_size), hp, n_classes)
