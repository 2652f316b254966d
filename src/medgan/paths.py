"""Where every stage writes. Snakefile rules, dvc.yaml and the CLI use these names."""

from pathlib import Path

RAW = "data/raw/{name}"
SLICES = "data/slices/{dataset}"
SYNTHETIC = "data/synthetic/{experiment}"  # medgan synthesize: an augmentation set, laid out like SLICES
INTERIM = "data/interim/{dataset}"  # prepare's scatter outputs (one folder per raw case/shard)
UNIT_LIST = "data/interim/{dataset}/units.json"
UNIT = "data/interim/{dataset}/units/{unit}"
MODEL = "results/models/{experiment}.pt"
CHECKPOINTS = "results/checkpoints/{experiment}"  # resume state: not a declared output
TRAIN_LOG = "results/plots/train/{experiment}.csv"
PROGRESS = "results/progress/{experiment}.png"
SAMPLES = "results/samples/{experiment}"
GRID = "results/grids/{experiment}.png"
INTERPOLATION = "results/interpolations/{experiment}.png"
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
EVALUATE_PROVENANCE = "results/provenance/evaluate/{experiment}.json"
BASELINE_PROVENANCE = "results/provenance/baseline/{dataset}.json"
PROVENANCE_SUMMARY = "results/provenance/summarize.json"


def path(pattern: str, **names: str) -> Path:
    return Path(pattern.format(**names))
BASELINE = "results/metrics/baselines/{dataset}.json"  # real-vs-real floor, per class
CLOSEST_PAIRS = "results/metrics/memorisation/{experiment}.png"
