#!/usr/bin/env bash
# The GPU path in one run (issue 24): at most GPU_CHECK_BUDGET_S (480 s = 8 min) on one GPU.
#
#   bash benchmarks/gpu_check.sh [OUT]     everything goes to OUT (default: $OUT, else a new temp folder)
#
# Parts, in this order (later parts get the time the earlier ones leave; each ends PASS, FAIL,
# SKIP or TIMEOUT in the summary printed at the end and written to OUT/summary.txt and .json):
#   env     the interpreter, torch and CUDA, what is missing; wheels in .whl/ (benchmarks/gpu_wheels.sh)
#           installed into a scratch folder first: a lent GPU machine reaches no package registry
#   a       pytest -m gpu tests/test_gpu.py: every variant on CUDA with bf16 and channels_last, resume,
#           sampling, Inception GPU vs CPU, DDP through torchrun with NCCL
#   b1      bench_train.py dcgan-128-b128 --ablate (b1-target: engine >= 3x the reference loop)
#   d-plan  snakemake -n of configs/lits_gpu.yaml with the Slurm profile (where snakemake is installed)
#   d-train lits256_pix2pix of configs/lits_gpu.yaml trained for GPU_CHECK_TRAIN_S (120 s) on phantom
#           data, checkpointed and resumed (d-runtime: its Slurm runtime covers the projected time)
#   c       benchmarks/bench_evaluate.py --sizes 2048 (issue 22's benchmark; skipped if absent)
#   b2      bench_train.py pix2pix-256 --ablate
# Without CUDA every GPU part is SKIP ("no CUDA"); the exit status is 1 if a part FAILed or timed
# out, else 0. OUT holds at most 8 files: summary.txt summary.json env.log gpu_tests.log
# bench_train.log bench_train.jsonl bench_evaluate.log lits_gpu.log (scratch work: a temp folder).
# Knobs: GPU_CHECK_BUDGET_S, GPU_CHECK_TRAIN_S, GPU_CHECK_PARTS ("a b1 d c b2"), PYTHON.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${1:-${OUT:-}}
[[ -n "$OUT_DIR" ]] || OUT_DIR=$(mktemp -d -t gpu_check.XXXXXX)
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d -t gpu_check_work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BUDGET=${GPU_CHECK_BUDGET_S:-480}
TRAIN_S=${GPU_CHECK_TRAIN_S:-120}
PARTS=" ${GPU_CHECK_PARTS:-a b1 d c b2} "
EXPERIMENT=lits256_pix2pix
START=$(date +%s)
DEADLINE=$((START + BUDGET))
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
cd "$REPO" || exit 2

now() { date +%s; }
left() { echo $((DEADLINE - $(now))); }
wants() { [[ "$PARTS" == *" $1 "* ]]; }
record() {  # part status seconds note
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"
  echo "[gpu_check] $1: $2 (${3} s) $4"
}
limited() {  # seconds log command...: runs command under timeout, appending to log; sets RC and SECS
  local limit=$1 log=$2; shift 2
  local t0; t0=$(now)
  echo "+ $*" >> "$log"
  timeout -k 15 "$limit" "$@" >> "$log" 2>&1
  RC=$?
  SECS=$(($(now) - t0))
}
status_of() {  # rc -> PASS / TIMEOUT / FAIL
  case $1 in 0) echo PASS ;; 124|137) echo TIMEOUT ;; *) echo FAIL ;; esac
}
cap() {  # wanted reserve -> min(wanted, time left - reserve)
  local l=$(($(left) - $2))
  ((l < $1)) && echo "$l" || echo "$1"
}
fits() {  # part limit minimum: records SKIP and fails when the time left is below the minimum
  (($2 >= $3)) && return 0
  record "$1" SKIP 0 "out of budget (${2} s of the ${3} s it needs); rerun: GPU_CHECK_PARTS=${1%%-*} bash benchmarks/gpu_check.sh"
  return 1
}

