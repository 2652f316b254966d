"""Write outputs atomically: to a temporary sibling first, renamed into place on success,
so that a failed or killed stage never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def current_umask() -> int:
    """The process umask, read without changing it (Linux); elsewhere set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _ordinary_mode(path: Path, folder: bool) -> None:
    """mkstemp/mkdtemp create private (600/700) entries; an output gets the mode an ordinary
    open()/mkdir() would give it under the user's umask (644/755 under umask 022)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `final`; rename it to `final` if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp)
    _ordinary_mode(tmp, folder=False)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def torch_save(obj, tmp: Path, final: Path) -> None:
    """torch.save, with a full disk (ENOSPC, EDQUOT) raised as the OSError that the CLI explains,
    naming the output rather than its temporary. Given a path, torch's C++ writer reports a full
    disk only as "unexpected pos"; given a Python file, the OSError is there but torch's closing of
    the archive raises that RuntimeError over it (the OSError is its __context__)."""
    import torch

    try:
        with open(tmp, "wb") as out:
            torch.save(obj, out)
    except (OSError, RuntimeError) as err:
        cause = err if isinstance(err, OSError) else err.__context__
        if isinstance(cause, OSError) and cause.errno is not None:
            raise OSError(cause.errno, cause.strerror, str(final)) from err
        raise


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to `final`; swap it in for `final` on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    _ordinary_mode(tmp, folder=True)
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(final: str | os.PathLike, text: str) -> None:
    with atomic_file(final) as tmp:
        tmp.write_text(text)


def write_json(final: str | os.PathLike, data) -> None:
    write_text(final, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, remedy: str):
    """A JSON file another stage wrote; a missing or damaged one names itself and `remedy`."""
    from .errors import MedganError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MedganError(f"{path} not found — {remedy}") from None
    except (OSError, ValueError) as err:
        raise MedganError(f"{path}: damaged JSON ({err}) — {remedy}") from None


@contextlib.contextmanager
def exclusive(target: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `<target>.lock` (fcntl.flock): two jobs that would compute the
    same cached file (evaluate and baseline running side by side) compute it once; the second
    waits, then finds it."""
    import fcntl

    lock = Path(f"{target}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
