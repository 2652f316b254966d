"""Helpers shared by the 2D kinds: listing image files, patient ids from file names, and
cutting the file list into shards (one scatter job each)."""

from __future__ import annotations

import re
from pathlib import Path

from .images import is_image_file, safe_name
from .units import Unit


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_file(p)) if folder.is_dir() else []


def case_from_stem(stem: str, case_regex: str | None) -> str:
    """Patient id from a file name: group 1 of `case_regex` if given and matching, else the stem."""
    if case_regex:
        match = re.search(case_regex, stem)
        if match:
            return match.group(1)
    return stem


def duplicate_stems(files: list[Path]) -> list[str]:
    seen: dict[str, Path] = {}
    problems = []
    for path in files:
        if path.stem in seen:
            problems.append(f"{path}: duplicate case id '{path.stem}' (also {seen[path.stem].name}) — "
                            f"keep one of the files")
        seen.setdefault(path.stem, path)
    return problems


def number_items(items: list[dict]) -> list[dict]:
    """Give each item its index within its case (files of a patient: 0, 1, 2, ...)."""
    counters: dict[str, int] = {}
    for item in sorted(items, key=lambda i: (i["case"], i["class"], Path(i["image"]).name)):
        item["case"] = safe_name(item["case"])
        item["index"] = counters.get(item["case"], 0)
        counters[item["case"]] = item["index"] + 1
    return items


def shard(items: list[dict], per_job: int) -> list[Unit]:
    return [Unit(f"shard-{n:04d}", tuple(items[start:start + per_job]))
            for n, start in enumerate(range(0, len(items), per_job))]
