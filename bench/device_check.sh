#!/usr/bin/env bash
# One-shot GPU check of the generator (run by the `run` device tool from the repo root;
# $OUT is the folder whose files come back). Budget: finishes inside ~400 s.
#   1. pytest tests/test_generator_cuda.py (the CUDA-only checks; TESTS= to run others;
#      BENCH_ARGS= passes options to the bench, e.g. "--skip-training --compile-if-before-s 0")
#   2. bench/bench_generator_gpu.py: 512x512 bf16 sampling, reproducibility, production
#      vs bare forward, training images/s at 256x256 with GPU utilisation, peak memory
#   3. with DEMO_TRAIN=1: trains the demo StyleGAN2 at 256x256 on gpu-carry/demo-archive-256 (rendered
#      locally by `python -m generator render-ct --size 256 --out gpu-carry/demo-archive-256`
#      and carried) for the time that is left, and returns the fp16 release checkpoint.
# TINY=1 runs the same logic with tiny sizes on a CPU (how this script is tested).
set -u
OUT=${OUT:-/tmp/device-check-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-375}
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
LOG="$OUT/bench.log"

{ nvidia-smi || true; $PY -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } >"$LOG" 2>&1

if [ "${TINY:-0}" = 1 ]; then
  BENCH_ARGS="--tiny --device cpu"; TESTS=${TESTS:-tests/test_generator_stylegan2.py tests/test_generator_standalone.py}; TRAIN_ARGS="--resolution 32 --latent-dim 16 --base-width 4 --max-width 16 --batch-size 4 --device cpu"
  DATA=${DATA:-gpu-carry/demo-archive-256}
else
  BENCH_ARGS=${BENCH_ARGS:-}; TRAIN_ARGS="--resolution 256 --latent-dim 128 --base-width 16 --max-width 128 --batch-size 64"
  DATA=gpu-carry/demo-archive-256
fi

echo "== pytest $(elapsed)s" >>"$LOG"
timeout 100 $PY -m pytest -q -x -p no:django -p no:cacheprovider -o addopts="" -k "not ddp" ${TESTS:-tests/test_generator_cuda.py} \
  >"$OUT/pytest.txt" 2>&1
echo "pytest rc=$? at $(elapsed)s" >>"$LOG"

echo "== bench $(elapsed)s" >>"$LOG"
timeout 330 $PY bench/bench_generator_gpu.py --out "$OUT/gpu_bench.json" $BENCH_ARGS >>"$LOG" 2>&1
echo "bench rc=$? at $(elapsed)s" >>"$LOG"

LIMIT=$(( BUDGET - $(elapsed) - 25 ))
if [ "$LIMIT" -gt 240 ]; then LIMIT=240; fi
echo "== demo training for ${LIMIT}s from $(elapsed)s" >>"$LOG"
if [ "${DEMO_TRAIN:-0}" = 1 ] && [ "$LIMIT" -gt 20 ] && [ -d "$DATA" ]; then
  rm -rf /tmp/demo-train
  timeout $(( LIMIT + 60 )) $PY -m generator train --arch stylegan2 --data "$DATA" --out /tmp/demo-train $TRAIN_ARGS \
    --mapping-layers 4 --lr-g 0.0025 --lr-d 0.0025 --r1-gamma 1 --ema-decay 0.998 --steps 1000000 \
    --sample-every 500 --checkpoint-every 1000000 --seed 0 --time-limit "$LIMIT" >"$OUT/train.log" 2>&1
  echo "train rc=$? at $(elapsed)s" >>"$LOG"
  cp /tmp/demo-train/release.safetensors "$OUT/demo-stylegan2.safetensors" 2>>"$LOG"
  GRID=$(ls /tmp/demo-train/samples/*.png 2>/dev/null | tail -1)
  [ -n "$GRID" ] && cp "$GRID" "$OUT/demo-grid.png"
  tr '\r' '\n' <"$OUT/train.log" | tail -5 >>"$LOG"
fi
echo "== done at $(elapsed)s" >>"$LOG"
ls -la "$OUT" >>"$LOG"
cat "$LOG"
