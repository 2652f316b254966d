"""train: one training loop for every variant (GANs and DDPMs), resumable from its last checkpoint.

Images are decoded once into a uint8 tensor (on the GPU when there is one) and batches are
drawn from memory. A checkpoint holds everything needed to continue exactly (G, D, the EMA
copy, optimisers, RNG states, step, log, progress grids) and is written atomically under
results/checkpoints/<experiment>/ — outside the declared outputs, so a killed job restarts
from it instead of from zero. Under `torchrun` the engine runs DDP; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import config, labels, modelio, optim, paths, provenance, variants
from .atomic import atomic_file
from .augment import diff_augment
from .guard import Alarm, DivergenceError, Guard
from .image_io import load_masks, save_grid, to_model_range, to_uint8
from .losses import GANLoss, gradient_penalty, r1_penalty
from .modelio import load_generator  # noqa: F401 (the name callers and tests use)
from .prepare import load_images, load_manifest

LOG_FIELDS = ["step", "loss_d", "loss_g", "d_real", "d_fake", "d_accuracy", "penalty", "l1", "fake_std",
              "spread", "guard", "lr"]
PROGRESS_COLUMNS = 8


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def process_settings(threads: int, flush_denormal: bool):
    """torch's thread count and (on CPUs) subnormal flushing for one run, restored afterwards:
    both are process-wide, and whoever trains then evaluates in one process should evaluate as
    a fresh process would. torch.set_flush_denormal has no getter: denormals_flushed() probes."""
    threads_before, flushed_before = torch.get_num_threads(), denormals_flushed()
    torch.set_num_threads(threads)
    if flush_denormal:
        torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.set_flush_denormal(flushed_before)


def denormals_flushed() -> bool:
    """Whether this thread flushes subnormal floats to zero (half the smallest normal float32 is one)."""
    return (torch.tensor(torch.finfo(torch.float32).tiny) / 2).item() == 0.0


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" and not torch.cuda.is_available():
        raise config.ConfigError("train.device is 'cuda' but this machine has no usable CUDA GPU — use "
                                 "device: auto (GPU when there is one) or cpu")
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def uses_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast by default on GPUs only: on a CPU it is opt-in (`precision: bf16`), because
    CPUs with and without bf16 instructions would otherwise train the same params differently."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def mean_pairwise_rms(images: torch.Tensor) -> torch.Tensor:
    flat = images.detach().float().flatten(1)
    n = len(flat)
    distances = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
    return distances.sum() / max(1, n * (n - 1))


def sample_spread(fake: torch.Tensor, real: torch.Tensor) -> float:
    """How different the generated images of a batch are from each other, relative to how
    different the real images of the batch are (~1 healthy, ~0 when G ignores its noise)."""
    reference = mean_pairwise_rms(real)
    return (mean_pairwise_rms(fake) / reference.clamp_min(1e-8)).item()


# -- data --------------------------------------------------------------------------------------

@dataclass
class Batch:
    images: torch.Tensor  # float in [-1, 1], (B, 1, H, W)
    labels: torch.Tensor | None = None  # class indices (conditional variants)
    masks: torch.Tensor | None = None  # float in [-1, 1] (paired variants)


def _resized(images: torch.Tensor, size, mode: str) -> torch.Tensor:
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    kwargs = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(images.float(), size=tuple(size), mode=mode, **kwargs).round().clamp(0, 255).to(torch.uint8)


class TrainingData:
    """The training split of one dataset (the experiment's classes) held in memory as uint8."""

    def __init__(self, settings: dict, device: torch.device, split: str = "train"):
        exp, self.classes = settings["experiment"], settings["classes"]
        slices = paths.path(paths.SLICES, dataset=exp["dataset"])
        manifest = load_manifest(slices)
        rows = manifest[(manifest["split"] == split) & manifest["class"].isin(self.classes)]
        if rows.empty:
            raise config.ConfigError(f"{slices}/manifest.csv has no {self.classes} images in split "
                                     f"'{split}' — check the dataset's classes or its split ratios")
        self.case_hashes = provenance.case_hashes(rows["case"])  # in the model: evaluate checks the split
        size = settings["image_size"]
        images = torch.from_numpy(load_images(slices, rows)).unsqueeze(1)
        self.images = _resized(images, size, "bilinear").to(device)
        self.labels = torch.tensor([self.classes.index(c) for c in rows["class"]], device=device)
        variant = variants.VARIANTS[exp["variant"]]
        self.masks, self.encoding = None, None
        if variant.paired:
            self.encoding = labels.encoding_from_dict(settings["labels"])
            self.masks = self._masks(slices, rows, size, device, self.encoding)
            self._condition, self._hp = variant.condition, settings["hp"]
        self.device = device

    @staticmethod
    def _masks(slices: Path, rows, size, device, encoding: labels.Encoding):
        if "mask_path" not in rows or (rows["mask_path"].fillna("") == "").any():
            raise config.ConfigError(f"{slices}/manifest.csv: pix2pix needs a label mask per image "
                                     f"(column mask_path) — prepare the dataset with masks")
        masks = load_masks(slices, rows)
        if int(masks.max()) > encoding.max_value:
            raise config.ConfigError(f"{slices}: training masks hold label {int(masks.max())}, above the "
                                     f"{encoding.max_value} this dataset's kind writes — prepare it again")
        return _resized(masks, size, "nearest").to(device)

    def __len__(self) -> int:
        return len(self.images)

    def condition(self, images: torch.Tensor, masks_uint8: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """The generator's input for paired variants (the label map, or more)."""
        return self._condition(images, masks_uint8, self.encoding, self._hp, rng)

    def batch(self, size: int, rng: torch.Generator, hflip: bool) -> Batch:
        idx = torch.randint(len(self), (size,), generator=rng).to(self.device)
        images = to_model_range(self.images[idx])
        masks = self.masks[idx] if self.masks is not None else None
        if hflip:
            flip = (torch.rand(size, generator=rng) < 0.5).to(self.device)
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            if masks is not None:
                masks = torch.where(flip[:, None, None, None], masks.flip(-1), masks)
        return Batch(images, self.labels[idx], self.condition(images, masks, rng) if masks is not None else None)


# -- distributed -------------------------------------------------------------------------------

def started_by_torchrun() -> bool:
    """torchrun (torch.distributed.run) sets TORCHELASTIC_RUN_ID in every process it starts, also
    with --nproc_per_node 1; a launcher that sets WORLD_SIZE > 1 itself counts too."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def distributed_rank() -> tuple[int, int]:
    """(rank, world size); initialises the process group (NCCL on a GPU, gloo on a CPU) when
    started by torchrun, even for one process, so that `--nproc_per_node 1` runs the DDP path."""
    if not started_by_torchrun():
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def distributed_backend() -> str:
    return dist.get_backend() if dist.is_available() and dist.is_initialized() else "none"


def total_steps(settings: dict, n_images: int) -> int:
    train = settings["train"]
    if train["epochs"]:
        return max(1, math.ceil(train["epochs"] * n_images / train["batch_size"]))
    if not train["iterations"]:
        raise config.ConfigError("train: set `iterations` or `epochs`")
    return train["iterations"]


# -- the GAN family's step -----------------------------------------------------------------------

class GANStep:
    """What one GAN iteration does (n_critic D steps, one G step) and what its networks need
    for progress grids and the guard. The loop (Trainer) owns everything around it."""

    log_fields = LOG_FIELDS
    loss_keys = ("loss_d", "loss_g")
    hint = "a lower lr, DiffAugment (train.diffaugment), spectral_norm or r1_gamma"

    def __init__(self, variant: variants.Variant, settings: dict, data: TrainingData, device: torch.device,
                 wrap, autocast, total: int):
        self.variant, self.hp, self.train_cfg = variant, settings["hp"], settings["train"]
        self.data, self.device, self.autocast = data, device, autocast
        self.n_classes = len(settings["classes"])
        self.G, self.D = variant.build(tuple(settings["image_size"]), self.hp, self.n_classes)
        self.G.to(device)
        self.D.to(device)
        if self.train_cfg["channels_last"]:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.opt_g, self.opt_d = optim.adam(self.G, self.hp), optim.adam(self.D, self.hp)
        self.schedulers = optim.lr_schedulers((self.opt_g, self.opt_d), self.train_cfg, total)
        self.G_run, self.D_run = wrap(self.G), wrap(self.D)
        self.loss = GANLoss(self.hp["loss"])
        self.networks = {"G": self.G, "D": self.D}
        self.optimizers = {"opt_g": self.opt_g, "opt_d": self.opt_d}

    # -- inputs -------------------------------------------------------------------------------
    def noise(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.hp["z_dim"], generator=rng).to(self.device)

    def fixed_inputs(self, rng: torch.Generator, n: int) -> dict:
        if self.variant.paired:
            idx = torch.randperm(len(self.data), generator=rng)[:n].to(self.device)
            return {"masks": self.data.condition(to_model_range(self.data.images[idx]), self.data.masks[idx], rng)}
        labels = torch.arange(n, device=self.device) % self.n_classes
        return {"z": self.noise(n, rng), "labels": labels}

    def generate(self, G: nn.Module, batch: Batch, rng: torch.Generator) -> torch.Tensor:
        if self.variant.paired:
            return G(batch.masks)
        return G(self.noise(len(batch.images), rng), batch.labels if self.variant.conditional else None)

    def discriminate(self, D: nn.Module, images: torch.Tensor, batch: Batch) -> torch.Tensor:
        if self.variant.paired:  # PatchGAN judges (mask, image) pairs, augmented together
            return D(self.augment(torch.cat([batch.masks, images], 1)))
        return D(self.augment(images), batch.labels if self.variant.conditional else None)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        policy = self.train_cfg["diffaugment"]
        return diff_augment(images, policy, None) if policy else images

    # -- one step -----------------------------------------------------------------------------
    def discriminator_step(self, batch: Batch, fake: torch.Tensor) -> dict:
        self.opt_d.zero_grad(set_to_none=True)
        real = batch.images.requires_grad_(self.hp["r1_gamma"] > 0)
        with self.autocast():
            real_logits = self.discriminate(self.D_run, real, batch)
            fake_logits = self.discriminate(self.D_run, fake.detach(), batch)
            loss = self.loss.discriminator(real_logits.float(), fake_logits.float())
        penalty = torch.zeros((), device=self.device)
        if self.hp.get("gp_lambda"):
            critic = lambda x, labels: self.discriminate(self.D, x, batch)  # noqa: E731
            penalty = self.hp["gp_lambda"] * gradient_penalty(critic, batch.images, fake, batch.labels)
        if self.hp["r1_gamma"] > 0:
            penalty = penalty + 0.5 * self.hp["r1_gamma"] * r1_penalty(real_logits.float(), real)
        (loss + penalty).backward()
        self.opt_d.step()
        with torch.no_grad():
            accuracy = ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean()) / 2
        return {"loss_d": loss.item(), "penalty": penalty.item(), "d_accuracy": accuracy.item(),
                "d_real": self.loss.probabilities(real_logits.float()).mean().item(),
                "d_fake": self.loss.probabilities(fake_logits.float()).mean().item()}

    def generator_step(self, batch: Batch, fake: torch.Tensor) -> dict:
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)  # no D gradients in the G step: faster, and DDP-safe
        with self.autocast():
            loss = self.loss.generator(self.discriminate(self.D, fake, batch).float())
            l1 = (F.l1_loss(fake.float(), batch.images) if self.variant.paired
                  else torch.zeros((), device=self.device))
        (loss + self.hp.get("l1_lambda", 0.0) * l1).backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        return {"loss_g": loss.item(), "l1": l1.item(),
                "fake_std": fake.detach().float().flatten(1).std(1).mean().item()}

    def step(self, rng: torch.Generator) -> dict:
        cfg = self.train_cfg
        for critic_step in range(self.hp["n_critic"]):
            batch = self.data.batch(cfg["batch_size"], rng, cfg["hflip"])
            last = critic_step == self.hp["n_critic"] - 1
            with self.autocast(), (contextlib.nullcontext() if last else torch.no_grad()):
                fake = self.generate(self.G_run, batch, rng)
            d_metrics = self.discriminator_step(batch, fake)
        g_metrics = self.generator_step(batch, fake)
        for _ in range(cfg["g_steps"] - 1):  # more G updates on this batch, each on fresh noise
            with self.autocast():
                fake = self.generate(self.G_run, batch, rng)
            g_metrics = self.generator_step(batch, fake)
        metrics = {**d_metrics, **g_metrics, "lr": self.opt_g.param_groups[0]["lr"]}
        metrics["spread"] = sample_spread(fake, batch.images)
        for scheduler in self.schedulers:  # once per G step, after the optimisers stepped
            scheduler.step()
        return metrics  # the last fake served the G step

    def collapse_reason(self, metrics: dict, guard: dict) -> str | None:
        """This step's sign of a collapse (D sees through near-constant images), or None."""
        if metrics["d_accuracy"] >= 0.999 and metrics["fake_std"] < guard["collapse_std"]:
            return f"collapse: D accuracy 1.0 and near-constant generated images (pixel std < {guard['collapse_std']})"
        return None

    # -- progress grids -----------------------------------------------------------------------
    def render(self, G: nn.Module, fixed: dict) -> torch.Tensor:
        if self.variant.paired:
            return G(fixed["masks"])
        return G(fixed["z"], fixed["labels"] if self.variant.conditional else None)

    def progress_metrics(self, images: torch.Tensor, fixed: dict, spread) -> dict:
        return {}  # the spread is measured on every training batch


def family_step(variant: variants.Variant):
    """The step class of a variant's family (the loop never asks which family it runs)."""
    if variant.family == "diffusion":
        from .diffusion import DiffusionStep  # imports MONAI: only when a DDPM is trained

        return DiffusionStep
    return GANStep


# -- the loop ----------------------------------------------------------------------------------

class Trainer:
    """The training loop of one experiment: data, budget, EMA, checkpoints and resume, guard,
    log and progress grids. What one iteration does belongs to the variant family's step
    object (`self.family`: GANStep, diffusion.DiffusionStep)."""

    def __init__(self, params: dict, name: str, replicate: int = 0):
        self.name, self.replicate = name, config.check_replicate(params, name, replicate)
        self.settings = config.training_settings(params, name, replicate)
        self.exp, self.hp, self.train_cfg = self.settings["experiment"], self.settings["hp"], self.settings["train"]
        self.variant = variants.VARIANTS[self.exp["variant"]]
        self.fingerprint = hashlib.sha1(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()
        self.rank, self.world = distributed_rank()
        self.device = pick_device(self.train_cfg["device"])
        seed = self.settings["seed"]  # the replicate's (config.replicate_seed)

        seed_everything(seed)
        self.threads = params["resources"]["train"]["threads"]
        self.data = TrainingData(self.settings, self.device)
        self.total = total_steps(self.settings, len(self.data))
        self.family = family_step(self.variant)(self.variant, self.settings, self.data, self.device,
                                                self._wrapped, self.autocast, self.total)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if self.hp["ema"] else None
        self.seed = seed
        self.rng = torch.Generator().manual_seed(seed + 1000 * self.rank)
        self.fixed = self.family.fixed_inputs(torch.Generator().manual_seed(seed), PROGRESS_COLUMNS)
        self.guard = Guard(self.train_cfg["divergence"], self.family.loss_keys, self.family.collapse_reason)
        self.step = 0
        self.log: list[dict] = []
        self.progress: list[tuple[int, torch.Tensor]] = []
        self.checkpoint = paths.path(paths.CHECKPOINTS, experiment=name, replicate=replicate) / "last.pt"

    def _wrapped(self, net: nn.Module) -> nn.Module:
        if self.train_cfg["compile"]:
            net = torch.compile(net)
        if dist.is_initialized():
            net = DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return net

    @property
    def G(self) -> nn.Module:
        """The network that is sampled from (and averaged by EMA)."""
        return self.family.networks["G"]

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if uses_bf16(self.train_cfg["precision"], self.device):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def run_settings(self):
        """The process-wide settings this run trains with, restored on exit (a context manager;
        `run` uses it, and so must code that calls train_step itself)."""
        # subnormal floats are slow on x86: flushing them is 0-11% faster here (bench_denormal.py)
        return process_settings(self.threads, flush_denormal=self.device.type == "cpu")

    def train_step(self) -> dict:
        metrics = self.family.step(self.rng)
        if self.G_ema is not None:
            self.update_ema()
        return metrics

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = self.hp["ema"]
        if self.hp.get("ema_warmup"):  # short runs: the average forgets the random init sooner
            updates = self.step + 1
            decay = min(decay, (1 + updates) / (10 + updates))
        for ema, live in zip(self.G_ema.parameters(), self.G.parameters()):
            ema.lerp_(live, 1.0 - decay)
        for ema, live in zip(self.G_ema.buffers(), self.G.buffers()):
            ema.copy_(live)

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict:
        return {"step": self.step, "fingerprint": self.fingerprint, "log": self.log,
                "progress": self.progress, **self.guard.state(),
                **{key: net.state_dict() for key, net in self.family.networks.items()},
                **{key: opt.state_dict() for key, opt in self.family.optimizers.items()},
                "G_ema": self.G_ema.state_dict() if self.G_ema is not None else None,
                "schedulers": [scheduler.state_dict() for scheduler in self.family.schedulers],
                "rng": self.rng.get_state(), **modelio.rng_states(self.device)}

    def save_checkpoint(self) -> None:
        if self.is_writer:
            modelio.save_checkpoint(self.state(), self.checkpoint.parent)

    def load_checkpoint(self, state: dict | None = None) -> None:
        if state is None:
            found = modelio.load_checkpoint(self.checkpoint.parent, self.device)
            if found is None:
                raise modelio.ModelFileError(f"{self.checkpoint.parent}: no loadable checkpoint to roll back to")
            state = found[0]
        for key, obj in {**self.family.networks, **self.family.optimizers}.items():
            obj.load_state_dict(state[key])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        for scheduler, saved in zip(self.family.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        self.rng.set_state(state["rng"].cpu())
        modelio.set_rng_states(state, self.device)
        self.step, self.log = state["step"], state["log"]
        self.progress = [tuple(p) for p in state["progress"]]
        self.guard.load_state(state)

    def set_aside(self, label: str):
        """Keep another run's checkpoints (moved by the writing process only, under DDP)."""
        return modelio.set_aside_checkpoints(self.checkpoint.parent, label) if self.is_writer else "the writer's set-aside/"

    def try_resume(self) -> bool:
        found = modelio.load_checkpoint(self.checkpoint.parent, self.device)
        if found is None:
            return False
        state, path = found
        if state["fingerprint"] != self.fingerprint:
            kept = self.set_aside(f"params-{str(state['fingerprint'])[:12]}")
            print(f"{path}: made with other params — kept in {kept}, starting over")
            return False
        misfit = modelio.misfit(state, {**self.family.networks, "G_ema": self.G_ema})
        if misfit:
            kept = self.set_aside(f"misfit-{str(state['fingerprint'])[:12]}")
            print(f"{path}: does not fit this experiment's networks ({misfit}; another medgan version?) "
                  f"— kept in {kept}, starting over")
            return False
        self.load_checkpoint(state)
        print(f"resuming {self.name} from step {self.step} ({path})")
        return True

    # -- progress grids -----------------------------------------------------------------------
    @torch.no_grad()
    def snapshot(self) -> dict:
        """Add a row of fixed-input samples to the progress grid; the family's metrics of it."""
        G = self.G_ema if self.G_ema is not None else self.G
        G.eval()
        with self.autocast():
            images = self.family.render(G, self.fixed)
        self.G.train()
        self.progress.append((self.step, to_uint8(images)))
        return self.family.progress_metrics(images, self.fixed, sample_spread)

    # -- the loop -----------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> None:
        """Train to the budget (or stop after `stop_after` steps in this call, for tests)."""
        with self.run_settings():
            self.try_resume()
            end = self.total if stop_after is None else min(self.total, self.step + stop_after)
            for net in self.family.networks.values():
                net.train()
            with tqdm(total=self.total, initial=self.step, desc=f"train {self.name}", unit="it",
                      disable=not self.is_writer) as bar:
                while self.step < end:
                    self.run_step(bar, end)
            if self.step >= self.total and self.is_writer:
                self.write_outputs()

    def run_step(self, bar: tqdm, end: int) -> None:
        """One step, its guards, then progress grid, log row and checkpoint when they are due."""
        metrics = self.train_step()
        self.step += 1
        alarm = self.guard.check(self.step, metrics)
        if alarm and alarm.action != "warn":
            self.roll_back_or_stop(alarm)
            bar.n = self.step
            return
        if alarm:  # logged at once, whatever log_every says
            print(f"WARNING {self.name}: step {self.step}: {alarm.reason}. Try DiffAugment (train.diffaugment), "
                  f"spectral_norm, minibatch_std, ema or r1_gamma")
            self.log.append({"step": self.step, **metrics, "guard": alarm.flag})
        bar.update(1)
        cfg = self.train_cfg
        if self.step % cfg["progress_every"] == 0 or self.step == self.total:
            metrics.update(self.snapshot())
        if (self.step % cfg["log_every"] == 0 or self.step == self.total) and not alarm:
            self.log.append({"step": self.step, **metrics, "guard": ""})
            bar.set_postfix({k: f"{metrics[k]:.3f}" for k in self.family.loss_keys})
        if self.step % cfg["checkpoint_every"] == 0 or self.step == end:
            self.save_checkpoint()

    def roll_back_or_stop(self, alarm: Alarm) -> None:
        """Back to the last checkpoint, on a different random path; DivergenceError when the
        action is stop or the rollbacks are spent."""
        message = f"{self.name}: training diverged at step {self.step}: {alarm.reason}. Try {self.family.hint}"
        if self.checkpoint.exists() and self.guard.may_roll_back(alarm.action):
            rollbacks = self.guard.rollbacks + 1
            self.load_checkpoint()
            self.guard.rolled_back(rollbacks)
            self.rng.manual_seed(self.seed + 1000 * self.rank + 7919 * rollbacks)
            print(f"{message}\n  rolled back to step {self.step} (rollback {rollbacks}/"
                  f"{self.guard.settings['max_rollbacks']})")
            return
        raise DivergenceError(message + self.guard.stop_hint(alarm.action))

    def write_outputs(self) -> None:
        G = self.G_ema if self.G_ema is not None else self.G
        model = {"variant": self.exp["variant"], "experiment": self.name, "hp": self.hp,
                 "replicate": self.replicate, "seed": self.seed, "image_size": self.settings["image_size"], "classes": self.settings["classes"],
                 "labels": self.settings.get("labels"), "train": self.train_cfg, "step": self.step,
                 "guard_events": self.guard.events, "provenance": provenance.for_training(self),
                 "train_case_hashes": self.data.case_hashes,
                 "effective": {"device": self.device.type, "world_size": self.world,
                               "distributed": distributed_backend(),
                               "precision": "bf16" if uses_bf16(self.train_cfg["precision"], self.device) else "fp32"},
                 "G": {k: v.cpu() for k, v in G.state_dict().items()}}
        where = {"experiment": self.name, "replicate": self.replicate}
        modelio.save_model(model, paths.path(paths.MODEL, **where))
        with atomic_file(paths.path(paths.TRAIN_LOG, **where)) as tmp:
            with open(tmp, "w", newline="") as f:
                fields = self.family.log_fields
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows({k: row.get(k, "") for k in fields} for row in self.log)
        write_progress(self.progress, paths.path(paths.PROGRESS, **where))


def write_progress(progress: list[tuple[int, torch.Tensor]], out: Path, max_rows: int = 10) -> None:
    """One PNG: a row of fixed-input samples per snapshot, oldest at the top."""
    keep = np.unique(np.linspace(0, len(progress) - 1, min(max_rows, len(progress))).round().astype(int))
    rows = torch.cat([progress[i][1] for i in keep])
    save_grid(rows, out, PROGRESS_COLUMNS)


def train(params: dict, name: str, replicate: int = 0) -> None:
    trainer = Trainer(params, name, replicate)
    try:
        trainer.run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
