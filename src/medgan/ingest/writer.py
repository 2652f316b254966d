"""The one output writer of every dataset kind.

Scatter: `write_unit` converts one unit into an interim folder (atomically):
  <interim>/units/<unit>/<class>/<case>_<index>.png, masks/<class>/..., rows.csv, unit.json
Gather: `gather` assigns splits by case and lays the final contract out (atomically):
  data/slices/<dataset>/<split>/<class>/<case>_<index>.png
  data/slices/<dataset>/masks/<split>/<class>/<case>_<index>.png   (kinds with masks)
  data/slices/<dataset>/manifest.csv, prepare.json
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image

from ..atomic import atomic_dir
from .errors import DataError
from .split import SPLITS, assert_no_case_overlap, split_cases
from .units import Record, Unit, fingerprint

MANIFEST_COLUMNS = ["dataset", "case", "source", "slice_index", "split", "class", "organ_pixels",
                    "lesion_pixels", "window_low", "window_high", "spacing_x", "spacing_y", "spacing_z",
                    "pixel_mm_x", "pixel_mm_y", "sha1", "path", "mask_path"]
PNG_COMPRESS_LEVEL = 1  # fast; level 6 is ~3× slower for ~10 % smaller files


def image_name(case: str, index: int) -> str:
    return f"{case}_{index:04d}.png"


def save_png(pixels, path: Path) -> None:
    Image.fromarray(pixels).save(path, compress_level=PNG_COMPRESS_LEVEL)


def write_unit(unit: Unit, records, folder: Path, dataset: dict) -> pd.DataFrame:
    """Write one unit's records to `folder` atomically; return its rows. PNGs are encoded
    by two threads (PIL releases the GIL) while the adapter prepares the next slices."""
    rows = []
    with atomic_dir(folder) as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        saves = []
        for record in records:
            row = dict(record.row)
            rel = Path(row["class"]) / image_name(row["case"], row["slice_index"])
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            saves.append(pool.submit(save_png, record.image, tmp / rel))
            row["sha1"] = hashlib.sha1(record.image.tobytes()).hexdigest()
            row["file"] = str(rel)
            row["mask_file"] = ""
            if record.mask is not None:
                (tmp / "masks" / rel).parent.mkdir(parents=True, exist_ok=True)
                saves.append(pool.submit(save_png, record.mask, tmp / "masks" / rel))
                row["mask_file"] = str(Path("masks") / rel)
            row["preset_split"] = record.preset_split
            rows.append(row)
        for save in saves:
            save.result()  # re-raises a failed write
        table = pd.DataFrame(rows)
        table.to_csv(tmp / "rows.csv", index=False)
        (tmp / "unit.json").write_text(json.dumps({**unit.to_json(), "fingerprint": fingerprint(unit, dataset)}))
    return table


def unit_is_current(unit: Unit, folder: Path, dataset: dict) -> bool:
    try:
        stored = json.loads((folder / "unit.json").read_text())
    except (OSError, ValueError):
        return False
    return stored.get("fingerprint") == fingerprint(unit, dataset) and (folder / "rows.csv").exists()


def read_unit_rows(folder: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(folder / "rows.csv", dtype={"case": str, "preset_split": str, "mask_file": str},
                           keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{folder / 'rows.csv'}: damaged ({err}) — delete {folder} and rerun prepare") from None


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def case_strata(rows: pd.DataFrame) -> dict[str, str]:
    """A case's stratum is the set of classes its images have (e.g. 'healthy+tumour')."""
    return rows.groupby("case")["class"].agg(lambda c: "+".join(sorted(set(c)))).to_dict()


def assign_splits(rows: pd.DataFrame, dataset: dict, seed: int) -> dict[str, str]:
    if dataset.get("use_authors_split"):
        preset = rows.groupby("case")["preset_split"].agg(lambda s: sorted(set(s)))
        return {case: s[0] for case, s in preset.items()}  # overlap is caught by the assert
    cases = sorted(rows["case"].unique(), key=lambda c: (len(c), c))
    return split_cases(cases, dataset["split"], seed, strata=case_strata(rows))


def nonfinite_decision(rows: pd.DataFrame, dataset: dict) -> dict:
    """What the `nonfinite` rule did, for prepare.json: replaced values per source file (a
    volume's rows each carry its file's total)."""
    rule = dataset.get("nonfinite") or {"action": "refuse"}
    counts = pd.to_numeric(rows.get("nonfinite_replaced", pd.Series(dtype=float)), errors="coerce").fillna(0)
    per_file = counts.groupby(rows["source"]).max() if len(counts) else counts
    per_file = {str(k): int(v) for k, v in per_file.items() if v > 0}
    if per_file:
        print(f"WARNING {dataset['raw']}: {sum(per_file.values())} non-finite value(s) in {len(per_file)} file(s) "
              f"set to {rule.get('value')} (nonfinite: replace) — listed in prepare.json")
    return {**rule, "replaced": sum(per_file.values()), "files": per_file}


def gather(name: str, dataset: dict, unit_folders: list[Path], out: Path, seed: int,
           decisions: dict | None = None) -> pd.DataFrame:
    """Lay the units' images out by split and class, write manifest.csv and prepare.json."""
    tables = [read_unit_rows(f).assign(unit_folder=str(f)) for f in unit_folders]
    rows = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(len(t) for t in tables) else pd.DataFrame()
    if rows.empty:
        raise DataError(f"{dataset['raw']}: no image passed the filters (classes {dataset['classes']}, "
                        f"min_organ_pixels) — check the labels or relax the filters in params.yaml")
    split_of = assign_splits(rows, dataset, seed)
    rows["split"] = rows["case"].map(split_of)
    rows["dataset"] = name
    with atomic_dir(out) as tmp:
        paths, mask_paths = [], []
        for row in rows.itertuples():
            rel = Path(row.split) / row.file.split("/", 1)[0] / Path(row.file).name
            _link_or_copy(Path(row.unit_folder) / row.file, tmp / rel)
            mask_rel = ""
            if isinstance(row.mask_file, str) and row.mask_file:
                mask_rel = str(Path("masks") / rel)
                _link_or_copy(Path(row.unit_folder) / row.mask_file, tmp / mask_rel)
            paths.append(str(rel))
            mask_paths.append(mask_rel)
        rows["path"], rows["mask_path"] = paths, mask_paths
        manifest = rows.reindex(columns=MANIFEST_COLUMNS)
        assert_no_case_overlap(manifest)
        duplicated = manifest["path"].duplicated()
        if duplicated.any():
            raise DataError(f"{dataset['raw']}: two images map to {manifest['path'][duplicated].iloc[0]} — "
                            f"duplicate case ids; rename one of the files")
        manifest.to_csv(tmp / "manifest.csv", index=False)
        counts = manifest.groupby(["split", "class"]).size().unstack(fill_value=0)
        summary = {"dataset": name, "kind": dataset["kind"], "settings": dataset, "seed": seed,
                   "splits": dict(sorted(split_of.items())),
                   "counts": counts.reindex([s for s in SPLITS if s in counts.index]).to_dict(orient="index"),
                   "nonfinite": nonfinite_decision(rows, dataset), **(decisions or {})}
        (tmp / "prepare.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return manifest
