"""Load and validate params.yaml — the one configuration of the pipeline."""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from .errors import MedganError

DEFAULT_PARAMS = "params.yaml"
PARAMS_ENV = "MEDGAN_PARAMS"  # set by the Snakefile when --config/--configfile override params.yaml


class ConfigError(MedganError, ValueError):
    """params.yaml is malformed; the message names the key and the fix."""


def load_schema() -> dict:
    text = resources.files("medgan").joinpath("params.schema.yaml").read_text()
    return yaml.safe_load(text)


def _validator_filling_defaults():
    # jsonschema validates but does not fill defaults; this is the extension its docs recommend.
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate(params: dict, source: str = DEFAULT_PARAMS) -> dict:
    """Return a validated copy of `params` with schema defaults filled in."""
    params = copy.deepcopy(params)
    errors = sorted(_validator_filling_defaults()(load_schema()).iter_errors(params), key=str)
    if errors:
        lines = [f"  - at '{_key_path(e)}': {e.message}" for e in errors]
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines))
    _check_references(params, source)
    return params


def _check_references(params: dict, source: str) -> None:
    problems = []
    for name, exp in params["experiments"].items():
        dataset = params["datasets"].get(exp["dataset"])
        if dataset is None:
            problems.append(
                f"  - at 'experiments.{name}.dataset': unknown dataset '{exp['dataset']}' "
                f"(known: {', '.join(params['datasets'])})"
            )
        elif exp["class"] != "all" and exp["class"] not in dataset["classes"]:
            problems.append(
                f"  - at 'experiments.{name}.class': '{exp['class']}' is not one of "
                f"datasets.{exp['dataset']}.classes {dataset['classes']}"
            )
        else:
            try:
                training_settings(params, name)
            except ConfigError as err:
                problems.append(str(err).split("\n", 1)[1])
    for name, dataset in params["datasets"].items():
        if abs(sum(dataset["split"].values()) - 1.0) > 1e-6:
            problems.append(f"  - at 'datasets.{name}.split': ratios must sum to 1")
    if problems:
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(problems))


def params_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(PARAMS_ENV) or DEFAULT_PARAMS)


def load(path: str | os.PathLike | None = None) -> dict:
    """Read, validate and default-fill params.yaml (or `$MEDGAN_PARAMS`, or `path`)."""
    path = params_path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found: run from the project root or pass --params FILE")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(raw).__name__}")
    return validate(raw, str(path))


def experiment(params: dict, name: str) -> dict:
    try:
        return params["experiments"][name]
    except KeyError:
        known = ", ".join(params["experiments"])
        raise ConfigError(f"unknown experiment '{name}' (params.yaml has: {known})") from None


def dataset(params: dict, name: str) -> dict:
    try:
        return params["datasets"][name]
    except KeyError:
        known = ", ".join(params["datasets"])
        raise ConfigError(f"unknown dataset '{name}' (params.yaml has: {known})") from None


def classes_of(params: dict, exp: dict) -> list[str]:
    """The classes an experiment learns: its one class, or all of its dataset's."""
    classes = params["datasets"][exp["dataset"]]["classes"]
    return list(classes) if exp["class"] == "all" else [exp["class"]]


def _overridden(defaults: dict, overrides: dict, where: str) -> dict:
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(f"params.yaml is invalid:\n  - at '{where}': unknown key(s) {unknown} "
                          f"(known: {', '.join(sorted(defaults))})")
    return {**defaults, **overrides}


def training_settings(params: dict, name: str) -> dict:
    """Everything that decides a training run of one experiment, overrides applied."""
    exp = experiment(params, name)
    return {
        "seed": params["seed"],
        "experiment": exp,
        "classes": classes_of(params, exp),
        "image_size": list(exp.get("image_size") or params["datasets"][exp["dataset"]]["image_size"]),
        "hp": _overridden(params["variants"][exp["variant"]], exp.get("hp", {}), f"experiments.{name}.hp"),
        "train": _overridden(params["train"], exp.get("train", {}), f"experiments.{name}.train"),
    }


def stage_params(params: dict, stage: str, target: str | None = None) -> dict:
    """The slice of params a stage reads: Snakemake reruns a job when it changes, and
    dvc.yaml lists the same keys under `params:`."""
    if stage == "phantoms":
        return {"seed": params["seed"], "phantoms": params["phantoms"][target]}
    if stage == "prepare":
        return {"seed": params["seed"], "dataset": params["datasets"][target]}
    if stage == "train":
        return training_settings(params, target)
    if stage == "sample":
        return {"seed": params["seed"], "sample": params["sample"]}
    if stage == "evaluate":
        return {"seed": params["seed"], "evaluate": params["evaluate"]}
    if stage == "turing":
        return {"seed": params["seed"], "turing": params["turing"], "real_split": params["evaluate"]["real_split"]}
    if stage == "report":
        return {"seed": params["seed"], "experiments": params["experiments"],
                "real_split": params["evaluate"]["real_split"]}
    raise ValueError(f"unknown stage {stage}")
