"""Shared fixtures: a tiny params set and a temporary project directory to run stages in."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from medgan import config

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.sys.executable).parent  # the venv's bin: medgan, snakemake, dvc

TINY = {
    "seed": 0,
    "replicates": 1,  # dvc.yaml lists it under params: DVC needs it in the file
    "phantoms": {"tiny": {"kind": "lits", "n_cases": 5, "shape": [64, 64, 20], "spacing": [5.5, 5.5, 10.0]}},
    "datasets": {"tiny": {"kind": "volumes", "layout": "lits", "raw": "data/raw/tiny",
                          "image_size": [32, 32], "min_organ_pixels": 30, "min_lesion_pixels": 3}},
    "variants": {"dcgan": {"z_dim": 16, "ngf": 8, "ndf": 8}},
    "experiments": {"tiny_dcgan_healthy": {"dataset": "tiny", "variant": "dcgan", "class": "healthy"},
                    "tiny_dcgan_tumour": {"dataset": "tiny", "variant": "dcgan", "class": "tumour"}},
    "train": {"iterations": 6, "batch_size": 8, "checkpoint_every": 3, "log_every": 2},
    "sample": {"n": 12, "grid_columns": 4},
    "evaluate": {"metrics": ["frd", "fid"], "inception": "auto"},
    "turing": {"n_per_kind": 20},  # dvc.yaml lists it under params: DVC needs it in the file
    "synthesize": {"experiments": []},  # dvc.yaml's synthesize stage loops over it
    "export": {"experiments": []},  # and its export stage over this
}


def tiny_params(**overrides) -> dict:
    raw = copy.deepcopy(TINY)
    for key, value in overrides.items():
        raw[key] = value
    return raw


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A temporary project root holding the workflow files and a tiny params.yaml; cwd is it."""
    for name in ("Snakefile", "dvc.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow", symlinks=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no FID weights here
    monkeypatch.delenv(config.PARAMS_ENV, raising=False)
    return tmp_path


@pytest.fixture
def params(project) -> dict:
    return config.load()


@pytest.fixture
def prepared(params) -> dict:
    """Phantoms generated and prepared in the temporary project."""
    from medgan import paths, phantoms, prepare

    phantoms.generate("lits", paths.path(paths.RAW, name="tiny"), params["phantoms"]["tiny"], params["seed"])
    prepare.prepare_dataset("tiny", params["datasets"]["tiny"], paths.path(paths.SLICES, dataset="tiny"),
                            params["seed"])
    return params


FAILED_JOB_LOGS = re.compile(r"^\s*log: (.+?) \(check log file", re.MULTILINE)


def failed_job_logs(cwd: Path, output: str, tail: int = 3000) -> str:
    """The end of every log Snakemake names for a failed job: CI prints only the assertion, and a
    job's traceback is in its log, not in Snakemake's output."""
    shown = []
    names = [name.strip() for logs in FAILED_JOB_LOGS.findall(output) for name in logs.split(",")]
    for name in dict.fromkeys(names):
        log = Path(cwd) / name
        text = log.read_text(errors="replace")[-tail:] if log.is_file() else "(no such file)"
        shown.append(f"--- {name} ---\n{text}")
    free = shutil.disk_usage(cwd).free / 2**30
    return "\n".join(shown + [f"(free disk under {cwd}: {free:.1f} GiB)"])


def command_failed(cmd, cwd: Path, result) -> str:
    """The message of a failed command: its code, the ends of its output and, for Snakemake, the
    logs of its failed jobs."""
    return (f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}\n{failed_job_logs(cwd, result.stderr)}")


def run_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return env


def apt_install(packages: list[str]) -> None:
    """Install Debian packages for a test (as root), refreshing the package lists once when a
    fresh machine has none yet; fail with apt-get's output."""
    import subprocess

    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    result = subprocess.run(install, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=600, check=False)
        result = subprocess.run(install, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=900)
    assert result.returncode == 0, f"apt-get install failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
