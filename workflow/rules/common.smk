import json
import os
from pathlib import Path

import yaml
from snakemake.utils import validate

from medgan import config as medgan_config
from medgan import paths

# The schema fills defaults into `config`; medgan's own check adds cross-references.
validate(config, schema="../schemas/params.schema.yaml")
PARAMS = medgan_config.validate(config, "params.yaml (as Snakemake loaded it)")


def export_effective_params():
    """When --config/--configfile changed params.yaml's values, hand the CLI verbs the same
    values through $MEDGAN_PARAMS, so that both read one configuration."""
    on_disk = Path("params.yaml")
    if (
        on_disk.exists()
        and medgan_config.validate(yaml.safe_load(on_disk.read_text())) == PARAMS
    ):
        return
    effective = Path(".snakemake/medgan/params.yaml")
    text = yaml.safe_dump(PARAMS, sort_keys=True)
    if not effective.exists() or effective.read_text() != text:
        effective.parent.mkdir(parents=True, exist_ok=True)
        effective.write_text(text)
    os.environ[medgan_config.PARAMS_ENV] = str(effective.resolve())


export_effective_params()


wildcard_constraints:
    name="|".join(PARAMS.get("phantoms", {})) or "^$",
    dataset="|".join(PARAMS["datasets"]),
    experiment="|".join(PARAMS["experiments"]),
    replicate=r"\d+",
    unit="[^/]+",


def stage_params(stage, target=None, replicate=0):
    """The params slice a stage reads, as JSON: Snakemake reruns a job when it changes."""
    return json.dumps(
        medgan_config.stage_params(PARAMS, stage, target, int(replicate)),
        sort_keys=True,
    )


def stage_threads(stage):
    return PARAMS["resources"][stage]["threads"]


def stage_resources(stage):
    """Job resources from params.yaml's `resources.<stage>`, in the Slurm executor's terms."""
    spec = PARAMS["resources"][stage]
    resources = {"mem_mb": spec["mem_mb"], "runtime": spec["runtime"]}
    if spec["gpus"] > 0:
        resources["gpu"] = spec["gpus"]
        if spec["gpu_model"]:
            resources["gpu_model"] = spec["gpu_model"]
    return resources


def raw_folder(wildcards):
    return PARAMS["datasets"][wildcards.dataset]["raw"]


def converted_units(wildcards):
    """The interim folders of every unit the checkpoint `prepare_units` listed."""
    listing = checkpoints.prepare_units.get(dataset=wildcards.dataset).output[0]
    units = json.loads(Path(listing).read_text())["units"]
    return [
        paths.UNIT.format(dataset=wildcards.dataset, unit=u["unit_id"]) for u in units
    ]


def slices_of_experiment(wildcards):
    return paths.SLICES.format(
        dataset=PARAMS["experiments"][wildcards.experiment]["dataset"]
    )


def baseline_of_experiment(wildcards):
    return paths.BASELINE.format(
        dataset=PARAMS["experiments"][wildcards.experiment]["dataset"]
    )


def synthetic_of_experiment(wildcards):
    """The experiment's synthetic set when the pipeline makes one: replicate 0's evaluate reads
    it (segmentation_utility; the set is made with replicate 0's model)."""
    if (
        wildcards.experiment in PARAMS["synthesize"]["experiments"]
        and int(wildcards.replicate) == 0
    ):
        return [paths.SYNTHETIC.format(experiment=wildcards.experiment)]
    return []


def every_replicate(pattern, experiments=None):
    """`pattern` filled for every replicate of every experiment (or of `experiments`)."""
    return [
        paths.path(pattern, experiment=e, replicate=r).as_posix()
        for e in (PARAMS["experiments"] if experiments is None else experiments)
        for r in range(medgan_config.replicates_of(PARAMS, e))
    ]


def replicate_metrics_of_experiment(wildcards):
    return every_replicate(paths.REPLICATE_METRICS, [wildcards.experiment])


def replicate_zero_model(wildcards):
    """The model that synthesize uses: replicate 0's (the Turing page and explorer use its samples)."""
    return paths.path(
        paths.MODEL, experiment=wildcards.experiment, replicate=0
    ).as_posix()


def replicate_zero_train_log(wildcards):
    """The training log that `medgan export` reads the guard's findings from (replicate 0's)."""
    return paths.path(
        paths.TRAIN_LOG, experiment=wildcards.experiment, replicate=0
    ).as_posix()


def replicate_zero_samples(wildcards):
    return paths.path(
        paths.SAMPLES, experiment=wildcards.experiment, replicate=0
    ).as_posix()


def replicate_zero_models_of_dataset(wildcards):
    return [
        paths.path(paths.MODEL, experiment=e, replicate=0).as_posix()
        for e in experiments_of_dataset(wildcards)
    ]


def replicate_zero_samples_of_dataset(wildcards):
    return [
        paths.path(paths.SAMPLES, experiment=e, replicate=0).as_posix()
        for e in experiments_of_dataset(wildcards)
    ]


def report_inputs():
    """Every file the report reads (the Turing answers are found by `turing_answer_files`)."""
    experiments = list(PARAMS["experiments"])
    per_replicate = [
        paths.CLOSEST_PAIRS,
        paths.TRAIN_LOG,
        paths.PROGRESS,
        paths.GRID,
        paths.INTERPOLATION,
        paths.SAMPLES,
    ]
    per_experiment = [paths.METRICS, paths.TURING_PAGE, paths.TURING_KEY]
    return [
        *[out for pattern in per_replicate for out in every_replicate(pattern)],
        *[
            out
            for pattern in per_experiment
            for out in expand(pattern, experiment=experiments)
        ],
        *expand(paths.BASELINE, dataset=list(PARAMS["datasets"])),
        *expand(paths.SLICES, dataset=list(PARAMS["datasets"])),
        *expand(paths.EXPLORE, dataset=list(PARAMS["datasets"])),
    ]


def experiments_of_dataset(wildcards):
    return [
        n for n, e in PARAMS["experiments"].items() if e["dataset"] == wildcards.dataset
    ]


def turing_answer_files(wildcards):
    """Readers' answer CSVs present now: adding one makes the report rerun."""
    folders = [
        Path(paths.TURING_ANSWERS.format(experiment=e)) for e in PARAMS["experiments"]
    ]
    return sorted(str(p) for folder in folders for p in folder.glob("*.csv"))


def turing_answers_of_experiment(wildcards):
    """Readers' answer CSVs of one experiment present now: the export's metadata scores them."""
    folder = Path(paths.TURING_ANSWERS.format(experiment=wildcards.experiment))
    return sorted(str(p) for p in folder.glob("*.csv"))


def final_outputs():
    experiments = list(PARAMS["experiments"])
    return [
        paths.SUMMARY_CSV,
        paths.SUMMARY_MD,
        *every_replicate(paths.GRID),
        *every_replicate(paths.INTERPOLATION),
        *every_replicate(paths.PROGRESS),
        *every_replicate(paths.TRAIN_LOG),
        *expand(paths.SLICES, dataset=list(PARAMS["datasets"])),
        *expand(paths.EXPLORE, dataset=list(PARAMS["datasets"])),
        *expand(paths.SYNTHETIC, experiment=PARAMS["synthesize"]["experiments"]),
        *expand(paths.EXPORT_ZIP, experiment=PARAMS["export"]["experiments"]),
        paths.REPORT,
    ]
