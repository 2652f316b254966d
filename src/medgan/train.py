"""train: one GAN per experiment, resumable from its last checkpoint.

Images are decoded once into a uint8 tensor and served from memory. A checkpoint holds
everything needed to continue exactly (networks, optimisers, RNG states, step, log), and
is written atomically under results/checkpoints/<experiment>/ — outside the declared
outputs, so a killed job restarts from it instead of from zero.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import config, models, paths
from .augment import diff_augment
from .atomic import atomic_file
from .prepare import load_images, load_manifest

LOG_FIELDS = ["step", "loss_d", "loss_g", "d_real", "d_fake", "d_accuracy"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def training_images(params: dict, exp: dict, split: str = "train") -> torch.Tensor:
    """uint8 tensor (N, 1, H, W) of one dataset/split/class."""
    slices = paths.path(paths.SLICES, dataset=exp["dataset"])
    manifest = load_manifest(slices)
    rows = manifest[(manifest["split"] == split) & (manifest["class"] == exp["class"])]
    if rows.empty:
        raise config.ConfigError(
            f"{slices}/manifest.csv has no '{exp['class']}' images in split '{split}' — "
            f"check the dataset's classes or its split ratios")
    return torch.from_numpy(load_images(slices, rows)).unsqueeze(1)


def to_model_range(batch_uint8: torch.Tensor) -> torch.Tensor:
    return batch_uint8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


class Trainer:
    """Owns the networks, optimisers, data, loop, checkpoints and loss log of one experiment."""

    def __init__(self, params: dict, name: str):
        self.name = name
        self.exp = config.experiment(params, name)
        self.settings = params["train"]
        self.hp = params["variants"].get(self.exp["variant"], {})
        self.image_size = tuple(params["datasets"][self.exp["dataset"]]["image_size"])
        self.fingerprint = hashlib.sha1(json.dumps(
            config.stage_params(params, "train", name), sort_keys=True).encode()).hexdigest()

        seed_everything(params["seed"])
        torch.set_num_threads(params["resources"]["train"]["threads"])
        self.images = training_images(params, self.exp)
        self.G, self.D = models.build(self.exp["variant"], self.image_size, self.hp)
        betas = (self.hp["beta1"], self.hp["beta2"])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.hp["lr"], betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.hp["lr"], betas=betas)
        self.loss = nn.BCEWithLogitsLoss()
        self.rng = torch.Generator().manual_seed(params["seed"])
        self.step = 0
        self.log: list[dict] = []
        self.checkpoint = paths.path(paths.CHECKPOINTS, experiment=name) / "last.pt"

    # -- data -------------------------------------------------------------------------------
    def next_batch(self) -> torch.Tensor:
        idx = torch.randint(len(self.images), (self.settings["batch_size"],), generator=self.rng)
        batch = to_model_range(self.images[idx])
        if self.settings["hflip"]:
            flip = torch.rand(len(batch), generator=self.rng) < 0.5
            batch[flip] = batch[flip].flip(-1)
        return batch

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.hp["z_dim"], generator=self.rng)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        policy = self.settings["diffaugment"]
        return diff_augment(images, policy, self.rng) if policy else images

    # -- one step ---------------------------------------------------------------------------
    def train_step(self) -> dict:
        real = self.next_batch()
        fake = self.G(self.noise(len(real)))
        ones, zeros = torch.ones(len(real)), torch.zeros(len(real))

        self.opt_d.zero_grad(set_to_none=True)
        logits_real, logits_fake = self.D(self.augment(real)), self.D(self.augment(fake.detach()))
        loss_d = self.loss(logits_real, ones) + self.loss(logits_fake, zeros)
        loss_d.backward()
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        loss_g = self.loss(self.D(self.augment(fake)), ones)
        loss_g.backward()
        self.opt_g.step()

        with torch.no_grad():
            accuracy = ((logits_real > 0).float().mean() + (logits_fake < 0).float().mean()) / 2
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
                "d_real": torch.sigmoid(logits_real).mean().item(),
                "d_fake": torch.sigmoid(logits_fake).mean().item(),
                "d_accuracy": accuracy.item()}

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict:
        return {"step": self.step, "fingerprint": self.fingerprint, "log": self.log,
                "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(), "python_rng": random.getstate()}

    def save_checkpoint(self) -> None:
        with atomic_file(self.checkpoint) as tmp:
            torch.save(self.state(), tmp)

    def try_resume(self) -> bool:
        if not self.checkpoint.exists():
            return False
        state = torch.load(self.checkpoint, weights_only=False)
        if state["fingerprint"] != self.fingerprint:
            print(f"{self.checkpoint}: made with other params — starting over")
            return False
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        self.step, self.log = state["step"], state["log"]
        print(f"resuming {self.name} from step {self.step} ({self.checkpoint})")
        return True

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> None:
        """Train to the budget (or stop after `stop_after` steps in this call, for tests)."""
        self.try_resume()
        total = self.settings["iterations"]
        end = total if stop_after is None else min(total, self.step + stop_after)
        self.G.train()
        self.D.train()
        with tqdm(total=total, initial=self.step, desc=f"train {self.name}", unit="it") as bar:
            while self.step < end:
                metrics = self.train_step()
                self.step += 1
                bar.update(1)
                if self.step % self.settings["log_every"] == 0 or self.step == total:
                    self.log.append({"step": self.step, **metrics})
                    bar.set_postfix(loss_d=f"{metrics['loss_d']:.3f}", loss_g=f"{metrics['loss_g']:.3f}")
                if self.step % self.settings["checkpoint_every"] == 0 or self.step == end:
                    self.save_checkpoint()
        if self.step >= total:
            self.write_outputs()

    def write_outputs(self) -> None:
        model = {"variant": self.exp["variant"], "experiment": self.name, "hp": self.hp,
                 "image_size": self.image_size, "G": self.G.state_dict(), "step": self.step}
        with atomic_file(paths.path(paths.MODEL, experiment=self.name)) as tmp:
            torch.save(model, tmp)
        with atomic_file(paths.path(paths.TRAIN_LOG, experiment=self.name)) as tmp:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
                writer.writeheader()
                writer.writerows({k: row[k] for k in LOG_FIELDS} for row in self.log)


def load_generator(model_path: str | Path) -> tuple[nn.Module, dict]:
    model = torch.load(model_path, weights_only=False)
    G, _ = models.build(model["variant"], model["image_size"], model["hp"])
    G.load_state_dict(model["G"])
    return G.eval(), model


def train(params: dict, name: str) -> None:
    Trainer(params, name).run()
