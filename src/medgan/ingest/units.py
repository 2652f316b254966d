"""What the adapters hand to the writer: units of work (one raw case, or a shard of 2D
files) and the records (manifest row + 8-bit image + optional label mask) they produce."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Unit:
    """One scatter job: `items` are JSON-able descriptions the adapter understands."""
    unit_id: str
    items: tuple[dict, ...]

    def sources(self) -> list[Path]:
        return [Path(item[key]) for item in self.items for key in ("image", "label", "mask") if item.get(key)]

    def to_json(self) -> dict:
        return {"unit_id": self.unit_id, "items": list(self.items)}

    @classmethod
    def from_json(cls, data: dict) -> "Unit":
        return cls(data["unit_id"], tuple(data["items"]))


@dataclass
class Record:
    """One output image. `row` holds the manifest fields the adapter knows (case, source,
    slice_index, class, pixel counts, window, spacing)."""
    row: dict
    image: np.ndarray
    mask: np.ndarray | None = None
    preset_split: str = field(default="")


def _stat(path: Path) -> list:
    if path.is_dir():
        return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir())
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def fingerprint(unit: Unit, dataset: dict) -> str:
    """Changes when the unit's files, the dataset settings or medgan's version change: an
    interim unit with the same fingerprint can be reused instead of converted again."""
    from .. import __version__

    data = {"unit": unit.to_json(), "settings": dataset, "version": __version__,
            "files": {str(p): _stat(p) for p in unit.sources() if p.exists()}}
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
