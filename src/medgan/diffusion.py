"""diffusion: the DDPM family (unconditional, class-conditional, mask-conditional) on MONAI's
generative components — its DiffusionModelUNet, DDPM/DDIM schedulers and DiffusionInferer.

medgan adds only what a family must: the denoiser built from params, the training step (noise
prediction with MSE, as MONAI's 2D DDPM tutorial), and a sampler that makes a trained denoiser
look like a GAN generator to `medgan sample` (initial noise in, image out, by deterministic DDIM).
The training loop itself (budget, checkpoints, EMA, guard, progress) is medgan.train's.

Imported only when a diffusion variant is used: MONAI takes seconds to import.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.inferers import DiffusionInferer
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler
from torch import nn

from . import optim
from .config import ConfigError

CONDITIONING = ("none", "class", "mask")
LOG_FIELDS = ["step", "loss", "spread", "guard", "lr"]


def check_size(image_size, hp: dict) -> None:
    factor = 2 ** (len(hp["channels"]) - 1)
    if any(side % factor for side in image_size):
        raise ConfigError(f"params.yaml is invalid:\n  - at 'variants.<ddpm variant>.channels': {len(hp['channels'])} "
                          f"levels halve the image {len(hp['channels']) - 1} times, so the image size "
                          f"{list(image_size)} must be divisible by {factor} — use fewer levels or another size")
    if len(hp["attention"]) != len(hp["channels"]):
        raise ConfigError("params.yaml is invalid:\n  - at 'variants.<ddpm variant>.attention': one flag per "
                          f"level of `channels` ({len(hp['channels'])}), got {len(hp['attention'])}")


class Denoiser(nn.Module):
    """MONAI's DiffusionModelUNet behind the call MONAI's inferer makes, model(x, timesteps, context).

    The inferer has no class-label argument, so class labels ride in `context` (a float tensor
    of indices); its classifier-free guidance fills the unconditional half of `context` with
    `cfg_fill_value`, which here is the extra "no class" embedding learnt by label dropout."""

    def __init__(self, image_size, hp: dict, n_classes: int, conditioning: str):
        super().__init__()
        check_size(image_size, hp)
        self.conditioning, self.n_classes, self.image_size = conditioning, n_classes, tuple(image_size)
        try:
            self.unet = DiffusionModelUNet(
                spatial_dims=2, in_channels=2 if conditioning == "mask" else 1, out_channels=1,
                channels=tuple(hp["channels"]), attention_levels=tuple(hp["attention"]),
                num_res_blocks=hp["res_blocks"], num_head_channels=hp["head_channels"],
                norm_num_groups=hp["norm_groups"],
                num_class_embeds=n_classes + 1 if conditioning == "class" else None)
        except ValueError as err:  # MONAI's own checks (groups, heads): name the keys
            raise ConfigError(f"params.yaml is invalid:\n  - at 'variants.<ddpm variant>': {err} "
                              f"(keys channels, norm_groups, head_channels)") from err

    @property
    def null_class(self) -> int:
        return self.n_classes

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        labels = context.long().flatten() if self.conditioning == "class" else None
        return self.unet(x, timesteps, class_labels=labels)


def build(image_size, hp: dict, n_classes: int, conditioning: str) -> tuple[Denoiser, None]:
    """The variant registry's build: (sampled network, no discriminator)."""
    return Denoiser(image_size, hp, n_classes, conditioning), None


def training_scheduler(hp: dict) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=hp["timesteps"], schedule=hp["schedule"])


def as_context(labels: torch.Tensor) -> torch.Tensor:
    return labels.float().view(-1, 1, 1)


# -- the training step -------------------------------------------------------------------------

