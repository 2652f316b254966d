"""A generator exported by medgan (`medgan export`): load it and draw images with torch, numpy and
pillow only — no medgan, no params.yaml.

    import <this package> as model
    model.generate("generator.safetensors", num_samples=16, output_path="out", save_images=True, seed=0)

The call follows medigan's convention, generate(model_file, num_samples, output_path, save_images,
**custom); custom: seed (same seed, same images), class (conditional models), mask_dir (label map ->
image models: PNG label maps). architecture.json beside this file says how to rebuild the network;
networks.py, blocks.py and errors.py are verbatim copies of medgan's (MODEL_CARD.md names the version).
The weights are safetensors, read here without pickle (safetensors_reader.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import blocks, networks
from .safetensors_reader import load_file

HERE = Path(__file__).resolve().parent
ARCHITECTURE = "architecture.json"


class ExportError(ValueError):
    """The export's files are missing, damaged or do not fit each other."""


def architecture(folder=HERE) -> dict:
    path = Path(folder) / ARCHITECTURE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ExportError(f"{path}: unreadable ({err}) — fetch the export again") from None


def build(arch: dict) -> torch.nn.Module:
    """The generator network of `arch` (architecture.json), untrained. Mirrors medgan.variants'
    constructors for the variants medgan exports."""
    size, hp, variant = tuple(arch["image_size"]), arch["hp"], arch["variant"]
    n_classes = len(arch["classes"]) if arch["conditional"] else 0
    if variant == "vanilla":
        return networks.MLPGenerator(size, hp["z_dim"], hp["hidden_g"])
    if variant in ("dcgan", "wgan_gp"):
        return networks.DCGANGenerator(size, hp["z_dim"], hp["ngf"])
    if variant == "cgan":
        return networks.DCGANGenerator(size, hp["z_dim"], hp["ngf"], n_classes, hp["embed_dim"])
    if variant == "seednet":
        return blocks.BlockGenerator(blocks.SEED_NETWORKS[hp["network"]].generator, size, hp["z_dim"])
    if variant == "pix2pix":
        return networks.UnetGenerator(size, 1, 1, hp["ngf"], hp["dropout"])
    raise ExportError(f"variant '{variant}' cannot be rebuilt by this package")


def load(model_file) -> tuple[torch.nn.Module, dict]:
    """(generator in eval mode, architecture) of the weights file `model_file`, whose folder
    holds architecture.json."""
    model_file = Path(model_file)
    arch = architecture(model_file.parent)
    G = build(arch)
    try:
        G.load_state_dict(load_file(model_file))
    except RuntimeError as err:
        raise ExportError(f"{model_file}: its weights do not fit the {arch['variant']} network of "
                          f"architecture.json ({str(err).splitlines()[0]})") from None
    G.eval()
    for module in G.modules():  # paired models: the U-Net's dropout as medgan sample ran it
        if isinstance(module, torch.nn.Dropout):
            module.train(bool(arch.get("test_time_dropout")))
    return G, arch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] -> 0..255 (the window's low..high for CT), N x H x W."""
    return images.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()[:, 0]


@torch.no_grad()
def draw(G, arch: dict, n: int, seed: int, cls: str | None = None) -> np.ndarray:
    """n images from latent noise, as medgan sample draws them: seed + the class's index, batches
    of arch['batch_size'] from one torch.Generator."""
    index = 0
    if arch["conditional"]:
        cls = arch["classes"][0] if cls is None else cls
        if cls not in arch["classes"]:
            raise ExportError(f"class '{cls}' is not one of {arch['classes']}")
        index = arch["classes"].index(cls)
    elif cls is not None and cls not in arch["classes"]:
        raise ExportError(f"class '{cls}': this model makes {arch['classes']} only")
    rng = torch.Generator().manual_seed(int(seed) + index)
    chunks, batch = [], arch["batch_size"]
    for start in range(0, n, batch):
        z = torch.randn(min(batch, n - start), arch["z_dim"], generator=rng)
        y = torch.full((len(z),), index, dtype=torch.long) if arch["conditional"] else None
        chunks.append(to_uint8(G(z, y)))
    size = arch["image_size"]
    return np.concatenate(chunks) if chunks else np.zeros((0, *size), np.uint8)


def read_label_maps(mask_dir, arch: dict) -> tuple[list[str], torch.Tensor]:
    """PNG label maps of mask_dir, sorted by name: label values 0..max_value, or medgan's
    viewable masks (0..255, as `medgan sample` writes *_mask.png)."""
    top = arch["labels"]["max_value"]
    files = sorted(Path(mask_dir).glob("*.png"))
    if not files:
        raise ExportError(f"{mask_dir}: no PNG label maps — this model turns label maps into images")
    maps = []
    for f in files:
        values = np.asarray(Image.open(f).convert("L"), dtype=np.float32)
        if values.shape != tuple(arch["image_size"]):
            raise ExportError(f"{f}: {values.shape[1]}x{values.shape[0]} pixels, the model takes "
                              f"{arch['image_size'][1]}x{arch['image_size'][0]}")
        maps.append(values if values.max() <= top else np.round(values * top / 255.0))
    labels = torch.from_numpy(np.stack(maps))[:, None]
    return [f.stem for f in files], labels.mul(2.0 / top).sub(1.0)


@torch.no_grad()
def render(G, arch: dict, mask_dir, n: int | None, seed: int) -> tuple[list[str], np.ndarray]:
    """One image per label map (the first n by name), as medgan sample renders held-out pairs."""
    names, condition = read_label_maps(mask_dir, arch)
    if n:
        names, condition = names[:n], condition[:n]
    torch.manual_seed(int(seed))  # test-time dropout masks
    batch = arch["batch_size"]
    images = [to_uint8(G(condition[i:i + batch])) for i in range(0, len(condition), batch)]
    return names, np.concatenate(images)


def generate(model_file, num_samples: int = 20, output_path=None, save_images: bool = True, seed=None,
             mask_dir=None, **custom):
    """medigan's entry point. Returns a list of uint8 H x W arrays when save_images is false;
    otherwise writes PNGs (00000.png, ...; label-map models: the label map's name) to
    output_path. seed None (medigan's default here) draws a fresh one; pass a seed for the same
    images every time (equal to `medgan generate --seed` and `medgan sample`)."""
    G, arch = load(model_file)
    # no seed: fresh entropy, without touching torch's global generator (medigan calls generate once
    # per batch with the same arguments, so a fixed default would repeat the same images per batch)
    seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)
    if arch["paired"]:
        if mask_dir is None:
            raise ExportError("this model turns label maps into images: pass mask_dir=FOLDER of PNG label maps")
        names, images = render(G, arch, mask_dir, num_samples, seed)
    else:
        images = draw(G, arch, int(num_samples), seed, custom.get("class"))
        names = [f"{i:05d}" for i in range(len(images))]
    if not save_images:
        return list(images)
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, images):
        Image.fromarray(image).save(out / f"{name}.png")
    return [str(out / f"{name}.png") for name in names]
