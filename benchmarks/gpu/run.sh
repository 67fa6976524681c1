#!/usr/bin/env bash
# GPU benchmark: every figure comes from `pockit bench` (the one pipeline), nothing else.
# Usage: bash benchmarks/gpu/run.sh OUT_DIR [DEVICE] [FRAMES]   (DEVICE default cuda:0; FRAMES per stream)
# Needs .devdata/ (see benchmarks/README.md, GPU section). Writes one bench JSON per case into OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out=${1:?out dir}; dev=${2:-cuda:0}; n=${3:-400}
mkdir -p "$out"
half=--half; [[ $dev == cpu ]] && half=--no-half
pk() { python3 -c 'import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
g=benchmarks/gpu
# which decoder the file sources get here, and whether NVDEC frames match OpenCV's (mean abs difference)
python3 - <<'PY' 2>&1 | tee "$out/decoder_check.txt"
import numpy as np
from pockit.sources import open_source
from pockit.sources.nvdec import nvdec_available
print("nvdec available:", nvdec_available())
v = ".devdata/video/pets576.mp4"
if nvdec_available()[0]:
    a = open_source(v, max_frames=20, decoder="nvdec")
    b = open_source(v, max_frames=20, decoder="cpu")
    fa, fb = [f.image for f in a], [f.image for f in b]
    print("nvdec frames", len(fa), "cpu frames", len(fb), "mean abs diff:",
          float(np.mean([np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(fa, fb)])))
PY
# one camera: pockit vs Ultralytics model.track (same frames, same .pt, same device and precision)
pk bench $g/pets576.yaml --device "$dev" $half --batch 1 --streams 1 --max-frames "$n" --ultralytics \
   -o "$out/one_stream.json" --no-progress
# many cameras, live decode of H.264: OpenCV/FFmpeg on the CPU (default), then NVDEC (PyNvVideoCodec)
for s in 32 64; do
  pk bench $g/pets576.yaml --device "$dev" $half --batch "$s" --streams "$s" --max-frames "$n" \
     -o "$out/s${s}_cpudecode.json" --no-progress
  [[ ${NVDEC:-1} == 1 ]] && pk bench $g/pets576_nvdec.yaml --device "$dev" $half --batch "$s" --streams "$s" \
     --max-frames "$n" -o "$out/s${s}_nvdec.json" --no-progress
  # NVDEC sessions in the decode processes instead of threads of the inference process (not measured yet with
  # the own-stream code: see benchmarks/README.md, fifth session)
  [[ ${NVDEC:-1} == 1 ]] && pk bench $g/pets576_nvdec_proc.yaml --device "$dev" $half --batch "$s" --streams "$s" \
     --max-frames "$n" -o "$out/s${s}_nvdec_proc.json" --no-progress
done
# steady state: the file looped so that the steady window is 20-35 s (the 400-frame runs above are mostly start-up
# and end); CPU decode (defaults) and NVDEC in 3 decode processes with NV12 frame slots (eleventh GPU session)
for s in 32 64; do
  f=$(( s == 32 ? 2000 : 1600 ))
  pk bench $g/pets576_loop.yaml --device "$dev" $half --batch "$s" --streams "$s" --max-frames "$f" \
     -o "$out/s${s}_steady_cpudecode.json" --no-progress
  [[ ${NVDEC:-1} == 1 ]] && POCKIT_NVDEC_NV12=1 pk bench $g/pets576_nvdec3_loop.yaml --device "$dev" $half \
     --batch "$s" --streams "$s" --max-frames "$f" -o "$out/s${s}_steady_nvdec3_nv12.json" --no-progress
  # NVDEC under CUDA MPS, started by pockit (pipeline.cuda_mps: auto), every other setting default (twelfth session)
  [[ ${NVDEC:-1} == 1 ]] && pk bench $g/pets576_nvdec_mps.yaml --device "$dev" $half --batch "$s" --streams "$s" \
     --max-frames "$(( s == 32 ? 1600 : 1200 ))" -o "$out/s${s}_steady_nvdec_mps.json" --no-progress
done
# one pass of the 800-frame file at the defaults (decoder: auto -> NVDEC decode processes under pockit's MPS where
# they exist): no loop reopen inside the measured window (fourteenth session: 91 % / 86 % of model-only)
for s in 32 64; do
  pk bench $g/pets576_loop.yaml --device "$dev" $half --batch "$s" --streams "$s" --max-frames 800 \
     -o "$out/s${s}_onepass_default.json" --no-progress
done
# 64 x 1080p at the cameras' own 25 fps: frames dropped when behind, and the limiting stage. pets1080.yaml leaves
# the decoder to `auto` (NVDEC at 1080p with a CUDA model when PyNvVideoCodec is installed), pets1080_cpu.yaml
# decodes on the CPU
for d in "" _cpu $([[ ${NVDEC:-1} == 1 ]] && echo _nvdec_proc _nvdec_mps); do
  pk bench "$g/pets1080$d.yaml" --device "$dev" $half --batch 64 --streams 64 --realtime \
     -o "$out/paced_1080p${d:-_auto}.json" --no-progress --no-model-only
done
# 64 cameras paced at 25 fps for 10 minutes: memory over time (`memory_timeline` in the JSON). LONG=1 runs it
if [[ ${LONG:-0} == 1 ]]; then
  pk bench $g/pets576_loop.yaml --device "$dev" $half --batch 64 --streams 64 --realtime --max-frames 15000 \
     --no-model-only -o "$out/long64_10min.json" --no-progress
fi
