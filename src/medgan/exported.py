"""Loading an export (`medgan export`) without params.yaml: `medgan.generate` and `medgan generate`.

An export comes from a colleague, so medgan treats it as data: it reads architecture.json and the
safetensors weights and rebuilds the generator with its own networks — it never imports the
export's Python files (those are for medigan users, who import the package by design). Images equal
`medgan sample`'s for the same seed: the same networks, noise and batches (medgan.sample.generate).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from .atomic import atomic_dir, atomic_file
from .errors import MedganError

ARCHITECTURE = "architecture.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")


class ExportFileError(MedganError, ValueError):
    """An export that is missing, damaged or not safe to load; the message names the file."""


@contextmanager
def opened(model: str | Path) -> Iterator[Path]:
    """The export's folder: `model` itself, or a zip's single top folder extracted to a temporary one."""
    model = Path(model)
    if model.is_dir():
        yield model
        return
    if not model.is_file():
        raise ExportFileError(f"{model} not found — pass an export folder or its .zip (`medgan export EXPERIMENT`)")
    if not zipfile.is_zipfile(model):
        raise ExportFileError(f"{model}: neither a folder nor a zip — pass what `medgan export` wrote")
    tmp = Path(tempfile.mkdtemp(prefix="medgan-export-"))
    try:
        yield extract(model, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        for name in names:
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or not parts:
                raise ExportFileError(f"{archive}: member '{name}' would land outside the folder — refused")
        tops = {PurePosixPath(n).parts[0] for n in names}
        if len(tops) != 1:
            raise ExportFileError(f"{archive}: expected one package folder at the top, found {sorted(tops)}")
        z.extractall(into)
    return into / tops.pop()


def weights_file(folder: Path, arch: dict) -> Path:
    """The safetensors weights named by architecture.json; anything else is refused, by name."""
    name = str(arch.get("weights", ""))
    path = folder / name
    if Path(name).name != name or not name.endswith(".safetensors"):
        raise ExportFileError(f"{folder / ARCHITECTURE}: weights '{name}' are not a .safetensors file — medgan "
                              f"loads only safetensors (no pickle); re-export with `medgan export`")
    if not path.is_file():
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = f" ({', '.join(pickled)} is not safetensors and is never loaded)" if pickled else ""
        raise ExportFileError(f"{path} not found{hint} — medgan loads only safetensors weights; re-export with "
                              f"`medgan export`")
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        raise ExportFileError(f"{path}: not a safetensors file (a pickle or damaged?) — medgan loads only "
                              f"safetensors; re-export with `medgan export`")
    return path


def read_architecture(folder: Path) -> dict:
    path = folder / ARCHITECTURE
    if not path.is_file():
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES) if folder.is_dir() else []
        what = f"; it holds {', '.join(pickled)}, which medgan never loads (pickle)" if pickled else ""
        raise ExportFileError(f"{path} not found{what} — not a medgan export: run `medgan export EXPERIMENT`")
    try:
        arch = json.loads(path.read_text())
    except ValueError as err:
        raise ExportFileError(f"{path}: damaged JSON ({err}) — fetch the export again") from None
    if arch.get("format") != "medgan-export":
        raise ExportFileError(f"{path}: not a medgan export's architecture file")
    return arch


def load(folder: Path):
    """(generator in eval mode, architecture) of an export folder, built with medgan's networks."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from . import sample, variants

    arch = read_architecture(folder)
    weights = weights_file(folder, arch)
    if arch["variant"] not in variants.VARIANTS:
        raise ExportFileError(f"{folder / ARCHITECTURE}: unknown variant '{arch['variant']}'")
    G, _ = variants.build(arch["variant"], arch["image_size"], arch["hp"], len(arch["classes"]))
    try:
        G.load_state_dict(load_file(weights))
    except (SafetensorError, RuntimeError, OSError) as err:
        raise ExportFileError(f"{weights}: does not load into a {arch['variant']} generator "
                              f"({str(err).splitlines()[0]}) — fetch the export again") from None
    sample.set_test_time_dropout(G, bool(arch.get("test_time_dropout")))
    return G, arch


