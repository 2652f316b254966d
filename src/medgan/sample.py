"""sample: generated images per experiment, a grid to look at, and latent interpolation strips.

Samples contract (read by evaluate): results/samples/<experiment>/samples.csv with one row per
file — path (relative to that folder), class, kind (fake | real | mask), pair (pix2pix: the
held-out test image's stem, shared by its fake, real and mask rows).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.utils import make_grid

from . import config, paths, variants
from .atomic import atomic_dir, atomic_file
from .modelio import load_generator
from .prepare import load_images, load_manifest
from .train import load_masks, masks_to_model_range, to_uint8


def save_grid(images_uint8: torch.Tensor, out, columns: int) -> None:
    grid = make_grid(images_uint8, nrow=columns, padding=2, pad_value=255)[0]
    with atomic_file(out) as tmp:
        Image.fromarray(grid.numpy()).save(tmp, format="PNG")


def save_png(image_uint8: torch.Tensor, path: Path) -> None:
    Image.fromarray(image_uint8[0].numpy()).save(path, compress_level=1)


@torch.no_grad()
def generate(G, n: int, seed: int, labels: torch.Tensor | None = None, batch_size: int = 64) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), G.z_dim, generator=rng)
        y = labels[start:start + len(z)] if labels is not None else None
        chunks.append(to_uint8(G(z, y)))
    return torch.cat(chunks)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: stays on the shell where Gaussian latents live."""
    cos = (a * b).sum() / (a.norm() * b.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@torch.no_grad()
def interpolation_rows(G, seed: int, steps: int, pairs: int, label: torch.Tensor | None) -> torch.Tensor:
    """For each pair of latents: a lerp row then a slerp row, `steps` images each."""
    rng = torch.Generator().manual_seed(seed + 1)
    rows = []
    for _ in range(pairs):
        a, b = torch.randn(G.z_dim, generator=rng), torch.randn(G.z_dim, generator=rng)
        ts = np.linspace(0, 1, steps)
        for mix in (lerp, slerp):
            z = torch.stack([mix(a, b, float(t)) for t in ts])
            y = label.repeat(steps) if label is not None else None
            rows.append(to_uint8(G(z, y)))
    return torch.cat(rows)


def pooled_class_name(classes: list[str]) -> str:
    return classes[0] if len(classes) == 1 else "all"


def write_fakes(folder: Path, images_uint8: torch.Tensor, cls: str) -> list[dict]:
    (folder / cls).mkdir(parents=True, exist_ok=True)
    rows = []
    for i, image in enumerate(images_uint8):
        rel = f"{cls}/{i:05d}.png"
        save_png(image, folder / rel)
        rows.append({"path": rel, "class": cls, "kind": "fake", "pair": ""})
    return rows


def sample_unpaired(G, model: dict, settings: dict, seed: int, folder: Path) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    conditional = variants.VARIANTS[model["variant"]].conditional
    rows, shown = [], []
    for index, cls in enumerate(model["classes"] if conditional else [None]):
        labels = torch.full((settings["n"],), index, dtype=torch.long) if conditional else None
        images = generate(G, settings["n"], seed + index, labels)
        rows += write_fakes(folder, images, cls or pooled_class_name(model["classes"]))
        shown.append(images[: settings["grid_columns"] * max(1, 8 // len(model["classes"]))])
    label = torch.tensor([0]) if conditional else None
    strips = interpolation_rows(G, seed, settings["interpolation_steps"], settings["interpolation_pairs"], label)
    return rows, torch.cat(shown), strips


@torch.no_grad()
def sample_paired(G, model: dict, settings: dict, dataset: str, folder: Path) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    """pix2pix: one output per held-out test mask, saved beside its real target and the mask."""
    slices = paths.path(paths.SLICES, dataset=dataset)
    manifest = load_manifest(slices)
    rows_in = manifest[(manifest["split"] == "test") & manifest["class"].isin(model["classes"])]
    rows_in = rows_in.head(settings["n"])
    reals = torch.from_numpy(load_images(slices, rows_in)).unsqueeze(1)
    masks = load_masks(slices, rows_in)
    size = tuple(model["image_size"])
    if tuple(reals.shape[-2:]) != size:
        raise config.ConfigError(f"{slices}: test images are {tuple(reals.shape[-2:])}, the model makes {size}")
    scaled = masks_to_model_range(masks, model["mask_max"])
    fakes = torch.cat([to_uint8(G(scaled[i:i + 32])) for i in range(0, len(scaled), 32)])
    mask_view = (masks.float() * (255.0 / model["mask_max"])).round().to(torch.uint8)
    (folder / "pairs").mkdir(parents=True)
    rows = []
    for (_, row), fake, real, mask in zip(rows_in.iterrows(), fakes, reals, mask_view):
        stem = Path(row["path"]).stem
        for kind, image in (("fake", fake), ("real", real), ("mask", mask)):
            rel = f"pairs/{stem}_{kind}.png"
            save_png(image, folder / rel)
            rows.append({"path": rel, "class": row["class"], "kind": kind, "pair": stem})
    triplets = torch.stack([mask_view, fakes, reals], 1).flatten(0, 1)  # mask | fake | real per pair
    steps = settings["interpolation_steps"]
    ts = torch.linspace(0, 1, steps)[:, None, None, None]
    blends = scaled[0:1] + (scaled[1:2] - scaled[0:1]) * ts if len(scaled) > 1 else scaled[:1].repeat(steps, 1, 1, 1)
    return rows, triplets[: 3 * 8], to_uint8(G(blends))


def sample(params: dict, name: str) -> None:
    settings = params["sample"]
    exp = params["experiments"][name]
    model_path = paths.path(paths.MODEL, experiment=name)
    G, model = load_generator(model_path)
    if (model["experiment"], model["variant"]) != (name, exp["variant"]):
        raise config.ConfigError(f"{model_path}: trained for experiment '{model['experiment']}' "
                                 f"({model['variant']}), not '{name}' ({exp['variant']}) — restore the right "
                                 f"file or retrain `{name}`")
    G = variants.for_sampling(G, model, settings, params["seed"])  # a DDPM samples by DDIM
    started = time.perf_counter()
    with atomic_dir(paths.path(paths.SAMPLES, experiment=name)) as tmp:
        if variants.VARIANTS[model["variant"]].paired:
            rows, shown, strips = sample_paired(G, model, settings, exp["dataset"], tmp)
            columns = 3 * 4  # four (mask | fake | real) triplets per row
        else:
            rows, shown, strips = sample_unpaired(G, model, settings, params["seed"], tmp)
            columns = settings["grid_columns"]
        pd.DataFrame(rows).to_csv(tmp / "samples.csv", index=False)
    made = sum(row["kind"] == "fake" for row in rows) + len(strips)
    seconds = time.perf_counter() - started
    print(f"sample {name}: {made} images (samples and interpolations) in {seconds:.1f} s, "
          f"{made / seconds:.1f} images/s")
    save_grid(shown, paths.path(paths.GRID, experiment=name), columns)
    save_grid(strips, paths.path(paths.INTERPOLATION, experiment=name), settings["interpolation_steps"])
