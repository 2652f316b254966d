"""Model and checkpoint files are untrusted input: a planted pickle payload runs nothing, a
damaged checkpoint is named and training resumes from the previous one (or starts over),
and every file loads with weights_only=True."""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest
import torch

from medgan import cli, modelio, paths, train

NAME = "tiny_dcgan_tumour"


class _Payload:
    """Unpickling this creates `marker`: proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 1, "fingerprint": "x", "G": _Payload(marker)}, path)


def _weights(path) -> dict:
    return torch.load(path, weights_only=True)["G"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_payload_in_a_checkpoint_runs_nothing_and_training_starts_over(prepared, tmp_path, capsys):
    marker = tmp_path / "pwned"
    last = paths.path(paths.CHECKPOINTS, experiment=NAME) / "last.pt"
    _plant(last, marker)
    assert cli.main(["train", NAME]) == 0
    out = capsys.readouterr().out
    assert not marker.exists()
    assert f"{last}: refused" in out and "starting over" in out
    assert paths.path(paths.MODEL, experiment=NAME).exists()
    torch.load(last, weights_only=True)  # medgan's own checkpoints need nothing else


def test_payload_in_a_model_file_runs_nothing_under_sample(prepared, tmp_path, capsys):
    marker = tmp_path / "pwned"
    model = paths.path(paths.MODEL, experiment=NAME)
    _plant(model, marker)
    assert cli.main(["sample", NAME]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert f"{model}: refused" in err and "Traceback" not in err
    assert not paths.path(paths.SAMPLES, experiment=NAME).exists()


@pytest.mark.parametrize("damage", ["truncated", "zero bytes", "junk"])
def test_damaged_model_file_is_one_error_naming_it(prepared, capsys, damage):
    train.train(prepared, NAME)
    model = paths.path(paths.MODEL, experiment=NAME)
    data = model.read_bytes()
    model.write_bytes({"truncated": data[: len(data) // 2], "zero bytes": b"", "junk": b"not a model" * 9}[damage])
    capsys.readouterr()
    assert cli.main(["sample", NAME]) == 2
    err = capsys.readouterr().err
    assert f"{model}: damaged or not a PyTorch file" in err and len(err.strip().splitlines()) == 1


def test_model_file_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"G": {}}, path)
    with pytest.raises(modelio.ModelFileError, match=r"m\.pt: not a medgan file .*missing variant"):
        modelio.load_generator(path)


def test_truncated_last_checkpoint_resumes_from_the_previous_one(prepared, capsys):
    train.train(prepared, NAME)
    straight = _weights(paths.path(paths.MODEL, experiment=NAME))
    folder = paths.path(paths.CHECKPOINTS, experiment=NAME)
    modelio.remove_checkpoints(folder)
    paths.path(paths.MODEL, experiment=NAME).unlink()

    train.Trainer(prepared, NAME).run(stop_after=4)  # checkpoints at steps 3 (previous) and 4 (last)
    data = (folder / "last.pt").read_bytes()
    (folder / "last.pt").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    train.Trainer(prepared, NAME).run()
    out = capsys.readouterr().out
    assert f"{folder / 'last.pt'}: damaged" in out and f"skipped, trying {folder / 'previous.pt'}" in out
    assert f"resuming {NAME} from step 3 ({folder / 'previous.pt'})" in out
    assert _same(straight, _weights(paths.path(paths.MODEL, experiment=NAME)))


def test_both_checkpoints_damaged_starts_over_and_says_so(prepared, capsys):
    train.train(prepared, NAME)
    straight = _weights(paths.path(paths.MODEL, experiment=NAME))
    folder = paths.path(paths.CHECKPOINTS, experiment=NAME)
    (folder / "last.pt").write_bytes(b"")
    (folder / "previous.pt").write_bytes(b"PK\x03\x04 half a zip")
    capsys.readouterr()
    assert cli.main(["train", NAME]) == 0
    out = capsys.readouterr().out
    assert f"{folder / 'previous.pt'}: damaged" in out and "starting over" in out
    assert "Traceback" not in out and f"resuming {NAME}" not in out
    assert _same(straight, _weights(paths.path(paths.MODEL, experiment=NAME)))


def test_payload_in_the_fid_weights_runs_nothing(tmp_path):
    from medgan.metrics import inception

    marker = tmp_path / "pwned"
    weights = tmp_path / inception.PYTORCH_FID_FILE
    _plant(weights, marker)
    with pytest.raises(modelio.UnsafeFileError, match=inception.PYTORCH_FID_FILE):
        inception.model(inception.Weights(weights, weights.name, "0" * 64, "planted"))
    assert not marker.exists()


def test_model_file_of_another_experiment_is_refused_by_sample(prepared, capsys):
    train.train(prepared, "tiny_dcgan_healthy")
    paths.path(paths.MODEL, experiment=NAME).parent.mkdir(parents=True, exist_ok=True)
    paths.path(paths.MODEL, experiment="tiny_dcgan_healthy").rename(paths.path(paths.MODEL, experiment=NAME))
    capsys.readouterr()
    assert cli.main(["sample", NAME]) == 2
    assert "trained for experiment 'tiny_dcgan_healthy'" in capsys.readouterr().err


def test_checkpoint_whose_weights_do_not_fit_starts_over(prepared, capsys):
    trainer = train.Trainer(prepared, NAME)
    trainer.run(stop_after=3)
    folder = paths.path(paths.CHECKPOINTS, experiment=NAME)
    state = torch.load(folder / "last.pt", weights_only=True)
    key = next(iter(state["G"]))
    state["G"][key] = torch.zeros(3, 3)  # as if saved by a medgan with other networks
    torch.save(state, folder / "last.pt")
    capsys.readouterr()
    fresh = train.Trainer(prepared, NAME)
    assert fresh.try_resume() is False and fresh.step == 0
    assert f"{folder / 'last.pt'}: does not fit this experiment's networks (G.{key}: shape (3, 3)" in capsys.readouterr().out
