"""Label-map edits for controllable lesion synthesis, in millimetres of the written slice.

A label map holds the dataset's encoding (medgan.labels: 0 background, 1 organ, 2 lesion for
volumes). Every edit keeps lesions inside the organ label: added lesions are smoothed random
blobs (an ellipse in mm whose radius is modulated by a few low-frequency harmonics) placed only
where the whole blob lies in organ tissue, apart from existing lesions unless overlap is
allowed; grow/shrink are dilation/erosion by an ellipse of the asked size in mm (so the same
size in mm with anisotropic pixels), grown tissue clipped to the organ; move translates one
lesion to another place inside the organ; remove turns every lesion into organ tissue (the
healthy counterpart). `pixel_mm` is (y, x): mm of one pixel along rows and columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .labels import Encoding

KINDS = ("add", "grow", "shrink", "move", "remove")
PLACEMENT_TRIES = 50


@dataclass
class Edit:
    kind: str           # one of KINDS, or "none" (no edit applies to this map)
    detail: str         # what was asked and done, for the manifest


def organ_of(label_map: np.ndarray, encoding: Encoding) -> np.ndarray:
    """Where lesions may be: organ tissue (lesion included); the whole slice for encodings with
    no organ label (a binary lesion mask)."""
    if set(encoding.organ_values) == {encoding.lesion_value}:
        return np.ones(label_map.shape, bool)
    return np.isin(label_map, encoding.organ_values)


def tissue_value(encoding: Encoding) -> int:
    """The value a removed lesion becomes: the organ label, else background."""
    others = [v for v in encoding.organ_values if v != encoding.lesion_value]
    return min(others) if others else 0


def ellipse(radius_mm: float, pixel_mm) -> np.ndarray:
    """A boolean structuring element: the pixels within radius_mm of the centre, in mm."""
    ry, rx = (max(0, int(np.floor(radius_mm / s))) for s in pixel_mm)
    y, x = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    return (y * pixel_mm[0]) ** 2 + (x * pixel_mm[1]) ** 2 <= radius_mm ** 2 + 1e-9


def blob(shape, centre, radius_mm: float, pixel_mm, irregularity: float, rng: np.random.Generator) -> np.ndarray:
    """A smoothed random blob: boundary radius(θ) = r·(1 + Σ_k a_k cos(kθ + φ_k)), k = 2..4,
    with Σ|a_k| ≤ irregularity; r is scaled so that the area is π·radius_mm² (equivalent radius)."""
    amplitudes = rng.dirichlet(np.ones(3)) * irregularity * rng.uniform(0.5, 1.0)
    phases = rng.uniform(0, 2 * np.pi, 3)
    # mean of (1 + Σ a cos)^2 over θ is 1 + Σ a²/2: keeps the expected area at π r²
    scale = radius_mm / np.sqrt(1 + np.sum(amplitudes ** 2) / 2)
    y, x = np.indices(shape, dtype=float)
    dy, dx = (y - centre[0]) * pixel_mm[0], (x - centre[1]) * pixel_mm[1]
    theta = np.arctan2(dy, dx)
    boundary = scale * (1 + sum(a * np.cos(k * theta + p) for a, k, p in zip(amplitudes, (2, 3, 4), phases)))
    return np.hypot(dy, dx) <= boundary


def lesions(label_map: np.ndarray, encoding: Encoding) -> np.ndarray:
    return label_map == encoding.lesion_value


def add(label_map, encoding: Encoding, pixel_mm, count: int, radius_mm, allow_overlap: bool,
        irregularity: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Add `count` blobs with equivalent radius drawn from radius_mm [low, high] (mm)."""
    out = label_map.copy()
    organ = organ_of(label_map, encoding)
    placed = []
    for _ in range(count):
        radius = float(rng.uniform(*radius_mm))
        existing = lesions(out, encoding)
        # a one-pixel gap keeps an added lesion a lesion of its own (a separate component)
        forbidden = ~organ if allow_overlap else ~organ | ndimage.binary_dilation(existing)
        candidates = np.argwhere(~forbidden)
        for _ in range(PLACEMENT_TRIES if len(candidates) else 0):
            centre = candidates[rng.integers(len(candidates))]
            shape = blob(out.shape, centre, radius, pixel_mm, irregularity, rng)
            if shape.any() and not (shape & forbidden).any():
                out[shape] = encoding.lesion_value
                placed.append(radius)
                break
    sizes = ",".join(f"{r:.1f}" for r in placed)
    return out, f"add {len(placed)} of {count} (radius mm {sizes or '-'})"