def read_label_maps(mask_dir: Path, arch: dict):
    """uint8 label values (N, 1, H, W) of the PNGs in mask_dir, sorted by name, and their stems;
    PNGs may hold label values or medgan's viewable masks (0..255)."""
    import torch
    from PIL import Image

    top = arch["labels"]["max_value"]
    files = sorted(Path(mask_dir).glob("*.png"))
    if not files:
        raise ExportFileError(f"{mask_dir}: no PNG label maps — this model turns label maps into images")
    maps = []
    for f in files:
        values = np.asarray(Image.open(f).convert("L"))
        if list(values.shape) != list(arch["image_size"]):
            raise ExportFileError(f"{f}: {values.shape[1]}x{values.shape[0]} pixels, the model takes "
                                  f"{arch['image_size'][1]}x{arch['image_size'][0]}")
        maps.append(values if values.max() <= top else np.round(values.astype(np.float32) * top / 255.0).astype(np.uint8))
    return [f.stem for f in files], torch.from_numpy(np.stack(maps))[:, None]


def draw(G, arch: dict, n: int, seed: int, cls: str | None) -> np.ndarray:
    import torch

    from .sample import generate

    if n < 1:
        raise ExportFileError(f"--n {n}: ask for at least one image")
    index = 0
    if arch["conditional"]:
        cls = arch["classes"][0] if cls is None else cls
        if cls not in arch["classes"]:
            raise ExportFileError(f"class '{cls}' is not one of {arch['classes']}")
        index = arch["classes"].index(cls)
    elif cls is not None and cls not in arch["classes"]:
        raise ExportFileError(f"class '{cls}': this model makes {arch['classes']} only")
    labels = torch.full((n,), index, dtype=torch.long) if arch["conditional"] else None
    return generate(G, n, seed + index, labels, arch["batch_size"])[:, 0].numpy()


def render(G, arch: dict, mask_dir: Path, n: int | None, seed: int) -> tuple[list[str], np.ndarray]:
    import torch

    from .labels import encoding_from_dict
    from .sample import to_uint8

    if n < 0:
        raise ExportFileError(f"--n {n}: a count of label maps (0 = all of them)")
    names, masks = read_label_maps(mask_dir, arch)
    if n:
        names, masks = names[:n], masks[:n]
    scaled = encoding_from_dict(arch["labels"]).to_model_range(masks)
    torch.manual_seed(seed)  # test-time dropout masks, as medgan sample seeds them
    batch = arch["batch_size"]
    with torch.no_grad():
        images = torch.cat([to_uint8(G(scaled[i:i + batch])) for i in range(0, len(scaled), batch)])
    return names, images[:, 0].numpy()


def generate(model: str | Path, n: int, seed: int = 0, out: str | Path | None = None, cls: str | None = None,
             mask_dir: str | Path | None = None) -> np.ndarray:
    """n images (uint8, N x H x W) from an export folder or zip; the same seed gives the same images.
    Label map -> image models take mask_dir (one image per PNG, the first n by name; n 0 = all).
    With `out`, also writes them as PNGs to that folder, or to a zip when it ends in .zip."""
    with opened(model) as folder:
        G, arch = load(folder)
        if arch["paired"]:
            if mask_dir is None:
                raise ExportFileError(f"{model}: this model turns label maps into images — pass mask_dir "
                                      f"(--mask-dir) with PNG label maps")
            names, images = render(G, arch, Path(mask_dir), n, seed)
        else:
            images = draw(G, arch, n, seed, cls)
            names = [f"{i:05d}" for i in range(len(images))]
    if out is not None:
        write_images(images, names, Path(out))
    return images


def write_images(images: np.ndarray, names: list[str], out: Path) -> None:
    from PIL import Image

    if out.suffix == ".zip":
        with atomic_file(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            for name, image in zip(names, images):
                with archive.open(f"{name}.png", "w") as f:
                    Image.fromarray(image).save(f, format="PNG")
        return
    if out.exists() and any(out.iterdir()):
        raise ExportFileError(f"--out {out} exists and is not empty — choose a new folder (nothing is overwritten)")
    with atomic_dir(out) as tmp:
        for name, image in zip(names, images):
            Image.fromarray(image).save(tmp / f"{name}.png")
