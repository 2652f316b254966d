#!/usr/bin/env bash
# The pull-request comment: Markdown tables of the metrics and params that differ between a
# base revision and the workspace (run it in the repository root, after `dvc repro`).
#   workflow/scripts/metrics_report.sh BASE_REV > report.md
# Metrics and plots are committed to git (cache: false in dvc.yaml), so BASE_REV's values come
# from git alone: no DVC remote is needed. Beside the raw diff (where every number moves on another
# CPU), `medgan compare-metrics` says which changes exceed the across-seed interval and whether
# the verdict sentence of summary.md changed.
set -euo pipefail
base=${1:?usage: metrics_report.sh BASE_REV}
git rev-parse --verify --quiet "$base^{commit}" > /dev/null || { echo "metrics_report.sh: unknown revision '$base'" >&2; exit 2; }

metrics=$(dvc metrics diff "$base" --md --precision 4)
params=$(dvc params diff "$base" --md)
# dvc prints a bare header when nothing changed: a table needs a row below its two header lines.
has_rows() { [ "$(grep -c '^|' <<< "$1")" -gt 2 ]; }
# The base revision's results/metrics, from git, for medgan compare-metrics.
base_tree=$(mktemp -d)
trap 'rm -rf "$base_tree"' EXIT
mkdir -p "$base_tree/results/metrics"
if git cat-file -e "$base:results/metrics" 2> /dev/null; then
  git archive "$base" results/metrics | tar -x -C "$base_tree"
fi
judged=$(medgan compare-metrics "$base_tree/results/metrics" results/metrics)

echo "## medgan: metrics and params against \`$base\` ($(git rev-parse --short "$base"))"
echo
echo "### Metrics"
echo
if has_rows "$metrics"; then echo "$metrics"; else echo "No metric changed."; fi
echo
echo "$judged"
echo
echo "### Params"
echo
if has_rows "$params"; then echo "$params"; else echo "No param changed."; fi
echo
echo "<sub>Embedded default reproduced on CPU with \`dvc repro\` from $(git rev-parse --short HEAD).</sub>"
