"""sample: generated images per experiment, a grid to look at, and latent interpolation strips.

Samples contract (read by evaluate): results/samples/<experiment>/samples.csv with one row per
file — path (relative to that folder), class, kind (fake | real | mask | region), pair (paired
variants: the held-out test image's stem, shared by its fake, real, mask and region rows), case
(paired: the patient of the pair). Paired variants render every held-out pair (sample.n does not
cap them). settings.json beside it records what the model was trained and sampled with.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import config, inpaint, labels, paths, provenance, variants
from .atomic import atomic_dir, write_json
from .image_io import load_masks, save_grid, save_png, to_uint8
from .modelio import load_generator
from .prepare import load_images, load_manifest


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


def set_test_time_dropout(G: nn.Module, on: bool) -> None:
    """G in eval mode (batch norm on running statistics), its dropout layers active when `on`."""
    G.eval()
    for module in G.modules():
        if isinstance(module, nn.Dropout):
            module.train(on)


def model_encoding(model: dict) -> labels.Encoding:
    if model.get("labels"):
        return labels.encoding_from_dict(model["labels"])
    top = model["mask_max"]  # models written before the encoding was recorded
    return labels.Encoding(top, top, tuple(range(1, top + 1)))


def render_pairs(G, model: dict, reals: torch.Tensor, masks: torch.Tensor, seed: int,
                 batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(outputs, painted regions or None) for held-out slices and their label maps."""
    encoding = model_encoding(model)
    if variants.VARIANTS[model["variant"]].paints:
        regions = inpaint.sampling_regions(masks, encoding, model["hp"]["sample_margin"], seed)
        return inpaint.paint(G, reals, masks, regions, encoding, batch_size), regions
    scaled = encoding.to_model_range(masks)
    return torch.cat([to_uint8(G(scaled[i:i + batch_size])) for i in range(0, len(scaled), batch_size)]), None


@torch.no_grad()
def sample_paired(G, model: dict, settings: dict, dataset: str, folder: Path,
                  seed: int = 0) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    """Paired variants: one output per held-out test mask (all of them), saved beside its real
    target, the mask and (inpainting) the painted region."""
    slices = paths.path(paths.SLICES, dataset=dataset)
    manifest = load_manifest(slices)
    rows_in = manifest[(manifest["split"] == "test") & manifest["class"].isin(model["classes"])]
    reals = torch.from_numpy(load_images(slices, rows_in)).unsqueeze(1)
    masks = load_masks(slices, rows_in)
    size = tuple(model["image_size"])
    if tuple(reals.shape[-2:]) != size:
        raise config.ConfigError(f"{slices}: test images are {tuple(reals.shape[-2:])}, the model makes {size}")
    encoding = model_encoding(model)
    set_test_time_dropout(G, settings["dropout"])
    torch.manual_seed(seed)  # the dropout masks
    fakes, regions = render_pairs(G, model, reals, masks, seed)
    mask_view = encoding.to_view(masks)
    (folder / "pairs").mkdir(parents=True)
    rows = []
    for k, ((_, row), fake, real, mask) in enumerate(zip(rows_in.iterrows(), fakes, reals, mask_view)):
        stem = Path(row["path"]).stem
        kinds = [("fake", fake), ("real", real), ("mask", mask)]
        if regions is not None:
            kinds.append(("region", regions[k].to(torch.uint8) * 255))
        for kind, image in kinds:
            rel = f"pairs/{stem}_{kind}.png"
            save_png(image, folder / rel)
            rows.append({"path": rel, "class": row["class"], "kind": kind, "pair": stem, "case": row["case"]})
    triplets = torch.stack([mask_view, fakes, reals], 1).flatten(0, 1)  # mask | fake | real per pair
    steps = settings["interpolation_steps"]
    if regions is not None:  # the first pair painted with the lesion grown step by step
        strips = torch.cat([inpaint.paint(G, reals[:1], masks[:1], inpaint.dilate(regions[:1], r), encoding)
                            for r in range(steps)])
        return rows, triplets[: 3 * 8], strips
    scaled = encoding.to_model_range(masks)
    ts = torch.linspace(0, 1, steps)[:, None, None, None]
    blends = scaled[0:1] + (scaled[1:2] - scaled[0:1]) * ts if len(scaled) > 1 else scaled[:1].repeat(steps, 1, 1, 1)
    return rows, triplets[: 3 * 8], to_uint8(G(blends))


def sampling_settings(G, model: dict, settings: dict, paired: bool) -> dict:
    """What the model was trained and sampled with, for the experiment's metrics JSON."""
    out = {"variant": model["variant"], "hp": model["hp"], "train": model.get("train"),
           "trained_steps": model["step"], "training_run": model.get("effective"),
           "train_case_hashes": model.get("train_case_hashes")}
    if paired:
        has_dropout = any(isinstance(m, nn.Dropout) for m in G.modules())  # U-Nets of > 5 levels
        out["labels"] = model_encoding(model).as_dict()
        out["sample"] = {"test_time_dropout": bool(settings["dropout"]) and has_dropout,
                         "dropout_setting": settings["dropout"], "batchnorm": "running statistics",
                         "pairs": "every held-out test pair"}
    else:
        out["sample"] = {"n": settings["n"]}
    if variants.VARIANTS[model["variant"]].family == "diffusion":
        out["sample"].update(sampler="DDIM, eta 0", ddim_steps=settings["ddim_steps"],
                             guidance_scale=settings["guidance_scale"] if model["variant"] == "ddpm_class" else None)
    return out


def sample(params: dict, name: str, replicate: int = 0) -> None:
    """Samples, grid and interpolation strip of one replicate, drawn with its seed."""
    settings = params["sample"]
    exp = params["experiments"][name]
    config.check_replicate(params, name, replicate)
    seed, where = config.replicate_seed(params["seed"], replicate), {"experiment": name, "replicate": replicate}
    model_path = paths.path(paths.MODEL, **where)
    G, model = load_generator(model_path)
    if (model["experiment"], model["variant"]) != (name, exp["variant"]):
        raise config.ConfigError(f"{model_path}: trained for experiment '{model['experiment']}' "
                                 f"({model['variant']}), not '{name}' ({exp['variant']}) — restore the right "
                                 f"file or retrain `{name}`")
    paired = variants.VARIANTS[model["variant"]].paired
    G = variants.for_sampling(G, model, settings, seed)  # a DDPM samples by DDIM
    started = time.perf_counter()
    with atomic_dir(paths.path(paths.SAMPLES, **where)) as tmp:
        if paired:
            rows, shown, strips = sample_paired(G, model, settings, exp["dataset"], tmp, seed)
            columns = 3 * 4  # four (mask | fake | real) triplets per row
        else:
            rows, shown, strips = sample_unpaired(G, model, settings, seed, tmp)
            columns = settings["grid_columns"]
        pd.DataFrame(rows).to_csv(tmp / "samples.csv", index=False)
        write_json(tmp / "settings.json", sampling_settings(G, model, settings, paired))
        write_json(tmp / provenance.SAMPLES_FILE, model.get("provenance", provenance.NOT_RECORDED))
    made = sum(row["kind"] == "fake" for row in rows) + len(strips)
    seconds = time.perf_counter() - started
    print(f"sample {name} replicate {replicate} (seed {seed}): {made} images (samples and interpolations) in {seconds:.1f} s, "
          f"{made / seconds:.1f} images/s")
    save_grid(shown, paths.path(paths.GRID, **where), columns)
    save_grid(strips, paths.path(paths.INTERPOLATION, **where), settings["interpolation_steps"])