def grow(label_map, encoding: Encoding, pixel_mm, mm: float) -> tuple[np.ndarray, str]:
    out = label_map.copy()
    grown = ndimage.binary_dilation(lesions(label_map, encoding), ellipse(mm, pixel_mm))
    out[grown & organ_of(label_map, encoding)] = encoding.lesion_value
    return out, f"grow {mm:.1f} mm"


def shrink(label_map, encoding: Encoding, pixel_mm, mm: float) -> tuple[np.ndarray, str]:
    out = label_map.copy()
    lesion = lesions(label_map, encoding)
    kept = ndimage.binary_erosion(lesion, ellipse(mm, pixel_mm), border_value=1)
    out[lesion & ~kept] = tissue_value(encoding)
    return out, f"shrink {mm:.1f} mm"


def remove(label_map, encoding: Encoding) -> tuple[np.ndarray, str]:
    out = label_map.copy()
    out[lesions(label_map, encoding)] = tissue_value(encoding)
    return out, "remove all"


def move(label_map, encoding: Encoding, pixel_mm, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Move one lesion (a connected component) to a random place where it lies in the organ,
    apart from the other lesions; unchanged when no such place is found."""
    components, n = ndimage.label(lesions(label_map, encoding))
    chosen = int(rng.integers(1, n + 1))
    piece = components == chosen
    base = label_map.copy()
    base[piece] = tissue_value(encoding)
    organ = organ_of(label_map, encoding)
    forbidden = ~organ | ndimage.binary_dilation(lesions(base, encoding))
    rows, cols = np.nonzero(piece)
    targets = np.argwhere(~forbidden)
    for _ in range(PLACEMENT_TRIES if len(targets) else 0):
        ty, tx = targets[rng.integers(len(targets))]
        dy, dx = int(ty - rows.mean().round()), int(tx - cols.mean().round())
        ny, nx = rows + dy, cols + dx
        inside = (ny >= 0) & (ny < piece.shape[0]) & (nx >= 0) & (nx < piece.shape[1])
        if inside.all() and not forbidden[ny, nx].any():
            base[ny, nx] = encoding.lesion_value
            return base, f"move lesion {chosen} of {n} by ({dy * pixel_mm[0]:.1f}, {dx * pixel_mm[1]:.1f}) mm"
    return label_map.copy(), f"move lesion {chosen} of {n}: no free place, unchanged"


def applicable(label_map, encoding: Encoding) -> list[str]:
    has_lesion = lesions(label_map, encoding).any()
    return [k for k in KINDS if (k == "add" and organ_of(label_map, encoding).any()) or (k != "add" and has_lesion)]


def apply(label_map: np.ndarray, encoding: Encoding, pixel_mm, settings: dict,
          rng: np.random.Generator) -> tuple[np.ndarray, Edit]:
    """One edit of the kinds weighted in settings["edits"] that apply to this map."""
    weights = {k: float(settings["edits"].get(k, 0)) for k in applicable(label_map, encoding)}
    weights = {k: w for k, w in weights.items() if w > 0}
    if not weights:
        return label_map.copy(), Edit("none", "no configured edit applies")
    kinds = sorted(weights)
    kind = kinds[rng.choice(len(kinds), p=np.array([weights[k] for k in kinds]) / sum(weights.values()))]
    if kind == "add":
        low, high = settings["add_count"]
        edited, detail = add(label_map, encoding, pixel_mm, int(rng.integers(low, high + 1)), settings["radius_mm"],
                             settings["allow_overlap"], settings["irregularity"], rng)
    elif kind in ("grow", "shrink"):
        mm = float(rng.uniform(*settings[f"{kind}_mm"]))
        edited, detail = (grow if kind == "grow" else shrink)(label_map, encoding, pixel_mm, mm)
    elif kind == "move":
        edited, detail = move(label_map, encoding, pixel_mm, rng)
    else:
        edited, detail = remove(label_map, encoding)
    return edited, Edit(kind, detail)


def lesion_stats(label_map: np.ndarray, encoding: Encoding, pixel_mm) -> tuple[int, float]:
    """(number of lesions = connected components, total lesion area in mm²)."""
    lesion = lesions(label_map, encoding)
    return int(ndimage.label(lesion)[1]), float(lesion.sum() * pixel_mm[0] * pixel_mm[1])
