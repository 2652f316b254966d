"""`class_folders` kind: one folder of 2D images per class (UCSD COVID-CT `CT_COVID/` +
`CT_NonCOVID/`, brain-MRI `yes/` + `no/`), any png/jpg/bmp/tif in any mode.

Patient ids come from the dataset's metadata table when it has one (COVID-CT-MetaInfo.xlsx:
several images per patient), else from `case_regex` on the file name, else one per file. With
`use_authors_split` the split comes from the authors' `Data-split/**/{train,val,test}*.txt`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import DataError
from .folders import case_from_stem, duplicate_stems, image_files, number_items, shard, unused_entries
from .images import fit_to_size, read_gray_counted
from .split import SPLITS
from .units import Record, Unit

LAYOUTS = {
    "covid_ct": {"folders": {"covid": "CT_COVID", "noncovid": "CT_NonCOVID"},
                 "metadata": "COVID-CT-MetaInfo.xlsx", "split_files": "Data-split/**/*.txt"},
    "brain_mri": {"folders": {"tumour": "yes", "healthy": "no"}},
}


def setting(dataset: dict, key: str, default=None):
    if dataset.get(key) is not None:
        return dataset[key]
    return LAYOUTS.get(dataset.get("layout", ""), {}).get(key, default)


def class_folder(dataset: dict, cls: str) -> Path:
    return Path(dataset["raw"]) / setting(dataset, "folders", {}).get(cls, cls)


def _column(table: pd.DataFrame, *words: str) -> str | None:
    for column in table.columns:
        name = str(column).lower().replace("_", " ")
        if any(w in name for w in words):
            return column
    return None


def read_patient_table(path: Path) -> dict[str, str]:
    """File name (and stem) -> patient id, from every sheet of a metadata table (xlsx/csv)."""
    try:
        sheets = (pd.read_excel(path, sheet_name=None, dtype=str) if path.suffix.lower() in (".xlsx", ".xls")
                  else {"": pd.read_csv(path, dtype=str)})
    except Exception as err:  # openpyxl/pandas raise many types for a damaged file
        raise DataError(f"{path}: cannot read the metadata table ({err}) — re-download it, or set "
                        f"patient_ids: per_file") from err
    patients = {}
    for table in sheets.values():
        file_col, patient_col = _column(table, "file", "image"), _column(table, "patient")
        if file_col is None or patient_col is None:
            continue
        for name, patient in zip(table[file_col], table[patient_col]):
            if isinstance(name, str) and isinstance(patient, str) and patient.strip():
                patients[name.strip()] = patients[Path(name.strip()).stem] = f"patient-{patient.strip()}"
    if not patients:
        raise DataError(f"{path}: no 'file name' and 'patient id' columns found — fix the table or set "
                        f"patient_ids: per_file")
    return patients


def read_authors_split(raw: Path, pattern: str) -> dict[str, str]:
    """File name -> split from the authors' txt files (named train…/val…/test…)."""
    split_of = {}
    for txt in sorted(raw.glob(pattern)):
        split = next((s for s in SPLITS if txt.name.lower().startswith(s)), None)
        if split:
            for line in txt.read_text(errors="replace").splitlines():
                if line.strip():
                    split_of[Path(line.strip()).name] = split
    return split_of


def patient_lookup(dataset: dict) -> dict[str, str]:
    mode = dataset.get("patient_ids", "auto")
    metadata = setting(dataset, "metadata")
    path = Path(dataset["raw"]) / metadata if metadata else None
    if mode == "per_file" or (mode == "auto" and (path is None or not path.exists())):
        return {}
    if path is None or not path.exists():
        raise DataError(f"{path or dataset['raw']}: patient_ids is 'metadata' but the metadata table is "
                        f"missing — add it, set `metadata:`, or use patient_ids: per_file")
    return read_patient_table(path)


UNKNOWN = "patients unknown: split by image"


def patients(dataset: dict) -> dict:
    """Where patient ids come from, for prepare.json and the report. Without a metadata table or
    `case_regex` every file is its own patient: images of one patient may then sit in train and
    test (COVID-CT has several per patient), which the split cannot prevent."""
    metadata = setting(dataset, "metadata")
    table = Path(dataset["raw"]) / metadata if metadata else None
    if dataset.get("patient_ids", "auto") != "per_file" and table is not None and table.exists():
        return {"known": True, "source": f"metadata table {table}"}
    if dataset.get("case_regex"):
        return {"known": True, "source": f"case_regex {dataset['case_regex']!r} on the file name"}
    why = "patient_ids: per_file" if dataset.get("patient_ids") == "per_file" else \
        f"patient_ids: auto found no metadata table{f' ({table})' if table else ''} and no case_regex is set"
    return {"known": False, "source": f"{UNKNOWN} — one patient per file ({why}); images of one patient may sit "
                                      f"in train and test: add the metadata table, or set `case_regex` or `metadata`"}


def list_units(dataset: dict) -> tuple[list[Unit], list[str]]:
    raw = Path(dataset["raw"])
    if not raw.is_dir():
        return [], [f"{raw}: raw folder not found — download the data there or fix `raw` in params.yaml"]
    problems, items = [], []
    try:
        patients = patient_lookup(dataset)
    except DataError as err:
        return [], [str(err)]
    authors = read_authors_split(raw, setting(dataset, "split_files", "Data-split/**/*.txt")) \
        if dataset.get("use_authors_split") else {}
    if dataset.get("use_authors_split") and not authors:
        problems.append(f"{raw}: use_authors_split is set but no train/val/test *.txt file matches "
                        f"'{setting(dataset, 'split_files', 'Data-split/**/*.txt')}' — add them or unset it")
    for cls in dataset["classes"]:
        folder = class_folder(dataset, cls)
        files = image_files(folder)
        if not folder.is_dir():
            problems.append(f"{folder}: class folder of '{cls}' not found — fix `folders` or `raw` in params.yaml")
            continue
        if not files:
            problems.append(f"{folder}: class folder of '{cls}' holds no png/jpg/bmp/tif image — add the "
                            f"images or remove the class from params.yaml")
        problems += duplicate_stems(files) + unused_entries(folder)
        for path in files:
            listed = patients.get(path.name) or patients.get(path.stem)
            if not listed and dataset.get("patient_ids") == "metadata":
                problems.append(f"{path}: not in the metadata table, so its patient is unknown — add it there "
                                f"or use patient_ids: auto (one patient per unlisted file)")
            case = listed or case_from_stem(path.stem, dataset.get("case_regex"))
            preset = authors.get(path.name, "")
            if authors and not preset:
                problems.append(f"{path}: not listed in any authors' split file — add it there or unset "
                                f"use_authors_split")
            items.append({"case": case, "class": cls, "image": str(path), "preset_split": preset})
    items = number_items(items)
    return shard(items, dataset.get("files_per_job", 200)), problems


def convert_unit(unit: Unit, dataset: dict):
    for item in unit.items:
        gray, replaced = read_gray_counted(Path(item["image"]), dataset.get("input_range"),
                                           nonfinite=dataset.get("nonfinite"))
        pixels = fit_to_size(gray, dataset["image_size"], dataset.get("fit", "pad"))
        row = {"case": item["case"], "source": item["image"], "slice_index": item["index"], "class": item["class"],
               "nonfinite_replaced": replaced}
        yield Record(row, pixels, None, item.get("preset_split", ""))
