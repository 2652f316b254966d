"""Atomic outputs get the modes the user's umask gives ordinary files and folders (a shared
cluster: colleagues in the group must be able to read data/slices and results/models)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from ingest_support import raw_sets, settings_for  # noqa: F401 (fixture)
from medgan import atomic, modelio, prepare


@pytest.fixture(params=[0o022, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_file_and_folder_get_umask_modes(tmp_path, umask):
    assert atomic.current_umask() == umask
    atomic.write_text(tmp_path / "a.txt", "x")
    with atomic.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inner.txt").write_text("y")
    modelio.save_model({"G": {"w": torch.zeros(2)}}, tmp_path / "models" / "m.pt")
    assert mode(tmp_path / "a.txt") == 0o666 & ~umask
    assert mode(tmp_path / "models" / "m.pt") == 0o666 & ~umask
    assert mode(tmp_path / "folder") == 0o777 & ~umask
    assert mode(tmp_path / "folder" / "inner.txt") == 0o666 & ~umask


def test_prepared_slices_are_readable_by_the_group(tmp_path, raw_sets, umask):
    out = tmp_path / "data" / "slices" / "x"
    prepare.prepare_dataset("x", settings_for("lits", raw_sets["lits"]), out, seed=0)
    assert mode(out) == 0o777 & ~umask
    folders = [p for p in out.rglob("*") if p.is_dir()]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert folders and files
    assert {mode(p) for p in folders} == {0o777 & ~umask}
    assert {mode(p) for p in files} == {0o666 & ~umask}
