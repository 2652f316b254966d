"""The demo workflow through `snakemake --profile slurm` on a real single-node Slurm (slow).

Installs Debian's Slurm and munge with apt-get (root only), starts munged, slurmctld and slurmd
from a slurm.conf in a temporary folder (no systemd, no cgroups, no accounting database), runs
the tiny workflow through the repository's profile (installed as the README says) and checks
that every job went through sbatch and that the summary equals a local run's. The daemons are
stopped by the PIDs this module started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, TINY, apt_install, command_failed, failed_job_logs, run_env
from medgan import paths

pytestmark = pytest.mark.slurm

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")  # configless slurmd only knows the default
CONFIGLESS_LINK = Path("/run/slurm/conf")
BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "munged"]
WORKFLOW_LIMIT_S = 900  # the whole tiny workflow through Slurm; ~2 min on 2 cores
STAGES = ("phantoms", "prepare", "train", "sample", "evaluate", "summarize", "turing", "report", "explore")  # resources sections

# Small jobs so that the 2-CPU test node runs two at once; train asks for both CPUs, which
# checks that params.yaml's threads reach sbatch as --cpus-per-task.
TEST_RESOURCES = {stage: {"threads": 1, "mem_mb": 400, "runtime": 10} for stage in STAGES}
TEST_RESOURCES["train"]["threads"] = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_slurm() -> float:
    """Install Slurm and munge with apt-get; skip (with the reason) where that is impossible."""
    if os.geteuid() != 0:
        pytest.skip("a throwaway Slurm needs root: apt-get install, and slurmctld/slurmd run as root")
    if CONFIGLESS_LINK.exists() or CONFIGLESS_LINK.is_symlink():
        pytest.skip(f"a slurmd already runs here ({CONFIGLESS_LINK} exists): not starting a second one")
    if all(shutil.which(b) for b in BINARIES):
        return 0.0
    if shutil.which("apt-get") is None:
        pytest.skip("Slurm is not installed and there is no apt-get to install it with")
    started = time.monotonic()
    apt_install(PACKAGES)
    missing = [b for b in BINARIES if not shutil.which(b)]
    assert not missing, f"installed {PACKAGES} but {missing} are not on PATH"
    return time.monotonic() - started


def slurm_conf(root: Path) -> str:
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    available_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemAvailable:"))
    memory_mib = max(1024, int(available_kib / 1024 * 0.9))
    return f"""\
