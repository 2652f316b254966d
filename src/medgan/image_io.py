"""Image I/O for every stage that makes or reads images: uint8 <-> the networks' [-1, 1] range,
the label masks of a prepared dataset, PNG files and grids. It imports no stage, so training,
sampling, inpainting and the explorer share it without importing each other."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

from .atomic import atomic_file


def to_model_range(batch_uint8: torch.Tensor) -> torch.Tensor:
    return batch_uint8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def load_masks(slices: Path, rows) -> torch.Tensor:
    """The label masks of manifest rows as uint8 (N, 1, H, W)."""
    from .prepare import load_images  # NIfTI/ITK readers: a second to import, only when masks are read

    return torch.from_numpy(load_images(slices, rows.assign(path=rows["mask_path"]))).unsqueeze(1)


def save_grid(images_uint8: torch.Tensor, out, columns: int) -> None:
    grid = make_grid(images_uint8, nrow=columns, padding=2, pad_value=255)[0]
    with atomic_file(out) as tmp:
        Image.fromarray(grid.numpy()).save(tmp, format="PNG")


def save_png(image_uint8: torch.Tensor, path: Path) -> None:
    Image.fromarray(image_uint8[0].numpy()).save(path, compress_level=1)
