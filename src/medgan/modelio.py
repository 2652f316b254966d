"""Model and checkpoint files: writing them, and reading them back safely.

Model files arrive from a shared DVC remote and from colleagues, so every file is untrusted
input: it loads with torch.load(weights_only=True), which unpickles only tensors and plain
values (dict, list, tuple, str, numbers, None) and never runs code. That is why RNG states
are stored as tensors and plain lists. A file that does not load that way is refused with
its name. Training keeps its last two checkpoints (last.pt, previous.pt): a damaged one is
named and skipped.
"""

from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import labels, variants
from .atomic import atomic_file, torch_save
from .errors import MedganError

LAST, PREVIOUS = "last.pt", "previous.pt"
# a family's other networks and optimisers (a GAN's D, opt_d) are checked against it on resume (misfit)
CHECKPOINT_KEYS = ("step", "fingerprint", "log", "progress", "rollbacks", "G", "G_ema", "opt_g",
                   "rng", "torch_rng", "numpy_rng", "python_rng")
MODEL_KEYS = ("variant", "experiment", "hp", "image_size", "classes", "step", "G")


class ModelFileError(MedganError, ValueError):
    """A model or checkpoint file is missing, damaged, unsafe or not medgan's."""


class UnsafeFileError(ModelFileError):
    """The file holds pickled Python objects: loading it could run code."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def safe_load(path: str | os.PathLike, map_location="cpu", required=()) -> dict:
    """A dict saved by torch.save, loaded with weights_only=True; ModelFileError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} not found — run the stage that makes it (or `dvc pull` it) first")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found:
            raise UnsafeFileError(
                f"{path}: refused — it holds a pickled Python object ({found.group(1)}), and loading it "
                f"could run code; use a file medgan wrote, or delete it and rerun the stage") from None
        raise ModelFileError(f"{path}: damaged or not a PyTorch file ({_first_line(err)}) — delete it and "
                             f"rerun the stage, or fetch it again") from None
    except Exception as err:  # noqa: BLE001 — torch raises OSError, EOFError, RuntimeError, KeyError… for damage
        raise ModelFileError(f"{path}: damaged or not a PyTorch file ({type(err).__name__}: "
                             f"{_first_line(err)}) — delete it and rerun the stage, or fetch it again") from None
    missing = [k for k in required if not isinstance(data, dict) or k not in data]
    if missing:
        raise ModelFileError(f"{path}: not a medgan file of this kind (missing {', '.join(missing)}) — "
                             f"delete it and rerun the stage")
    return data


# -- RNG states as plain values ----------------------------------------------------------------

def rng_states(device: torch.device | None = None) -> dict:
    """Every global RNG a training step draws from; on a GPU also the device's generator
    (dropout, DiffAugment), without which a resumed GPU run would take another path."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    states = {"torch_rng": torch.get_rng_state(),
              "numpy_rng": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
              "python_rng": [version, list(state), gauss]}
    if device is not None and device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(state: dict, device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch_rng"].cpu())
    if device is not None and device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
    name, keys, pos, has_gauss, cached = state["numpy_rng"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, values, gauss = state["python_rng"]
    random.setstate((version, tuple(values), gauss))


# -- checkpoints -------------------------------------------------------------------------------

def save_checkpoint(state: dict, folder: str | os.PathLike) -> Path:
    """Write last.pt atomically; the one it replaces becomes previous.pt (also a rename)."""
    last = Path(folder) / LAST
    with atomic_file(last) as tmp:
        torch_save(state, tmp, last)
        if last.exists():
            os.replace(last, last.with_name(PREVIOUS))
    return last


def load_checkpoint(folder: str | os.PathLike, map_location="cpu") -> tuple[dict, Path] | None:
    """The newest checkpoint that loads safely, with its path; None when there is none. Each
    file that is damaged or refused gets one line naming it and what happens instead."""
    candidates = [p for p in (Path(folder) / LAST, Path(folder) / PREVIOUS) if p.exists()]
    for i, path in enumerate(candidates):
        try:
            return safe_load(path, map_location, CHECKPOINT_KEYS), path
        except ModelFileError as err:
            then = f"trying {candidates[i + 1]}" if i + 1 < len(candidates) else "starting over"
            print(f"{str(err).split(' — ')[0]} — skipped, {then}")
    return None


def misfit(state: dict, nets: dict[str, nn.Module | None]) -> str | None:
    """Why a checkpoint's weights cannot be loaded into `nets` (names, shapes), or None."""
    for name, net in nets.items():
        if net is None:
            continue
        saved, wanted = state.get(name), net.state_dict()
        if not isinstance(saved, dict) or saved.keys() != wanted.keys():
            return f"{name}: other parameter names"
        for key, tensor in wanted.items():
            if not isinstance(saved[key], torch.Tensor) or saved[key].shape != tensor.shape:
                return f"{name}.{key}: shape {tuple(getattr(saved[key], 'shape', ()))}, expected {tuple(tensor.shape)}"
    return None


SET_ASIDE = "set-aside"  # checkpoints of other params, kept (hours of training): `medgan clean` never sees them as stale


def set_aside_checkpoints(folder: str | os.PathLike, label: str) -> Path | None:
    """Move last.pt/previous.pt into <folder>/set-aside/<label>/ instead of letting a fresh
    run overwrite them (a changed budget or setting would otherwise cost the old run)."""
    found = [Path(folder) / n for n in (LAST, PREVIOUS) if (Path(folder) / n).exists()]
    if not found:
        return None
    target = Path(folder) / SET_ASIDE / label
    n = 1
    while target.exists():
        n += 1
        target = Path(folder) / SET_ASIDE / f"{label}-{n}"
    target.mkdir(parents=True)
    for path in found:
        os.replace(path, target / path.name)
    return target


def remove_checkpoints(folder: str | os.PathLike) -> None:
    for name in (LAST, PREVIOUS):
        (Path(folder) / name).unlink(missing_ok=True)


# -- models ------------------------------------------------------------------------------------

def save_model(model: dict, path: str | os.PathLike) -> None:
    with atomic_file(path) as tmp:
        torch_save(model, tmp, Path(path))


def load_generator(model_path: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, dict]:
    """The generator of a model file written by `medgan train`, in eval mode, and its metadata."""
    model = safe_load(model_path, device, MODEL_KEYS)
    if model["variant"] not in variants.VARIANTS:
        raise ModelFileError(f"{model_path}: unknown variant '{model['variant']}' (known: "
                             f"{', '.join(variants.VARIANTS)}) — retrain it with this medgan")
    try:
        G, _ = variants.build(model["variant"], model["image_size"], model["hp"], len(model["classes"]))
        G.load_state_dict(model["G"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{model_path}: its weights do not fit a {model['variant']} generator "
                             f"({_first_line(err)}) — retrain it with this medgan") from None
    if model.get("labels"):
        G.encoding = labels.encoding_from_dict(model["labels"])  # inpaint.paint reads it
    return G.to(device).eval(), model
