"""explore: seed 001's latent-space widget as one offline page per dataset
(results/explore/<dataset>.html).

A small autoencoder with a 2-D code is trained on every real training image of the dataset (all
classes, as seed 001 trained its widget on COVID and non-COVID scans). Real images (train and
held-out, by class) and every experiment's generated images are placed on that 2-D map: hovering
a point shows its image. Clicking anywhere shows the decoder's image at that point, from a grid
of decoded images computed here (not a decoder run in the page: a 16x16 grid of PNGs costs
~0.5 MB and answers at once, while onnxruntime-web 1.30.0's smallest wasm alone is 14.2 MB). Per
unconditional GAN experiment: sliders along its generator's main latent directions (GANSpace:
PCA of the generated images' features, regressed back onto the latents) and lerp/slerp paths
between chosen samples (seed 001's "progression"), each image also placed on the map.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from . import config, evaluate, paths, variants
from .atomic import write_text
from .metrics.common import load_gray
from .modelio import load_generator
from .render import data_uri_of_array, render
from .sample import lerp, slerp

CODE = 2
HIDDEN = (128, 32)
AE_STEPS = 500  # a fixed budget of batches: ~8 s of one CPU core at 64x64, whatever the dataset size
BATCH = 64
GRID = 16  # decoded images per side of the map
PER_GROUP = 120  # real points shown per (split, class): keeps the page small
FEATURE_SIDE = 16  # GANSpace features: generated images downsampled to 16x16
N_LATENTS = 256
COMPONENTS = 3
STEPS = 9
PATH_SAMPLES = 4
MAX_SIDE = 96  # the explorer's images (and autoencoder) at most this many pixels a side
CHUNK = 16  # latents per generator call (a 336x504 generator's activations are large)


class Autoencoder(nn.Module):
    """Dense encoder/decoder mirror images (seed 001's widget: dense layers down to the map)."""

    def __init__(self, pixels: int):
        super().__init__()
        widths = (pixels, *HIDDEN)
        down = [m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU(True))]
        up = [m for a, b in zip(widths[::-1], widths[-2::-1]) for m in (nn.Linear(a, b), nn.ReLU(True))]
        self.encoder = nn.Sequential(*down, nn.Linear(HIDDEN[-1], CODE))
        self.decoder = nn.Sequential(nn.Linear(CODE, HIDDEN[-1]), nn.ReLU(True), *up[:-1], nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def train_autoencoder(images: np.ndarray, seed: int) -> Autoencoder:
    """MSE on pixels in [0, 1], Adam, a fixed budget of batches; deterministic from the seed."""
    torch.manual_seed(seed)
    flat = torch.from_numpy(images.reshape(len(images), -1))
    model = Autoencoder(flat.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(AE_STEPS), desc="explore autoencoder", unit="batch", mininterval=2):
        idx = torch.randint(len(flat), (min(BATCH, len(flat)),), generator=rng)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(flat[idx]), flat[idx])
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def encode(model: Autoencoder, images: np.ndarray) -> np.ndarray:
    return model.encoder(torch.from_numpy(images.reshape(len(images), -1))).numpy()


def explore_size(size) -> tuple[int, int]:
    """The dataset's image size, scaled down (aspect kept) to at most MAX_SIDE a side."""
    factor = min(1.0, MAX_SIDE / max(size))
    return max(8, round(size[0] * factor)), max(8, round(size[1] * factor))


@torch.no_grad()
def generated(G, z: torch.Tensor, label) -> torch.Tensor:
    return torch.cat([G(part, label(len(part))).float() for part in z.split(CHUNK)])


def png(image: np.ndarray) -> str:
    """A [0, 1] grayscale image as a PNG data URI."""
    return data_uri_of_array((np.clip(image, 0, 1) * 255).round().astype(np.uint8), optimize=True)