# -- env ------------------------------------------------------------------------------------------
t0=$(now)
if [[ -n "${PYTHON:-}" ]]; then PY=$PYTHON
elif [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then PY=$VIRTUAL_ENV/bin/python
elif [[ -x "$REPO/.venv/bin/python" ]]; then PY=$REPO/.venv/bin/python
else PY=$(command -v python3)
fi
export PATH="$(dirname "$PY"):$PATH"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
ENV_LOG="$OUT_DIR/env.log"
{ echo "gpu_check started $(date -u +%FT%TZ) in $REPO, budget ${BUDGET} s, parts:${PARTS}"
  echo "python: $PY"; uname -a; nproc; uptime
  command -v nvidia-smi > /dev/null && nvidia-smi; } > "$ENV_LOG" 2>&1
run_probe() {
  "$PY" - > "$WORK/probe.txt" 2>> "$ENV_LOG" <<'EOF'
import importlib.util, os, platform
needed = ["torch", "jsonschema", "yaml", "pandas", "PIL", "nibabel", "monai", "pytorch_fid", "pytest"]
optional = ["SimpleITK", "snakemake"]
print("MISSING=" + " ".join(m for m in needed if importlib.util.find_spec(m) is None))
print("ABSENT=" + " ".join(m for m in optional if importlib.util.find_spec(m) is None))
import torch
cuda = torch.cuda.is_available()
print(f"CUDA={int(cuda)}")
device = torch.cuda.get_device_name(0) if cuda else "cpu (no CUDA)"
print(f"DEVICE={device}, torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, python {platform.python_version()}")
if cuda:
    p = torch.cuda.get_device_properties(0)
    print(f"INFO=capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, cuDNN {torch.backends.cudnn.version()}, "
          f"NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}, bf16 {torch.cuda.is_bf16_supported()}, "
          f"TF32 conv {torch.backends.cudnn.allow_tf32}, TF32 matmul {torch.backends.cuda.matmul.allow_tf32}")
try:
    import medgan.train  # noqa: F401
    print("MEDGAN=ok")
except Exception as err:  # noqa: BLE001
    print(f"MEDGAN=does not import: {type(err).__name__}: {err}")
EOF
}
run_probe
PROBE_RC=$?
probe() { sed -n "s/^$1=//p" "$WORK/probe.txt"; }
WHEELS=""
if [[ -n "$(probe MISSING)$(probe MEDGAN | grep -v "^ok$")" ]] && compgen -G "$REPO/.whl/*.whl" > /dev/null; then
  limited 120 "$ENV_LOG" "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target "$WORK/site" "$REPO"/.whl/*.whl
  if ((RC == 0)); then
    export PYTHONPATH="$REPO/src:$WORK/site:${PYTHONPATH#"$REPO/src:"}"
    WHEELS="$(ls "$REPO"/.whl/*.whl | wc -l) wheels from .whl installed in ${SECS} s; "
  else
    WHEELS="installing .whl FAILED (see env.log); "
  fi
  run_probe
  PROBE_RC=$?
fi
cat "$WORK/probe.txt" >> "$ENV_LOG"
CUDA=$(probe CUDA); CUDA=${CUDA:-0}
DEVICE=$(probe DEVICE)
if ((PROBE_RC != 0)); then
  record env FAIL $(($(now) - t0)) "${WHEELS}python/torch do not start (see env.log)"
elif [[ -n "$(probe MISSING)" || "$(probe MEDGAN)" != ok ]]; then
  record env FAIL $(($(now) - t0)) "${WHEELS}missing: $(probe MISSING); medgan: $(probe MEDGAN) (benchmarks/gpu_wheels.sh)"
else
  info=$(probe INFO)
  record env PASS $(($(now) - t0)) "${WHEELS}${DEVICE}${info:+; $info}; optional, not installed: $(probe ABSENT | grep . || echo none)"
fi
NO_CUDA="no CUDA"

# scratch data for d-train, made on the CPU while the GPU tests run
if wants d && ((CUDA == 1)); then
  ( nice -n 10 "$PY" benchmarks/lits_gpu_run.py prepare "$WORK/lits" --experiment "$EXPERIMENT" \
      > "$WORK/prepare.log" 2>&1; echo $? > "$WORK/prepare.rc" ) &
  PREPARE_PID=$!
fi

# -- a: the gpu-marked tests ----------------------------------------------------------------------
if wants a; then
  LOG="$OUT_DIR/gpu_tests.log"
  limited "$(cap 120 0)" "$LOG" "$PY" -m pytest -p no:cacheprovider -m gpu tests/test_gpu.py -q -rfEs --durations=5
  counts=$(grep -Eo '[0-9]+ (passed|failed|skipped|errors?)' "$LOG" | tail -4 | paste -sd, - | sed 's/,/, /g')
  inception=$(grep -o 'Inception GPU vs CPU.*' "$LOG" | head -1)
  status=$(status_of "$RC")
  if ((CUDA == 0)) && [[ $status == PASS ]]; then
    record a SKIP "$SECS" "$NO_CUDA: ${counts:-nothing collected}"
  else
    record a "$status" "$SECS" "${counts:-no pytest summary}${inception:+; $inception}"
  fi
fi

bench_train() {  # part config cap rounds steps warmup
  local part=$1 config=$2 wanted=$3 reserve=$4; shift 4
  local limit; limit=$(cap "$wanted" "$reserve")
  if ((CUDA == 0)); then record "$part" SKIP 0 "$NO_CUDA"; return; fi
  fits "$part" "$limit" 60 || return
  limited "$limit" "$OUT_DIR/bench_train.log" "$PY" benchmarks/bench_train.py --only "$config" --ablate "$@" \
    --json "$OUT_DIR/bench_train.jsonl"
  local figures
  figures=$("$PY" - "$OUT_DIR/bench_train.jsonl" "$config" <<'EOF' 2>/dev/null
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
r = [row for row in rows if row["config"] == sys.argv[2]][-1]
parts = [f"reference {r['reference_img_s']:.0f} img/s"]
for name, arm in r["runs"].items():
    parts.append(f"{name} " + (f"{arm['img_s']:.0f} img/s ({arm['ratio']:.2f}x)" if "img_s" in arm else "FAILED"))
print("; ".join(parts))
print(f"RATIO={r['ratio']:.2f}" if r["ratio"] is not None else "RATIO=0")
EOF
)
  record "$part" "$(status_of "$RC")" "$SECS" "$(grep -v '^RATIO=' <<< "$figures")"
  if [[ $part == b1 && $RC == 0 ]]; then
    local ratio; ratio=$(sed -n 's/^RATIO=//p' <<< "$figures")
    if awk "BEGIN {exit !(${ratio:-0} >= 3)}"; then record b1-target PASS 0 "engine ${ratio}x the reference (target >= 3x)"
    else record b1-target FAIL 0 "engine ${ratio:-?}x the reference (target >= 3x)"; fi
  fi
}

# -- b1: DCGAN-128 ---------------------------------------------------------------------------------
if wants b1; then bench_train b1 dcgan-128-b128 150 $((TRAIN_S + 60)) --rounds 3 --steps 10 --warmup 3; fi

# -- d: the full-size LiTS configuration -----------------------------------------------------------
if wants d; then
  LOG="$OUT_DIR/lits_gpu.log"
  if [[ " $(probe ABSENT) " == *" snakemake "* ]]; then
    record d-plan SKIP 0 "snakemake not installed here (CI plans it: tests/test_gpu_check.py)"
  else
    mkdir -p "$WORK/plan/configs"
    cp -rL Snakefile params.yaml workflow "$WORK/plan/" && cp configs/lits_gpu.yaml "$WORK/plan/configs/"
    limited "$(cap 90 0)" "$LOG" env -C "$WORK/plan" "$PY" -m snakemake \
      --profile workflow/profiles/slurm -n --configfile configs/lits_gpu.yaml
    jobs=$(awk '$1 == "total" {print $2}' "$LOG" | tail -1)
    train_res=$(grep -A8 "rule train:" "$LOG" | grep -m1 -o 'runtime=[0-9]*, gpu=[0-9]*')
    record d-plan "$(status_of "$RC")" "$SECS" "${jobs:-?} jobs planned with the Slurm profile; train: ${train_res:-?}"
  fi
  if ((CUDA == 0)); then
    record d-train SKIP 0 "$NO_CUDA"
  else
    wait "$PREPARE_PID"
    cat "$WORK/prepare.log" >> "$LOG"
    limit=$(cap $((TRAIN_S + 120)) 15)
    if [[ "$(cat "$WORK/prepare.rc" 2>/dev/null)" != 0 ]]; then
      record d-train FAIL 0 "phantom data not prepared (see lits_gpu.log)"
    elif fits d-train "$limit" $((TRAIN_S + 30)); then
      limited "$limit" "$LOG" "$PY" benchmarks/lits_gpu_run.py train "$WORK/lits" \
        --experiment "$EXPERIMENT" --seconds "$TRAIN_S"
      record d-train "$(status_of "$RC")" "$SECS" "$(grep -m1 ' steps in ' "$LOG" || echo 'no result (see lits_gpu.log)')"
      if grep -q 'projected' "$LOG"; then
        verdict=$(grep -m1 -o 'projected.*' "$LOG")
        [[ $verdict == *OK ]] && record d-runtime PASS 0 "$verdict" || record d-runtime FAIL 0 "$verdict"
      fi
    fi
  fi
fi

# -- c: the evaluation benchmark (issue 22), if it has landed --------------------------------------
evaluate_lacks() {  # prints what bench_evaluate needs and this machine lacks; fails if anything
  "$PY" - 2>&1 <<'EOF'
import importlib.util
from medgan.metrics import inception
lacking = [m for m in ("frd_score", "radiomics", "prdc", "SimpleITK") if importlib.util.find_spec(m) is None]
try:
    inception.resolve("required", None)
except inception.WeightsMissing:
    lacking.append("the FID Inception weights")
print(", ".join(lacking))
raise SystemExit(1 if lacking else 0)
EOF
}
if wants c; then
  if [[ ! -f benchmarks/bench_evaluate.py ]]; then
    record c SKIP 0 "benchmarks/bench_evaluate.py not present (issue 22)"
  elif ((CUDA == 0)); then
    record c SKIP 0 "$NO_CUDA"
  elif ! lacking=$(evaluate_lacks); then
    record c SKIP 0 "bench_evaluate needs ${lacking}: more than a device call carries (64 MiB); run it where README command (b)'s venv is"
  elif limit=$(cap 150 15) && fits c "$limit" 45; then
    # issue 22's interface: --sizes N (n real = n generated = n training), --threads, --out
    limited "$limit" "$OUT_DIR/bench_evaluate.log" "$PY" benchmarks/bench_evaluate.py --sizes 2048 \
      --threads "$(nproc)" --no-reference --out "$WORK/bench_evaluate"
    cat "$WORK"/bench_evaluate/*.md >> "$OUT_DIR/bench_evaluate.log" 2>/dev/null
    record c "$(status_of "$RC")" "$SECS" "$(grep -m1 -o 'n=2048: total.*' "$OUT_DIR/bench_evaluate.log" || echo "wall ${SECS} s") (target <= 60 s)"
  fi
fi

# -- b2: pix2pix-256 (the time that is left) -------------------------------------------------------
if wants b2; then bench_train b2 pix2pix-256 240 15 --rounds 2 --steps 5 --warmup 2; fi

# -- summary ---------------------------------------------------------------------------------------
TOTAL=$(($(now) - START))
{
  echo "== gpu_check summary: ${DEVICE:-unknown device}; ${TOTAL} s of ${BUDGET} s; $(date -u +%FT%TZ) =="
  while IFS=$'\t' read -r part status secs note; do
    printf '%-10s %-8s %5s s  %s\n' "$part" "$status" "$secs" "$note"
  done < "$RESULTS"
  echo "files: $OUT_DIR"
} | tee "$OUT_DIR/summary.txt"
"$PY" - "$RESULTS" "$OUT_DIR/summary.json" "$TOTAL" "$BUDGET" "${DEVICE:-}" <<'EOF' 2>/dev/null
import json, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
parts = [{"part": p, "status": s, "seconds": int(t), "note": n} for p, s, t, n in rows]
json.dump({"device": sys.argv[5], "seconds": int(sys.argv[3]), "budget_s": int(sys.argv[4]), "parts": parts},
          open(sys.argv[2], "w"), indent=1)
EOF
if cut -f2 "$RESULTS" | grep -qE '^(FAIL|TIMEOUT)$'; then exit 1; fi
exit 0
