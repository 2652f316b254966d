"""prepare = list units -> convert each (scatter) -> gather. One function per step, so that
Snakemake can run each step as its own job and `medgan prepare DATASET` can run them all."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..atomic import write_text
from . import class_folders, paired_folders, volumes
from .errors import DataError, raise_problems
from .split import SPLITS
from .units import Unit
from .writer import gather, unit_is_current, write_unit

ADAPTERS = {"volumes": volumes, "class_folders": class_folders, "paired_folders": paired_folders}


def adapter(dataset: dict):
    return ADAPTERS[dataset["kind"]]


def list_units(name: str, dataset: dict) -> list[Unit]:
    units, problems = adapter(dataset).list_units(dataset)
    raise_problems(problems, f"dataset '{name}' ({dataset['raw']})")
    return units


def write_unit_list(name: str, dataset: dict, path: str | Path) -> list[Unit]:
    """The checkpoint step: which units (cases / shards) the dataset has, as JSON."""
    units = list_units(name, dataset)
    write_text(path, json.dumps({"dataset": name, "units": [u.to_json() for u in units]}, indent=1) + "\n")
    return units


def read_unit_list(path: str | Path) -> list[Unit]:
    try:
        return [Unit.from_json(u) for u in json.loads(Path(path).read_text())["units"]]
    except FileNotFoundError:
        raise DataError(f"{path} not found — run `medgan prepare DATASET --list-units` first") from None
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: damaged unit list ({type(err).__name__}: {err}) — delete it and run "
                        f"`medgan prepare DATASET --list-units` again") from None


def convert_unit(unit: Unit, dataset: dict, folder: Path) -> None:
    """The scatter step: one unit -> its interim folder (atomic)."""
    write_unit(unit, adapter(dataset).convert_unit(unit, dataset), folder, dataset)


def unit_folder(interim: Path, unit: Unit) -> Path:
    return Path(interim) / "units" / unit.unit_id


def prepare_dataset(name: str, dataset: dict, out: str | Path, seed: int,
                    interim: str | Path | None = None) -> pd.DataFrame:
    """Everything: list, convert every unit not already current in `interim` (a temporary
    folder when None), gather into `out`. Nothing is left in `out` if any step fails."""
    units = list_units(name, dataset)
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # scratch beside `out`: hard links work
    with tempfile.TemporaryDirectory(prefix=f".{name}.units.", dir=Path(out).parent) as scratch:
        root = Path(interim) if interim is not None else Path(scratch)
        folders = []
        for unit in tqdm(units, desc=f"prepare {name}", unit="unit"):
            folder = unit_folder(root, unit)
            if not unit_is_current(unit, folder, dataset):
                convert_unit(unit, dataset, folder)
            folders.append(folder)
        who = adapter(dataset).patients(dataset)
        if not who["known"]:
            print(f"WARNING dataset '{name}': {who['source']}")
        return gather(name, dataset, folders, Path(out), seed, {"units": len(units), "patients": who})


def check_dataset(name: str, dataset: dict) -> list[str]:
    """Every problem of a raw dataset at once, without writing anything (nnU-Net style)."""
    units, problems = adapter(dataset).list_units(dataset)
    convert = adapter(dataset).convert_unit
    for unit in tqdm(units, desc=f"check {name}", unit="unit"):
        for item in unit.items:
            try:
                for _ in convert(Unit(unit.unit_id, (item,)), dataset):
                    pass
            except DataError as err:
                problems.append(str(err))
    return problems


MANIFEST_REQUIRED = ("case", "split", "class", "path")


def load_manifest(slices_dir: str | Path) -> pd.DataFrame:
    """manifest.csv, checked: it may have been edited by hand or copied without its images."""
    path = Path(slices_dir) / "manifest.csv"
    if not path.exists():
        raise DataError(f"{path} not found — run `medgan prepare` for this dataset first")
    try:
        manifest = pd.read_csv(path, dtype={"case": str, "path": str, "mask_path": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({_first_line(err)}) — rerun `medgan prepare`") from None
    missing = [c for c in MANIFEST_REQUIRED if c not in manifest]
    if missing:
        raise DataError(f"{path}: column(s) {missing} missing — rerun `medgan prepare` for this dataset")
    problems = []
    empty = manifest[list(MANIFEST_REQUIRED)].isna().any(axis=1)
    problems += [f"row {i + 2}: empty {', '.join(c for c in MANIFEST_REQUIRED if pd.isna(manifest.at[i, c]))}"
                 for i in manifest.index[empty][:5]]
    bad_split = ~manifest["split"].isin(SPLITS) & ~empty
    problems += [f"row {i + 2}: split '{manifest.at[i, 'split']}' is not one of {list(SPLITS)}"
                 for i in manifest.index[bad_split][:5]]
    if "mask_path" in manifest:
        manifest["mask_path"] = manifest["mask_path"].fillna("")
    files = [p for p in manifest["path"].dropna()] + [p for p in manifest.get("mask_path", []) if p]
    root = Path(slices_dir).resolve()
    outside = [p for p in files if not (Path(slices_dir) / p).resolve().is_relative_to(root)]
    problems += [f"{p}: listed path outside {slices_dir} (absolute or with ..)" for p in outside[:5]]
    absent = [p for p in files if p not in outside and not (Path(slices_dir) / p).is_file()]
    problems += [f"{Path(slices_dir) / p} is listed but missing" for p in absent[:5]]
    if len(absent) > 5:
        problems.append(f"... and {len(absent) - 5} more listed files are missing")
    if problems:
        raise DataError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)
                        + "\n  — rerun `medgan prepare` for this dataset (or restore the files)")
    return manifest


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def load_images(slices_dir: str | Path, manifest: pd.DataFrame, column: str = "path"):
    """Decode the manifest's PNGs once into one uint8 array (N, H, W)."""
    import numpy as np
    from PIL import Image

    slices_dir = Path(slices_dir)
    arrays = []
    for rel in manifest[column]:
        try:
            with Image.open(slices_dir / rel) as image:
                arrays.append(np.asarray(image.convert("L")))
        except (OSError, ValueError) as err:
            raise DataError(f"{slices_dir / rel}: unreadable image ({err}) — rerun `medgan prepare`") from None
        if arrays[-1].shape != arrays[0].shape:
            raise DataError(f"{slices_dir / rel}: {arrays[-1].shape[1]}×{arrays[-1].shape[0]} pixels, the "
                            f"dataset's other images are {arrays[0].shape[1]}×{arrays[0].shape[0]} — rerun "
                            f"`medgan prepare`")
    if not arrays:
        raise DataError(f"{slices_dir}/manifest.csv: no images selected")
    return np.stack(arrays)
