"""Where every stage writes. Snakefile rules, dvc.yaml and the CLI use these names."""

from pathlib import Path

RAW = "data/raw/{name}"
SLICES = "data/slices/{dataset}"
SYNTHETIC = "data/synthetic/{experiment}"  # medgan synthesize: an augmentation set, laid out like SLICES
INTERIM = "data/interim/{dataset}"  # prepare's scatter outputs (one folder per raw case/shard)
UNIT_LIST = "data/interim/{dataset}/units.json"
UNIT = "data/interim/{dataset}/units/{unit}"
# Per replicate (training seed) of an experiment: one scheme, `<stage folder>/{experiment}/r{replicate}`
# (README "Seeds as replicates"); replicate 0 trains with params `seed`.
MODEL = "results/models/{experiment}/r{replicate}.pt"
CHECKPOINTS = "results/checkpoints/{experiment}/r{replicate}"  # resume state: not a declared output
TRAIN_LOG = "results/plots/train/{experiment}/r{replicate}.csv"
PROGRESS = "results/progress/{experiment}/r{replicate}.png"
SAMPLES = "results/samples/{experiment}/r{replicate}"
GRID = "results/grids/{experiment}/r{replicate}.png"
INTERPOLATION = "results/interpolations/{experiment}/r{replicate}.png"
REPLICATE_METRICS = "results/metrics/replicates/{experiment}/r{replicate}.json"  # evaluate's output
# Per experiment: the aggregate over its replicates (medgan aggregate), the file summaries read.
METRICS = "results/metrics/experiments/{experiment}.json"
SUMMARY_CSV = "results/metrics/summary.csv"
SUMMARY_MD = "results/metrics/summary.md"
TURING_PAGE = "results/turing/{experiment}/index.html"  # hand this one file to readers
TURING_KEY = "results/turing/{experiment}/key.json"     # never referenced by the page
TURING_ANSWERS = "results/turing/{experiment}/answers"  # readers' exported CSVs (not a stage output)
REPORT = "results/report.html"
EXPORT = "results/export/{experiment}"  # medgan export: the shareable package (folder)
EXPORT_ZIP = "results/export/{experiment}.zip"  # the same zipped: what medigan's package_link names
EXPLORE = "results/explore/{dataset}.html"  # latent-space explorer, one page per dataset
CACHE = "results/cache"
# what made each metrics file (not DVC metrics: results.py, provenance.py)
EVALUATE_PROVENANCE = "results/provenance/evaluate/{experiment}/r{replicate}.json"
AGGREGATE_PROVENANCE = "results/provenance/aggregate/{experiment}.json"
BASELINE_PROVENANCE = "results/provenance/baseline/{dataset}.json"
PROVENANCE_SUMMARY = "results/provenance/summarize.json"


BASELINE = "results/metrics/baselines/{dataset}.json"  # real-vs-real floor, per class
CLOSEST_PAIRS = "results/metrics/memorisation/{experiment}/r{replicate}.png"


def path(pattern: str, **names) -> Path:
    """`pattern` filled in. A per-replicate pattern given no `replicate` means replicate 0 (the
    one run of R = 1, and the run the Turing page, the explorer and synthesize use)."""
    if "{replicate}" in pattern:
        names.setdefault("replicate", 0)
    return Path(pattern.format(**names))


def replicate_folder(pattern: str, experiment: str) -> Path:
    """The folder holding every replicate of `experiment` under a per-replicate pattern
    (DVC's one stage per experiment declares these)."""
    return Path(pattern.split("{replicate}")[0].format(experiment=experiment)).parent