class DiffusionStep:
    """One DDPM iteration: noise a batch at random timesteps, predict the noise, MSE, Adam step.
    The loop (medgan.train.Trainer) owns everything around it."""

    log_fields = LOG_FIELDS
    loss_keys = ("loss",)
    hint = "a lower lr, or train.precision: fp32"

    def __init__(self, variant, settings: dict, data, device: torch.device, wrap, autocast, total: int):
        self.hp, self.train_cfg, self.data, self.device = settings["hp"], settings["train"], data, device
        self.autocast = autocast
        self.conditioning = variant.conditioning
        self.G, _ = variant.build(tuple(settings["image_size"]), self.hp, len(settings["classes"]))
        self.G.to(device)
        if self.train_cfg["channels_last"]:
            self.G.to(memory_format=torch.channels_last)
        self.opt = optim.adam(self.G, self.hp)
        self.schedulers = optim.lr_schedulers([self.opt], self.train_cfg, total)
        self.G_run = wrap(self.G)
        self.scheduler = training_scheduler(self.hp)
        self.inferer = DiffusionInferer(self.scheduler)
        self.networks = {"G": self.G}
        self.optimizers = {"opt_g": self.opt}

    def condition(self, batch, rng: torch.Generator) -> tuple[torch.Tensor | None, str]:
        """(context, MONAI inferer mode) of a batch. Class labels are dropped to the null class
        with probability cond_drop, so one network also learns the unconditional model that
        classifier-free guidance extrapolates from."""
        if self.conditioning == "mask":
            return batch.masks, "concat"
        if self.conditioning == "class":
            drop = (torch.rand(len(batch.labels), generator=rng) < self.hp["cond_drop"]).to(self.device)
            labels = torch.where(drop, torch.full_like(batch.labels, self.G.null_class), batch.labels)
            return as_context(labels), "crossattn"
        return None, "crossattn"

    def step(self, rng: torch.Generator) -> dict:
        cfg = self.train_cfg
        batch = self.data.batch(cfg["batch_size"], rng, cfg["hflip"])
        images = batch.images
        noise = torch.randn(images.shape, generator=rng).to(self.device)
        timesteps = torch.randint(0, self.hp["timesteps"], (len(images),), generator=rng).to(self.device)
        context, mode = self.condition(batch, rng)
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            predicted = self.inferer(inputs=images, diffusion_model=self.G_run, noise=noise,
                                     timesteps=timesteps, condition=context, mode=mode)
            loss = F.mse_loss(predicted.float(), noise)
        loss.backward()
        self.opt.step()
        metrics = {"loss": loss.item(), "lr": self.opt.param_groups[0]["lr"]}
        self.schedulers[0].step()
        return metrics

    def collapse_reason(self, metrics: dict, guard: dict) -> str | None:
        return None  # no discriminator: only the non-finite-loss guard applies

    # -- progress grids -----------------------------------------------------------------------
    def fixed_inputs(self, rng: torch.Generator, n: int) -> dict:
        idx = torch.randperm(len(self.data), generator=rng)[:n].to(self.device)
        fixed = {"real": self.data.images[idx].float().div(127.5).sub(1.0),
                 "z": torch.randn(n, self.G.image_size[0] * self.G.image_size[1], generator=rng).to(self.device),
                 "labels": torch.arange(n, device=self.device) % max(1, self.G.n_classes)}
        if self.conditioning == "mask":
            fixed["masks"] = self.data.condition(fixed["real"], self.data.masks[idx], rng)
        return fixed

    def render(self, G: nn.Module, fixed: dict) -> torch.Tensor:
        sampler = DDIMSampler(G, self.hp, self.hp["progress_ddim_steps"], verbose=False)
        if self.conditioning == "mask":
            return sampler(fixed["masks"], noise=fixed["z"])
        return sampler(fixed["z"], fixed["labels"] if self.conditioning == "class" else None)

    def progress_metrics(self, images: torch.Tensor, fixed: dict, spread) -> dict:
        """A DDPM has no per-step samples: its cross-sample spread is measured on the progress grid."""
        return {"spread": spread(images, fixed["real"])}


# -- sampling ----------------------------------------------------------------------------------

class DDIMSampler(nn.Module):
    """A trained Denoiser as a generator for medgan.sample: initial noise, flattened like a GAN's
    z (so slerp between two of them interpolates), -> image, by DDIM with eta 0 (deterministic
    given the noise) through MONAI's inferer. Class-conditional: classifier-free guidance with
    `guidance` (1 = the plain conditional model, 0 = unconditional). Mask-conditional: called
    with label masks; its noise comes from its own generator, seeded, unless given."""

    def __init__(self, denoiser: Denoiser, hp: dict, steps: int, guidance: float = 1.0, seed: int = 0,
                 verbose: bool = True):
        super().__init__()
        if steps > hp["timesteps"]:
            raise ConfigError(f"sample.ddim_steps = {steps} is more than the model's {hp['timesteps']} "
                              f"training timesteps — use at most {hp['timesteps']}")
        self.denoiser, self.guidance, self.verbose = denoiser, guidance, verbose
        self.scheduler = DDIMScheduler(num_train_timesteps=hp["timesteps"], schedule=hp["schedule"])
        self.scheduler.set_timesteps(steps)
        self.inferer = DiffusionInferer(self.scheduler)
        self.shape = (1, *denoiser.image_size)
        self.z_dim = self.shape[1] * self.shape[2]
        self.rng = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        conditioning, cfg = self.denoiser.conditioning, None
        device = next(self.denoiser.parameters()).device
        if conditioning == "mask":
            context, mode = inputs, "concat"
            if noise is None:
                noise = torch.randn(len(inputs), self.z_dim, generator=self.rng)
        else:
            noise, mode = inputs, "crossattn"
            context = as_context(labels) if conditioning == "class" else None
            if conditioning == "class" and self.guidance != 1.0:
                cfg = float(self.guidance)
        noise = noise.reshape(-1, *self.shape).to(device)
        return self.inferer.sample(input_noise=noise, diffusion_model=self.denoiser, scheduler=self.scheduler,
                                   conditioning=context, mode=mode, verbose=self.verbose, cfg=cfg,
                                   cfg_fill_value=float(self.denoiser.null_class))


def sampler(G: Denoiser, model: dict, settings: dict, seed: int) -> DDIMSampler:
    """The variant registry's sampler: what medgan.sample calls instead of a GAN's generator."""
    return DDIMSampler(G, model["hp"], settings["ddim_steps"], settings["guidance_scale"], seed)
