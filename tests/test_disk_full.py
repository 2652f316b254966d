"""A full disk (or an exhausted quota on a shared cluster) while writing: the CLI names the output,
the free space and the fix instead of a traceback; the checkpoint being replaced survives and no
temporary file is left behind."""

from __future__ import annotations

import builtins
import errno
import io

import pytest
import torch

from medgan import atomic, cli, modelio


class FullDisk(io.RawIOBase):
    """A file on a disk with `room` bytes left: the write that would pass it fails as write(2) does."""

    def __init__(self, path, room: int):
        self.real, self.room = builtins.open(path, "wb"), room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.real.write(data)

    def close(self) -> None:
        self.real.close()
        super().close()


def disk_with_room(monkeypatch, room: int):
    """Every file medgan.atomic opens for writing has `room` bytes of disk left."""
    monkeypatch.setattr(atomic, "open", lambda path, mode="r": FullDisk(path, room), raising=False)


def test_a_checkpoint_on_a_full_disk_fails_naming_it_and_keeps_the_previous_one(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    modelio.save_checkpoint({"step": 1, "w": torch.ones(3)}, folder)
    before = (folder / modelio.LAST).read_bytes()

    disk_with_room(monkeypatch, 4096)
    with pytest.raises(OSError) as raised:
        modelio.save_checkpoint({"step": 2, "w": torch.zeros(50_000)}, folder)

    assert raised.value.errno == errno.ENOSPC  # torch raises "unexpected pos" over it
    assert raised.value.filename == str(folder / modelio.LAST)
    assert (folder / modelio.LAST).read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [modelio.LAST]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_the_cli_explains_a_full_disk_and_exits_2(tmp_path, monkeypatch, capsys, code):
    target = tmp_path / "results" / "models" / "a" / "r0.pt"

    def fails(args):
        raise OSError(code, "disk full", str(target))

    monkeypatch.setattr(cli, "run", fails)
    assert cli.main(["train", "a"]) == 2
    message = capsys.readouterr().err
    assert f"writing {target}" in message and f"GiB free under {tmp_path}" in message
    assert "run the same command again" in message


def test_other_os_errors_keep_their_traceback(monkeypatch):
    def fails(args):
        raise PermissionError(errno.EACCES, "denied", "results/x")

    monkeypatch.setattr(cli, "run", fails)
    with pytest.raises(PermissionError):
        cli.main(["train", "a"])
