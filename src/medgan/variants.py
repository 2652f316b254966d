"""The generator variants (GANs and DDPMs), selected by name in params.yaml. A variant only says
which networks to build, what data it needs and which family's training step drives it; the one
training loop (medgan.train) does the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from . import blocks, inpaint, networks


@dataclass(frozen=True)
class Variant:
    build: Callable[..., tuple[nn.Module, nn.Module]]  # (image_size, hp, n_classes) -> (G, D)
    conditional: bool = False  # G and D take class labels; trained on all classes
    paired: bool = False  # G maps a label mask to an image (pix2pix, ddpm_mask)
    # paired: (images in [-1, 1], label maps uint8, encoding, hp, rng) -> G's input
    condition: Callable | None = None
    paints: bool = False  # G repaints a region of a real slice (medgan.inpaint)
    family: str = "gan"  # the training step: gan (medgan.train.GANStep) | diffusion (medgan.diffusion)
    conditioning: str = "none"  # diffusion: none | class | mask
    sampler: Callable | None = None  # (G, model, sample settings, seed) -> what sampling calls; None = G


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


def _ddpm(conditioning):
    def build(size, hp, n_classes):
        from . import diffusion  # MONAI: imported only when a DDPM is used

        return diffusion.build(size, hp, n_classes, conditioning)
    return build


def _ddim_sampler(G, model, settings, seed):
    from . import diffusion

    return diffusion.sampler(G, model, settings, seed)


def _diffusion(conditioning: str) -> Variant:
    paired = conditioning == "mask"
    return Variant(_ddpm(conditioning), conditional=conditioning == "class", paired=paired,
                   condition=_label_map_condition if paired else None, family="diffusion",
                   conditioning=conditioning, sampler=_ddim_sampler)


VARIANTS = {
    "vanilla": Variant(_vanilla),
    "dcgan": Variant(_dcgan),
    "cgan": Variant(_cgan, conditional=True),
    "wgan_gp": Variant(_wgan_gp),
    "seednet": Variant(_seednet),  # a seed's own networks, by name (medgan.blocks)
    "pix2pix": Variant(_pix2pix, paired=True, condition=_label_map_condition),
    "pix2pix_inpaint": Variant(_pix2pix_inpaint, paired=True, condition=inpaint.training_condition, paints=True),
    "ddpm": _diffusion("none"),
    "ddpm_class": _diffusion("class"),  # class embedding + classifier-free guidance
    "ddpm_mask": _diffusion("mask"),  # label map concatenated as input channels (vs pix2pix)
}


def build(name: str, image_size, hp: dict, n_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    return VARIANTS[name].build(tuple(image_size), hp, n_classes)


def for_sampling(G: nn.Module, model: dict, settings: dict, seed: int) -> nn.Module:
    """The callable medgan.sample draws images from: a GAN's G itself, a DDPM's DDIM sampler."""
    sampler = VARIANTS[model["variant"]].sampler
    return sampler(G, model, settings, seed) if sampler else G
