"""Helpers shared by the 2D kinds: listing image files, patient ids from file names, and
cutting the file list into shards (one scatter job each)."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Iterator

from .images import IMAGE_SUFFIXES, is_image_file, safe_name
from .units import Unit


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_file(p)) if folder.is_dir() else []


def unused_entries(folder: Path) -> list[str]:
    """A problem for every entry of an image folder that image_files() leaves out, so that
    nothing is dropped without a word: broken links, other file types, sub-folders. Hidden
    files (.DS_Store, ._* resource forks) are not data and are skipped."""
    if not folder.is_dir():
        return []
    problems = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or is_image_file(path):
            continue
        if path.is_symlink() and not path.exists():
            problems.append(f"{path}: broken link (to {os.readlink(path)}) — fix the link or remove it")
        elif path.is_dir():
            problems.append(f"{path}: sub-folder of an image folder is not read — move its images up or "
                            f"remove it")
        else:
            problems.append(f"{path}: not a {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} image — convert it "
                            f"or remove it")
    return problems


def walk(root: Path) -> Iterator[Path]:
    """Every file and folder under `root`, following links to folders (Path.glob('**') does not
    before Python 3.13) and entering each real folder once, so that a link loop ends."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            yield Path(dirpath) / name


def _match_parts(parts: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _match_parts(parts[1:], pattern[1:])


def glob_following_links(root: Path, pattern: str) -> list[Path]:
    """Path.glob(pattern) semantics (`**` = any folders, `*`/`?`/`[]` within one name), but
    through folder links. fnmatch matches one name; glob.translate (3.13) is not in 3.11."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    return sorted(p for p in walk(root) if _match_parts(list(p.relative_to(root).parts), parts))


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
