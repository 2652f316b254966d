"""Painting lesions into real anatomy (the pix2pix_inpaint variant; after Hu et al., CVPR 2023,
who synthesise tumours into real healthy livers).

The generator's condition has three channels (all in [-1, 1]): the real slice with the region
blanked except for a band of `feather` pixels inside its border, the label map and the region.
The output replaces only the region: the U-Net's image inside, blended with the real slice across
that band; every pixel outside the region is the input slice, exactly. The discriminator sees the
same condition beside the output, so the real pixels it could compare against are only those the
generator sees too. Training draws regions around real
lesions and around healthy organ tissue of the held-in pairs; `paint` is the entry point for
callers (sampling, lesion synthesis)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import networks
from .image_io import to_model_range, to_uint8
from .labels import Encoding


def dilate(region: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a boolean (N, 1, H, W) region by `pixels` (a square structuring element)."""
    if pixels <= 0:
        return region
    return F.max_pool2d(region.float(), 2 * pixels + 1, 1, pixels) > 0


def blend_weights(region: torch.Tensor, feather: int) -> torch.Tensor:
    """1 deep inside the region, ramping down to 1/(feather+1) at its border, 0 outside."""
    layer, total = region.float(), region.float()
    for _ in range(feather):
        layer = 1.0 - F.max_pool2d(1.0 - layer, 3, 1, 1)  # erosion by one pixel
        total = total + layer
    return total / (feather + 1)


class InpaintGenerator(nn.Module):
    """pix2pix's U-Net on a `condition` and a composite that keeps the slice outside the region."""

    def __init__(self, image_size, ngf: int = 64, dropout: float = 0.5, feather: int = 3):
        super().__init__()
        self.unet = networks.UnetGenerator(image_size, 3, 1, ngf, dropout)
        self.feather = feather

    def forward(self, condition: torch.Tensor, labels=None) -> torch.Tensor:
        raw = self.unet(condition)
        image, region = condition[:, :1].to(raw.dtype), condition[:, 2:3] > 0
        weight = blend_weights(region, self.feather).to(raw.dtype)  # 1 where the slice is blanked
        return torch.where(region, weight * raw + (1 - weight) * image, image)


def condition(images: torch.Tensor, label_maps_uint8: torch.Tensor, region: torch.Tensor,
              encoding: Encoding, feather: int) -> torch.Tensor:
    """The generator input from images in [-1, 1], label values and a boolean region, all
    (N, 1, H, W): the region's inside (all but its `feather`-pixel border band) is blanked to 0."""
    core = blend_weights(region, feather) >= 1.0
    blanked = torch.where(core, torch.zeros_like(images, dtype=torch.float32), images.float())
    return torch.cat([blanked, encoding.to_model_range(label_maps_uint8), region.float().mul(2.0).sub(1.0)], 1)


def _organ_seed(organ: np.ndarray, rng: torch.Generator) -> np.ndarray:
    """One pixel of the organ (anywhere when there is none), as a boolean image."""
    candidates = np.flatnonzero(organ) if organ.any() else np.arange(organ.size)
    seed = np.zeros(organ.size, bool)
    seed[candidates[int(torch.randint(len(candidates), (1,), generator=rng))]] = True
    return seed.reshape(organ.shape)


def training_regions(label_maps_uint8: torch.Tensor, encoding: Encoding, hp: dict,
                     rng: torch.Generator) -> torch.Tensor:
    """Per image: the lesion grown by a random margin (with probability lesion_share, when the
    slice has a lesion), else a random organ pixel grown by a lesion-like radius plus the margin."""
    low, high = hp["region_margin"]
    maps = label_maps_uint8.cpu().numpy()[:, 0]
    regions = []
    for label_map in maps:
        lesion = label_map == encoding.lesion_value
        margin = int(torch.randint(low, high + 1, (1,), generator=rng))
        if lesion.any() and float(torch.rand(1, generator=rng)) < hp["lesion_share"]:
            seed = lesion
        else:
            seed = _organ_seed(np.isin(label_map, encoding.organ_values), rng)
            margin += int(torch.randint(2, 7, (1,), generator=rng))
        regions.append(dilate(torch.from_numpy(seed)[None, None], margin)[0])
    return torch.stack(regions).to(label_maps_uint8.device)


def sampling_regions(label_maps_uint8: torch.Tensor, encoding: Encoding, margin: int,
                     seed: int) -> torch.Tensor:
    """Held-out regions: the lesion grown by `margin`; slices without a lesion get a seeded
    organ region of about a lesion's size."""
    rng = torch.Generator().manual_seed(seed)
    regions = []
    for label_map in label_maps_uint8.cpu().numpy()[:, 0]:
        lesion = label_map == encoding.lesion_value
        if lesion.any():
            regions.append(dilate(torch.from_numpy(lesion)[None, None], margin)[0])
        else:
            organ_seed = _organ_seed(np.isin(label_map, encoding.organ_values), rng)
            regions.append(dilate(torch.from_numpy(organ_seed)[None, None], margin + 4)[0])
    return torch.stack(regions)


def training_condition(images: torch.Tensor, label_maps_uint8: torch.Tensor, encoding: Encoding,
                       hp: dict, rng: torch.Generator) -> torch.Tensor:
    regions = training_regions(label_maps_uint8, encoding, hp, rng)
    return condition(images, label_maps_uint8, regions, encoding, hp["feather"])


@torch.no_grad()
def paint(G: nn.Module, image, label_map, region, encoding: Encoding | None = None, batch_size: int = 32):
    """Repaint `region` of real slices so that it shows what `label_map` says there.

    image: uint8 slices (H, W) or (N, 1, H, W); label_map: label values of the dataset's
    encoding (0 background, 1 organ, 2 lesion for volumes), same shape; region: boolean, same
    shape. Returns uint8 of the image's shape and type (numpy in, numpy out); pixels outside
    the region are the input's. G is used in the mode the caller set (eval, dropout on or off);
    `encoding` defaults to the one load_generator attaches to G."""
    if not hasattr(G, "feather"):
        raise ValueError(f"paint needs a pix2pix_inpaint generator, got {type(G).__name__}")
    encoding = encoding or getattr(G, "encoding", None)
    if encoding is None:
        raise ValueError("paint: pass the dataset's label encoding (medgan.labels.encoding_of)")
    numpy_in = isinstance(image, np.ndarray)
    tensors = [torch.as_tensor(np.asarray(a)) for a in (image, label_map, region)]
    flat = tensors[0].dim() == 2
    image_t, label_t, region_t = (t[None, None] if flat else t for t in tensors)
    if not (image_t.shape == label_t.shape == region_t.shape):
        raise ValueError(f"paint: image {tuple(image_t.shape)}, label map {tuple(label_t.shape)} and "
                         f"region {tuple(region_t.shape)} must have one shape")
    device = next(G.parameters()).device
    out = []
    for start in range(0, len(image_t), batch_size):
        part = slice(start, start + batch_size)
        cond = condition(to_model_range(image_t[part].to(torch.uint8)), label_t[part].to(torch.uint8),
                         region_t[part].bool(), encoding, G.feather)
        out.append(to_uint8(G(cond.to(device))))
    painted = torch.cat(out)
    painted = torch.where(region_t.bool(), painted, image_t.to(torch.uint8))  # exact outside, by contract
    painted = painted[0, 0] if flat else painted
    return painted.numpy() if numpy_in else painted
