"""CPU training with and without flushing subnormal floats to zero (torch.set_flush_denormal),
on the demo's own experiments at the demo's settings. Late in GAN training, weights and
gradients reach subnormal magnitudes, which x86 CPUs compute slowly; medgan's Trainer flushes
them on CPU. Run in a project where the demo's slices exist (after `snakemake --cores 2`):

    python benchmarks/bench_denormal.py --steps 500 lits_dcgan_small_data_tumour lits_vanilla_tumour

Each experiment alternates off/on `--rounds` times (load drift hits both); prints the median
wall time of each and their ratio. Writes nothing outside a temporary copy of results/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from medgan import config, train


def timed_run(params: dict, name: str, flush: bool) -> float:
    original = torch.set_flush_denormal
    torch.set_flush_denormal = lambda _on: original(flush)  # what the Trainer asks for is overridden
    try:
        start = time.perf_counter()
        train.Trainer(params, name).run()
        return time.perf_counter() - start
    finally:
        torch.set_flush_denormal = original
        original(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    params = config.load()
    params["train"]["iterations"] = args.steps
    root = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        for link in ("data", "params.yaml"):
            os.symlink(root / link, link)
        for name in args.experiments:
            params["experiments"][name].setdefault("train", {})["iterations"] = args.steps
            times = {False: [], True: []}
            for _ in range(args.rounds):
                for flush in (False, True):
                    shutil.rmtree("results", ignore_errors=True)
                    times[flush].append(timed_run(params, name, flush))
            off, on = statistics.median(times[False]), statistics.median(times[True])
            print(f"{name}: {args.steps} steps  subnormals kept {off:.1f} s  flushed {on:.1f} s  "
                  f"ratio {off / on:.2f}x")


if __name__ == "__main__":
    main()
