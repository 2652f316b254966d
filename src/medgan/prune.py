"""`medgan clean`: outputs that no experiment or dataset of the current params produces.

Nothing here runs implicitly. Models, checkpoints, samples, synthetic sets and Turing keys of
another configuration (`--configfile configs/zoo.yaml`, an experiment renamed or dropped) cost
compute or a person's time; the pipeline's own stages leave them alone, summary.md and the
report show the current params' experiments only, and `medgan clean` lists the rest with their
sizes and removes them only when told (`--yes`). A Turing folder holding readers' answers is
listed but never removed by clean: the answers and the key that scores them go together, and
only a person deletes them.

The owner of a path is read from the patterns in paths.py, whatever other placeholders they
hold (a replicate, a unit): each pattern's part up to its `{experiment}` / `{dataset}` segment
names the file or folder that belongs to one experiment or dataset.
"""

from __future__ import annotations

import os
import re
import shutil
import string
from dataclasses import dataclass
from pathlib import Path

from . import paths

OWNERS = ("experiment", "dataset")
ROOTS = ("results/", "data/")
NEVER = {paths.RAW}  # raw data as downloaded: a person's, never an output


@dataclass(frozen=True)
class Owned:
    """A pattern cut after the path segment holding its owner's placeholder: what it matches
    (a file like results/grids/X.png, or a folder like results/checkpoints/X/) belongs to X."""
    owner: str
    prefix: str

    def regex(self, names: str) -> re.Pattern:
        """The cut pattern as a regex; the owner matches `names` (a regex), other fields one name part."""
        parts = []
        for literal, field, _, _ in string.Formatter().parse(self.prefix):
            parts.append(re.escape(literal))
            if field is not None:
                parts.append(f"(?:{names})" if field == self.owner else r"[^/]+?")
        return re.compile("".join(parts) + "$")


def _string_patterns() -> list[str]:
    return [v for n, v in vars(paths).items() if isinstance(v, str) and not n.startswith("_")]


def owned_patterns() -> list[Owned]:
    """Every output pattern under results/ or data/ with an owner, cut after the owner's segment."""
    found = set()
    for pattern in _string_patterns():
        if pattern in NEVER or not pattern.startswith(ROOTS):
            continue
        segments = pattern.split("/")
        for owner in OWNERS:
            marker = "{" + owner + "}"
            for i, segment in enumerate(segments):
                if marker in segment:
                    found.add(Owned(owner, "/".join(segments[:i + 1])))
                    break
    return sorted(found, key=lambda o: (o.prefix, o.owner))


def _candidates(root: Path, owned: Owned) -> list[Path]:
    glob = re.sub(r"\{[^}]*\}", "*", owned.prefix)
    return sorted(root.glob(glob))


def unowned(params: dict, root: Path = Path(".")) -> list[Path]:
    """Files and folders under results/ and data/ that a pattern gives to an experiment or
    dataset the current params do not have (outermost only: a folder, not its contents). A path
    that any pattern gives to a current experiment or dataset is kept (results/metrics/x.json can
    be both an old name's folder-level entry and a current experiment's file)."""
    current = {"experiment": set(params["experiments"]), "dataset": set(params["datasets"])}
    owned = owned_patterns()
    anyone = [o.regex(r"[^/]+?") for o in owned]
    ours = [o.regex("|".join(re.escape(n) for n in sorted(current[o.owner])) or r"(?!)") for o in owned]
    candidates = {path for o in owned for path in _candidates(root, o)}
    found = set()
    for path in candidates:
        rel = path.relative_to(root).as_posix()
        if any(r.match(rel) for r in anyone) and not any(r.match(rel) for r in ours):
            found.add(path)
    return sorted(p for p in found if not any(parent in found for parent in p.parents))


def size_of(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum((Path(d) / f).lstat().st_size for d, _, files in os.walk(path) for f in files)


def readers_answers(path: Path) -> list[Path]:
    """Answer files inside an unowned Turing folder (clean keeps such a folder whole)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*.csv") if "answers" in p.relative_to(path).parts)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def clean(params: dict, root: Path = Path("."), remove: bool = False) -> list[dict]:
    """List (and with `remove`, delete) what no current experiment or dataset produces.
    Returns one entry per path: path, bytes, kept (a reason, or '')."""
    entries = []
    for path in unowned(params, root):
        answers = readers_answers(path)
        kept = f"holds {len(answers)} readers' answer file(s): delete it yourself if you mean it" if answers else ""
        entries.append({"path": path, "bytes": size_of(path), "kept": kept})
        if remove and not kept:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    return entries


def clean_text(entries: list[dict], root: Path, removed: bool) -> str:
    if not entries:
        return "nothing to clean: every output under results/ and data/ belongs to the current params"
    lines = []
    for e in entries:
        state = f"kept ({e['kept']})" if e["kept"] else ("removed" if removed else "")
        lines.append(f"{human(e['bytes']):>9}  {e['path'].relative_to(root).as_posix()}  {state}".rstrip())
    total = sum(e["bytes"] for e in entries if not e["kept"])
    tail = (f"removed {human(total)}" if removed else
            f"{human(total)} no current experiment or dataset produces — `medgan clean --yes` removes it")
    return "\n".join(lines + [tail])
