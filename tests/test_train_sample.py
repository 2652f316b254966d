import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from medgan import augment, modelio, networks, paths, sample, train, variants


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (128, 192), (48, 80)])
def test_dcgan_shapes_including_non_square(size):
    G, D = variants.build("dcgan", size, {"z_dim": 8, "ngf": 4, "ndf": 4, "spectral_norm": False, "minibatch_std": False})
    images = G(torch.randn(3, 8))
    assert images.shape == (3, 1, *size)
    assert D(images).shape == (3,)


def test_unsupported_size_is_explained():
    with pytest.raises(ValueError, match="divisible by 2"):
        networks.upsampling_steps(33, 33)


def test_diffaugment_keeps_shape_and_changes_images():
    x = torch.rand(4, 1, 16, 16)
    rng = torch.Generator().manual_seed(0)
    y = augment.diff_augment(x, ["brightness", "contrast", "translation", "cutout"], rng)
    assert y.shape == x.shape and not torch.equal(x, y)
    cut = augment.cutout(torch.ones(2, 1, 16, 16), torch.Generator().manual_seed(1))
    assert ((cut == 0).float().mean(dim=(1, 2, 3)) > 0.1).all()  # a hole in every image


def test_training_writes_model_and_finite_loss_log(prepared):
    train.train(prepared, "tiny_dcgan_tumour")
    log = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment="tiny_dcgan_tumour"))
    assert list(log["step"]) == [2, 4, 6]
    assert np.isfinite(log[["loss_d", "loss_g"]].to_numpy()).all()
    assert log["d_accuracy"].between(0, 1).all()
    G, model = train.load_generator(paths.path(paths.MODEL, experiment="tiny_dcgan_tumour"))
    assert model["step"] == 6 and G(torch.randn(2, 16)).shape == (2, 1, 32, 32)


def _weights(experiment):
    return torch.load(paths.path(paths.MODEL, experiment=experiment), weights_only=True)["G"]


def test_same_seed_same_model(prepared):
    train.train(prepared, "tiny_dcgan_healthy")
    first = _weights("tiny_dcgan_healthy")
    modelio.remove_checkpoints(paths.path(paths.CHECKPOINTS, experiment="tiny_dcgan_healthy"))
    train.train(prepared, "tiny_dcgan_healthy")
    second = _weights("tiny_dcgan_healthy")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_resume_equals_straight_run(prepared):
    name = "tiny_dcgan_tumour"
    train.train(prepared, name)
    straight = _weights(name)
    log_straight = pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name))
    modelio.remove_checkpoints(paths.path(paths.CHECKPOINTS, experiment=name))
    paths.path(paths.MODEL, experiment=name).unlink()

    train.Trainer(prepared, name).run(stop_after=4)  # "killed" after 4 of 6 steps
    assert not paths.path(paths.MODEL, experiment=name).exists()
    train.Trainer(prepared, name).run()  # a fresh process picks up the checkpoint
    resumed = _weights(name)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    pd.testing.assert_frame_equal(log_straight, pd.read_csv(paths.path(paths.TRAIN_LOG, experiment=name)))


def test_checkpoint_from_other_params_is_not_resumed(prepared, capsys):
    name = "tiny_dcgan_tumour"
    train.Trainer(prepared, name).run(stop_after=3)
    prepared["train"]["batch_size"] = 4
    trainer = train.Trainer(prepared, name)
    assert trainer.try_resume() is False
    assert "other params" in capsys.readouterr().out


def test_sample_writes_n_images_and_grid(prepared):
    train.train(prepared, "tiny_dcgan_tumour")
    sample.sample(prepared, "tiny_dcgan_tumour")
    folder = paths.path(paths.SAMPLES, experiment="tiny_dcgan_tumour")
    files = sorted(folder.glob("tumour/*.png"))
    assert len(files) == 12
    index = pd.read_csv(folder / "samples.csv")
    assert list(index["path"]) == [f"tumour/{i:05d}.png" for i in range(12)]
    assert Image.open(files[0]).size == (32, 32)
    grid = Image.open(paths.path(paths.GRID, experiment="tiny_dcgan_tumour"))
    assert grid.size == (4 * 34 + 2, 3 * 34 + 2)  # 4 columns x 3 rows, 2-pixel padding
    again = sample.generate(train.load_generator(paths.path(paths.MODEL, experiment="tiny_dcgan_tumour"))[0], 12, 0)
    assert np.array_equal(again[0, 0].numpy(), np.asarray(Image.open(files[0])))


def subnormal_survives() -> bool:
    return (torch.tensor(torch.finfo(torch.float32).tiny) / 2).item() > 0


def test_denormal_flushing_and_threads_hold_only_while_training_runs(prepared, monkeypatch):
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormal floats (torch.set_flush_denormal is x86-only)")
    configured = prepared["resources"]["train"]["threads"]
    threads = configured + 1
    torch.set_num_threads(threads)
    trainer = train.Trainer(prepared, "tiny_dcgan_tumour")
    during, step = [], trainer.train_step
    monkeypatch.setattr(trainer, "train_step",
                        lambda: during.append((subnormal_survives(), torch.get_num_threads())) or step())
    try:
        trainer.run()
    finally:
        after = (subnormal_survives(), torch.get_num_threads())
        torch.set_num_threads(threads)
    assert during == [(False, configured)] * trainer.total  # flushed, with the run's threads
    assert after == (True, threads)  # as before the run: a subnormal survives a division again


def test_run_settings_restore_a_flushing_caller_and_survive_an_error():
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormal floats (torch.set_flush_denormal is x86-only)")
    threads = torch.get_num_threads()
    try:
        assert train.denormals_flushed()
        with train.process_settings(threads, flush_denormal=False):
            assert train.denormals_flushed()  # a GPU run leaves the caller's setting alone
        assert train.denormals_flushed()
        torch.set_flush_denormal(False)
        with pytest.raises(train.DivergenceError):
            with train.process_settings(threads, flush_denormal=True):
                assert train.denormals_flushed()
                raise train.DivergenceError("diverged")
        assert not train.denormals_flushed() and subnormal_survives()
    finally:
        torch.set_flush_denormal(False)
