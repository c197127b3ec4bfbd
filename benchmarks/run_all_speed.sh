#!/usr/bin/env bash
# Every speed figure of issue 24's table in one go, on an otherwise idle machine (about 3–4 minutes on 2 cores):
# ours against torchvision LR-ASPP and DeepLabV3 MobileNetV3 in fp32 and bf16, the paper FCN-8s against pytorch-fcn's
# way, the stage pass against eager fp32, `segment` on a folder, Sequence playback, the viewer, and the stored bf16
# agreement that gates auto precision. Each step prints its exact command, its figures and how long it took; the
# bench_vs_lraspp step also prints rows ready to paste into benchmarks/README.md.
#
#   PYTHON=.venv/bin/python benchmarks/run_all_speed.sh 2>&1 | tee speed.log
#   QUICK=1 PYTHON=.venv/bin/python benchmarks/run_all_speed.sh      # every step on tiny settings: does it run?
#
# Needs the bench extra (torchvision) and, for real photos, ../shared/data/camvid (noise and generated frames
# otherwise). Auto precision decides as the viewer does: FCN_VIEWER_CPU_BF16 is cleared.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" QT_QPA_PLATFORM=offscreen PYTHONUNBUFFERED=1
unset FCN_VIEWER_CPU_BF16 OMP_NUM_THREADS MKL_NUM_THREADS

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD); $(date -u '+%F %H:%M UTC')"
"$PYTHON" -c 'import torch; from fcn_viewer.bf16 import cpu_has_native_bf16 as n; print(f"== torch {torch.__version__}, {torch.get_num_threads()} threads, capability {torch.backends.cpu.get_cpu_capability()}, native bf16 {n()}")'

step() {
    echo
    echo "== \$ $*"
    local started=$SECONDS
    "$@"
    echo "== took $((SECONDS - started)) s"
}

if [[ -n "${QUICK:-}" ]]; then
    runs=(--runs 1) paper=(--paper 1) inference=(--runs 2 --batch 1) folder=(--nets default --images 1)
    frames=(--frames 3) gui=(--opens 1 --renders 1)
else
    runs=(--runs 20) paper=(--paper 5) inference=(--runs 12) folder=() frames=(--frames 30) gui=()
fi
step "$PYTHON" benchmarks/bench_vs_lraspp.py "${runs[@]}" "${paper[@]}"
step "$PYTHON" benchmarks/bench_inference.py --device cpu --nets bundled "${inference[@]}" --precision auto
step "$PYTHON" benchmarks/bench_inference.py --device cpu --nets bundled "${inference[@]}" --precision fp32
step "$PYTHON" benchmarks/bench_segment_folder.py "${folder[@]}"
step "$PYTHON" benchmarks/bench_sequence.py "${frames[@]}" --rate 12
step "$PYTHON" benchmarks/bench_sequence.py "${frames[@]}" --rate 12 --precision fp32
step "$PYTHON" benchmarks/bench_gui.py "${gui[@]}"
step "$PYTHON" benchmarks/bench_bf16_agreement.py --stored
echo
echo "== all done in $SECONDS s"