def capped(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    return rows if len(rows) <= PER_GROUP else rows.sample(PER_GROUP, random_state=seed).sort_index()


def real_groups(params: dict, dataset: str, manifest: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    held_out = params["evaluate"]["real_split"]
    groups = []
    for cls in params["datasets"][dataset]["classes"]:
        for split, label in (("train", "train"), (held_out, "held-out")):
            rows = manifest[(manifest["split"] == split) & (manifest["class"] == cls)]
            if len(rows):
                groups.append((f"real {label} · {cls}", capped(rows, params["seed"])))
    return groups


def experiments_of(params: dict, dataset: str) -> list[str]:
    return [n for n, e in params["experiments"].items() if e["dataset"] == dataset]


def fake_groups(params: dict, dataset: str) -> list[tuple[str, pd.DataFrame]]:
    groups = []
    for name in experiments_of(params, dataset):
        samples = evaluate.samples_with_files(name)
        fakes = samples[samples["kind"] == "fake"]
        groups.append((f"generated · {name}", capped(fakes, params["seed"])))
    return groups


class MapScale:
    """Code space -> [0, 1] map coordinates: the codes whitened (PCA rotation, unit spread per
    axis: a 2-D code often stretches along one diagonal) and scaled to the extent of every shown
    point plus a margin. `to_code` inverts it, for the decoder."""

    def __init__(self, codes: np.ndarray, margin: float = 0.05):
        self.mean = codes.mean(0)
        _, singular, self.axes = np.linalg.svd(codes - self.mean, full_matrices=False)
        self.spread = singular / np.sqrt(max(1, len(codes) - 1)) + 1e-6
        white = self._white(codes)
        low, high = white.min(0), white.max(0)
        pad = (high - low) * margin + 1e-6
        self.low, self.span = low - pad, high - low + 2 * pad

    def _white(self, codes: np.ndarray) -> np.ndarray:
        return (codes - self.mean) @ self.axes.T / self.spread

    def to_map(self, codes: np.ndarray) -> np.ndarray:
        return np.clip((self._white(codes) - self.low) / self.span, 0, 1)

    def to_code(self, xy: np.ndarray) -> np.ndarray:
        return ((self.low + xy * self.span) * self.spread) @ self.axes + self.mean


@torch.no_grad()
def decoded_grid(model: Autoencoder, scale: MapScale, size) -> list[str]:
    """GRID x GRID decoded images at the cell centres, row by row from the top (map y = 1)."""
    centres = (np.arange(GRID) + 0.5) / GRID
    xy = np.array([(x, 1 - y) for y in centres for x in centres], np.float32)
    images = model.decoder(torch.from_numpy(scale.to_code(xy).astype(np.float32))).numpy()
    return [png(im.reshape(size)) for im in images]


def gan_features(images: torch.Tensor) -> np.ndarray:
    pooled = nn.functional.adaptive_avg_pool2d(images.float(), FEATURE_SIDE)
    return pooled.flatten(1).numpy()


@torch.no_grad()
def latent_directions(G, z_dim: int, label, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """GANSpace (Härkönen et al. 2020) for any G: PCA of the features of generated images, then
    least squares from the PCA coordinates back to the latents gives one latent direction per
    component. Returns (directions k x z_dim, the components' standard deviations)."""
    z = torch.randn(N_LATENTS, z_dim, generator=torch.Generator().manual_seed(seed))
    features = gan_features(generated(G, z, label))
    centred = features - features.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:COMPONENTS].T
    directions, *_ = np.linalg.lstsq(coords, z.numpy() - z.numpy().mean(0), rcond=None)
    return directions, coords.std(0)


@torch.no_grad()
def gan_section(params: dict, name: str, model_ae: Autoencoder, scale: MapScale, size) -> dict | None:
    """Sliders and interpolation paths of one unconditional or class-conditional GAN, or None
    for paired variants (their generator takes a label map, not a latent) and diffusion models
    (a denoiser, no latent to steer; their samples are on the map)."""
    G, model = load_generator(paths.path(paths.MODEL, experiment=name, replicate=0))  # the explorer shows replicate 0
    variant = variants.VARIANTS[model["variant"]]
    if variant.paired or variant.family != "gan":
        return None
    z_dim, seed = model["hp"]["z_dim"], params["seed"]
    conditional = variant.conditional
    label = (lambda n: torch.zeros(n, dtype=torch.long)) if conditional else (lambda n: None)

    def shown(z: torch.Tensor) -> list[dict]:
        out = generated(G, z, label).add(1).div(2).clamp(0, 1)
        images = np.stack([resized(im[0].numpy(), size) for im in out])
        xy = scale.to_map(encode(model_ae, images))
        return [{"src": png(im), "x": float(p[0]), "y": float(p[1])} for im, p in zip(images, xy)]

    directions, spreads = latent_directions(G, z_dim, label, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    base = torch.randn(1, z_dim, generator=generator)
    ts = np.linspace(-2, 2, STEPS)
    sliders = [{"component": k + 1, "frames": shown(torch.cat([base + float(t * spreads[k]) *
                                                                 torch.from_numpy(directions[k]).float()
                                                                 for t in ts]))}
               for k in range(len(spreads))]
    ends = torch.randn(PATH_SAMPLES, z_dim, generator=generator)
    fractions = np.linspace(0, 1, STEPS)
    paths_ = {}
    for i in range(PATH_SAMPLES):
        for j in range(i + 1, PATH_SAMPLES):
            for mode, f in (("lerp", lerp), ("slerp", slerp)):
                zs = torch.stack([f(ends[i], ends[j], float(t)) for t in fractions])
                paths_[f"{i}-{j}-{mode}"] = shown(zs)
    return {"name": name, "variant": model["variant"], "sliders": sliders, "paths": paths_,
            "samples": [f"{k}" for k in range(PATH_SAMPLES)], "steps": STEPS, "sigmas": [float(t) for t in ts]}


def resized(image: np.ndarray, size) -> np.ndarray:
    if image.shape == tuple(size):
        return image.astype(np.float32)
    pil = Image.fromarray((image * 255).round().astype(np.uint8)).resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(pil, np.float32) / 255.0


def build(params: dict, dataset: str) -> dict:
    """Write results/explore/<dataset>.html; returns what it placed (counts), for the CLI."""
    config.dataset(params, dataset)
    size = explore_size(params["datasets"][dataset]["image_size"])
    manifest = evaluate.manifest_with_files(dataset)
    train_images = load_gray(list(manifest.loc[manifest["split"] == "train", "file"]), size)
    if len(train_images) < 2:
        raise config.ConfigError(f"dataset '{dataset}' has {len(train_images)} training images: the explorer's "
                                 f"autoencoder needs at least 2 — check its split ratios")
    model = train_autoencoder(train_images, params["seed"])
    shown = [(label, load_gray(list(rows["file"]), size))
             for label, rows in [*real_groups(params, dataset, manifest), *fake_groups(params, dataset)]]
    codes = [encode(model, pixels) for _, pixels in shown]
    scale = MapScale(np.concatenate(codes))
    groups, images = [], []
    for (label, pixels), code in zip(shown, codes):
        start = len(images)
        images += [png(im) for im in pixels]
        groups.append({"label": label, "points": [[round(float(x), 4), round(float(y), 4), start + k]
                                                  for k, (x, y) in enumerate(scale.to_map(code))]})
    gans = [s for s in (gan_section(params, n, model, scale, size) for n in experiments_of(params, dataset)) if s]
    data = {"dataset": dataset, "grid": GRID, "decoded": decoded_grid(model, scale, size), "groups": groups,
            "images": images, "gans": gans, "size": list(size)}
    page = render("explore.html.j2", dataset=dataset, data=json.dumps(data, separators=(",", ":")).replace("</", "<\\/"),
                  n_train=len(train_images), steps=AE_STEPS, grid=GRID, gans=gans, groups=groups)
    write_text(paths.path(paths.EXPLORE, dataset=dataset), page)
    return {"points": sum(len(g["points"]) for g in groups), "gans": len(gans), "bytes": len(page.encode())}
