"""Image features shared by the metrics: pytorch-fid's InceptionV3 (2048-d pool) and
frd-score's radiomics (FRD v1 extractor). Extracted once per image set and evaluate run;
real sets' features are cached on disk under results/cache/features/, keyed by a hash of
the options that made them (extractor, the weights' sha256, image size, dataset/split/class,
the files' contents), so every variant of a dataset/class reuses them (as in stylegan2-ada's metrics)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import paths
from ..atomic import atomic_file, exclusive, write_json
from . import glcm_speed, inception
from .common import ImageSet, Inputs, MetricSkipped, load_gray

CACHE_DIR = Path(paths.CACHE) / "features"
PROTOCOL = "gray->3ch, [0,1], bilinear to 299 and 2x-1 by pytorch-fid's InceptionV3"


def content_digest(paths: list[str]) -> str:
    digest = hashlib.sha1()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def cache_file(extractor: dict, image_set: ImageSet) -> tuple[Path, dict]:
    options = {"extractor": extractor, "set": image_set.cache_key,
               "n": len(image_set), "content_sha1": content_digest(image_set.paths)}
    key = hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return CACHE_DIR / extractor["name"] / f"{key}.npy", options


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inception_features(model: inception.PoolFeatures, paths: list[str], size: tuple[int, int],
                       batch_size: int | None = None) -> np.ndarray:
    """(N, 2048) pool features; grayscale repeated to 3 channels, [0, 1] input; the model
    resizes to 299x299 bilinearly and scales to [-1, 1] itself (pytorch-fid's protocol).
    `model`: inception.fast_model (batches of model.batch images by default)."""
    import torch

    batch_size = batch_size or model.batch
    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(paths), batch_size), desc="inception features", unit="batch",
                          leave=False):
            batch = torch.from_numpy(load_gray(paths[start:start + batch_size], size))
            x = batch[:, None].expand(-1, 3, -1, -1).to(model.device)
            out.append(model(x).cpu().numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 2048))


_MODELS: dict[str, inception.PoolFeatures] = {}


def inception_model(weights: inception.Weights) -> inception.PoolFeatures:
    """One network per state dict and process (a baseline builds an Inputs per class)."""
    if weights.state_dict_sha256 not in _MODELS:
        _MODELS.clear()
        _MODELS[weights.state_dict_sha256] = inception.fast_model(weights, device())
    return _MODELS[weights.state_dict_sha256]


def radiomics_extractor():
    """frd-score's FRD v1 2-D extractor without its LoG image type: pyradiomics applies LoG only
    to images at least 4 voxels deep, so on a 2-D slice (depth 1) it skips every sigma and logs
    "Image too small to apply LoG filter" once per image. Dropping it leaves every feature as it
    was (tests check) and the log readable."""
    from frd_score.frd import FRD_VERSION_V1, get_feature_extractor

    glcm_speed.install()  # the same features, ~2x faster (forked workers inherit it)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = get_feature_extractor(frd_version=FRD_VERSION_V1, image_dim=2)
    extractor.enabledImagetypes.pop("LoG", None)
    return extractor


def radiomics_features(paths: list[str], workers: int = 1) -> np.ndarray:
    """(N, F) raw FRD-v1 radiomics features of whole images (frd-score's own extraction:
    full-image mask, Original + Wavelet filters; its LoG never applies to a 2-D slice), in
    `workers` processes (frd-score's multiprocessing pool). Rows of NaN are kept (dropped later)."""
    from frd_score.frd import FRD_VERSION_V1, compute_features

    with contextlib.redirect_stdout(io.StringIO()):
        features, _, _ = compute_features(list(paths), radiomics_extractor(), num_workers=workers,
                                          frd_version=FRD_VERSION_V1)
    if len(features) != len(paths):
        raise MetricSkipped(f"radiomics failed on {len(paths) - len(features)} of {len(paths)} images")
    return features.astype(np.float64)


class FeatureStore:
    """Features of the image sets of one evaluate run, by extractor name ('inception',
    'radiomics'): computed at most once per set, real sets cached on disk."""

    def __init__(self, inp: Inputs):
        self.inp = inp
        self.memory: dict[tuple[str, int], np.ndarray] = {}
        self._weights: inception.Weights | None = None

    def inception_weights(self) -> inception.Weights:
        """The weights evaluate.inception allows (inception.resolve); WeightsMissing if none."""
        if self._weights is None:
            self._weights = inception.resolve(self.inp.settings["inception"],
                                              self.inp.settings["inception_weights"])
        return self._weights

    def loaded_record(self) -> dict | None:
        """The Inception state dict this store's features come from (computed or cached: its
        sha256 is in the cache key), or None if none was resolved."""
        if self._weights is None:
            return None
        return {**self._weights.record(), "state_dict": self._weights.path.name}

    def inception_available(self) -> str | None:
        """None if Inception features can be computed, else the reason why not
        (`inception: required` raises WeightsMissing instead)."""
        if self.inp.settings["inception"] == "off":
            return "evaluate.inception is off"
        try:
            self.inception_weights()
        except inception.WeightsMissing as err:
            if self.inp.settings["inception"] == "required":
                raise
            return str(err).split(". Provide")[0]
        return None

    def get(self, extractor: str, image_set: ImageSet) -> np.ndarray:
        if image_set.parent is not None:
            return self.get(extractor, image_set.parent)[image_set.rows]
        if image_set.parts is not None:
            return np.concatenate([self.get(extractor, part) for part in image_set.parts])
        memo = (extractor, id(image_set))
        if memo not in self.memory:
            self.memory[memo] = self._cached_or_computed(extractor, image_set)
        return self.memory[memo]

    def _cached_or_computed(self, extractor: str, image_set: ImageSet) -> np.ndarray:
        if image_set.cache_key is None:
            return self._compute(extractor, image_set.paths)
        path, options = cache_file(self._describe(extractor), image_set)
        with exclusive(path):
            cached = self._read_cache(path, len(image_set.paths))
            if cached is not None:
                return cached
            features = self._compute(extractor, image_set.paths)
            with atomic_file(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, features)
            write_json(path.with_suffix(".json"), options)
        return features

    @staticmethod
    def _read_cache(path: Path, n_images: int) -> np.ndarray | None:
        if not path.exists():
            return None
        try:
            cached = np.load(path)  # allow_pickle=False: a planted object array is refused
        except (OSError, ValueError, EOFError) as err:
            print(f"{path}: damaged feature cache ({err}) — recomputing it")
            return None
        if cached.ndim == 2 and len(cached) == n_images:
            return cached
        print(f"{path}: feature cache of shape {cached.shape} does not fit {n_images} images — recomputing it")
        return None

    def _describe(self, extractor: str) -> dict:
        if extractor == "inception":
            return {"name": "inception", "block": "pool3-2048", "input": PROTOCOL,
                    "image_size": list(self.inp.image_size), "weights": self.inception_weights().record()}
        if extractor == "radiomics":
            import frd_score

            return {"name": "radiomics", "frd_score": frd_score.__version__, "config": "v1 2D",
                    "image_size": list(self.inp.image_size)}
        raise ValueError(f"unknown feature extractor {extractor}")

    def _compute(self, extractor: str, paths: list[str]) -> np.ndarray:
        if extractor == "inception":
            return inception_features(inception_model(self.inception_weights()), paths, self.inp.image_size)
        return radiomics_features(paths, self.inp.settings["radiomics_workers"])