ClusterName=medgantest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
MinJobAge=600
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldParameters=enable_configless
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mib} State=UNKNOWN
PartitionName=medgan Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """munged + slurmctld + slurmd in the foreground, owned (and stopped) by this process."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []

    @property
    def env(self) -> dict:
        return dict(run_env(), SLURM_CONF=str(self.conf))

    def start(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(slurm_conf(self.root))
        if not self.munge_answers():  # a munged already up (a real cluster node) is reused
            MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(MUNGE_SOCKET.parent, 0o755)
            key = self.root / "munge.key"
            key.write_bytes(os.urandom(1024))
            os.chmod(key, 0o400)
            self.spawn(["munged", "--foreground", "--force", f"--socket={MUNGE_SOCKET}", f"--key-file={key}",
                        f"--pid-file={self.root}/munged.pid", f"--seed-file={self.root}/munged.seed",
                        f"--log-file={self.root}/log/munged.log"])
            self.wait_for(self.munge_answers, "munged to answer", 20)
        self.spawn(["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self.wait_for(lambda: self.query(["sinfo", "-h", "-o", "%T"]) is not None, "slurmctld to answer", 30)
        # Configless slurmd (it fetches slurm.conf from slurmctld, as on many clusters) links
        # /run/slurm/conf to its cached copy: that is how commands inside a job find the cluster,
        # since the jobstep's nested `srun` does not inherit SLURM_CONF.
        port = re.search(r"^SlurmctldPort=(\d+)$", self.conf.read_text(), re.M).group(1)
        self.spawn(["slurmd", "-D", "--conf-server", f"127.0.0.1:{port}"])
        self.wait_for(lambda: (self.query(["sinfo", "-h", "-o", "%T"]) or "").strip() == "idle",
                      "the node to be idle", 60)

    def munge_answers(self) -> bool:
        if not MUNGE_SOCKET.exists():
            return False
        probe = subprocess.run(f"munge -n -S {MUNGE_SOCKET} | unmunge -S {MUNGE_SOCKET}", shell=True,
                               capture_output=True, timeout=10)
        return probe.returncode == 0

    def spawn(self, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{Path(cmd[0]).name}.out", "wb")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           env=self.env))
        log.close()

    def query(self, cmd: list[str]) -> str | None:
        result = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)
        return result.stdout if result.returncode == 0 else None

    def wait_for(self, condition, what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead:
                raise AssertionError(f"{dead} exited while waiting for {what}:\n{self.logs()}")
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out after {seconds}s waiting for {what}:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted((self.root / "log").glob("*")))

    def stop(self) -> None:
        for proc in reversed(self.procs):  # slurmd, slurmctld, munged: by the PIDs we started
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        if CONFIGLESS_LINK.is_symlink() and str(self.root) in os.readlink(CONFIGLESS_LINK):
            CONFIGLESS_LINK.unlink()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    install_seconds = install_slurm()
    root = Path(tmp_path_factory.mktemp("slurm"))
    cluster = Cluster(root)
    cluster.install_seconds = install_seconds
    try:
        started = time.monotonic()
        cluster.start()
        cluster.start_seconds = time.monotonic() - started
        yield cluster
    finally:
        cluster.stop()


def write_project(root: Path) -> None:
    """A temporary project with the tiny params and the small test resources."""
    for name in ("Snakefile", "dvc.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "workflow", root / "workflow", symlinks=False)
    params = dict(TINY, resources=TEST_RESOURCES)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(cmd, cwd, env, timeout):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    return result


def test_without_root_a_missing_slurm_is_a_skip_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CONFIGLESS_LINK", tmp_path / "no-slurmd-here")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        install_slurm()
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)  # installed, still not root
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        install_slurm()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(pytest.skip.Exception, match="no apt-get"):
        install_slurm()


@pytest.mark.slow
def test_the_profile_runs_the_demo_through_sbatch_and_matches_a_local_run(cluster, tmp_path, capsys):
    config_home = tmp_path / "config"  # the profile installed as the README says
    (config_home / "snakemake").mkdir(parents=True)
    (config_home / "snakemake" / "slurm").symlink_to(REPO / "workflow" / "profiles" / "slurm")
    torch_home = tmp_path / "torch_home"  # no pytorch-fid file: both runs use the packaged weights
    env = dict(cluster.env, XDG_CONFIG_HOME=str(config_home), TORCH_HOME=str(torch_home))

    on_slurm, local = tmp_path / "on_slurm", tmp_path / "local"
    for root in (on_slurm, local):
        root.mkdir()
        write_project(root)

    started = time.monotonic()
    # SIGTERM does not stop a slurm-executor run: `timeout -k` kills it if it hangs.
    result = run(["timeout", "-k", "30", str(WORKFLOW_LIMIT_S), "snakemake", "--profile", "slurm",
                  "--slurm-init-seconds-before-status-checks", "2"], on_slurm, env, WORKFLOW_LIMIT_S + 60)
    slurm_seconds = time.monotonic() - started
    output = result.stdout[-4000:] + result.stderr[-6000:]
    assert result.returncode == 0, (f"snakemake --profile slurm exited {result.returncode}:\n{output}\n"
                                    f"{cluster.logs()}\n{failed_job_logs(on_slurm, result.stderr)}")
    assert "Using profile slurm" in result.stderr or "profiles/slurm" in result.stderr, output

    # Every job went through sbatch to this slurmctld and completed there.
    listed = cluster.query(["squeue", "-t", "all", "-h", "-o", "%i|%k|%T|%C"])
    assert listed is not None
    jobs = [line.split("|") for line in listed.strip().splitlines()]
    by_rule: dict[str, list] = {}
    for job_id, comment, state, cpus in jobs:
        rule = comment.removeprefix("rule_").split("_wildcards_")[0]
        by_rule.setdefault(rule, []).append((job_id, state, int(cpus)))
    units = json.loads((on_slurm / paths.UNIT_LIST.format(dataset="tiny")).read_text())["units"]
    assert len(units) == TINY["phantoms"]["tiny"]["n_cases"]  # ingest: one small job per raw case
    expected = {"phantoms": 1, "prepare_units": 1, "prepare_unit": len(units), "prepare": 1, "train": 2,
                "sample": 2, "evaluate": 2, "aggregate": 2, "baseline": 1, "summarize": 1, "turing": 2, "report": 1,
                "explore": 1}
    assert {rule: len(v) for rule, v in by_rule.items()} == expected, listed
    assert all(state == "COMPLETED" for v in by_rule.values() for _, state, _ in v), listed
    assert all(cpus == 2 for _, _, cpus in by_rule["train"]), f"train's threads did not reach sbatch:\n{listed}"
    assert all(cpus == 1 for _, _, cpus in by_rule["sample"] + by_rule["prepare_unit"]), listed
    slurm_logs = list((on_slurm / "logs" / "slurm").rglob("*.log"))
    assert {p.relative_to(on_slurm / "logs" / "slurm").parts[0] for p in slurm_logs} == {f"rule_{r}" for r in expected}
    slurmctld_log = (cluster.root / "log" / "slurmctld.log").read_text()
    assert slurmctld_log.count("_slurm_rpc_submit_batch_job") >= sum(expected.values())

    run_local = run(["snakemake", "--cores", "2"], local, env, WORKFLOW_LIMIT_S)
    assert run_local.returncode == 0, command_failed(["snakemake", "--cores", "2"], local, run_local)
    pd.testing.assert_frame_equal(pd.read_csv(on_slurm / "results/metrics/summary.csv"),
                                  pd.read_csv(local / "results/metrics/summary.csv"))
    with capsys.disabled():  # the evidence, in CI's log even with -q
        print(f"\n[slurm] install {cluster.install_seconds:.0f}s, daemons up in {cluster.start_seconds:.1f}s, "
              f"demo through `snakemake --profile slurm` {slurm_seconds:.0f}s; jobs seen by slurmctld "
              f"(squeue -t all: id|comment|state|cpus):\n" + listed.strip())
