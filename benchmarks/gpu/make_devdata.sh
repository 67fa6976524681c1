#!/usr/bin/env bash
# Builds the ignored folders a GPU benchmark call carries to the lent machine (which has PyTorch/CUDA/OpenCV but no
# package registry): .devdata/ (the 576p / 1080p H.264 scenes, the pinned .pt, TUD-Campus for tests/test_cuda_path.py)
# and .whl/ (pockit's dependencies missing there, as cp312 wheels). Run here, in the repo root, once per checkout;
# then each device call carries [".whl", ".devdata"] (64 MiB a call in all: NVDEC=1 adds PyNvVideoCodec, 27 MB, so
# leave TUD-Campus or the 1080p file out in that call) and starts with `source benchmarks/gpu/device_env.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${POCKIT_DATA_DIR:-../shared/data}
mkdir -p .devdata/video .devdata/models .devdata/data/mot .whl
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
[[ -f .devdata/video/pets576.mp4 ]] || ffmpeg -loglevel error -y -stream_loop 7 -framerate 25 \
  -i "$data/mot/PETS09-S3-MF1/img1/%06d.jpg" -frames:v 800 -c:v libx264 -crf 23 -pix_fmt yuv420p .devdata/video/pets576.mp4
if [[ ${P1080:-0} == 1 && ! -f .devdata/video/pets1080.mp4 ]]; then
  ffmpeg -loglevel error -y -stream_loop 7 -framerate 25 -i "$data/mot/PETS09-S3-MF1/img1/%06d.jpg" \
    -vf scale=1920:1080 -frames:v 300 -c:v libx264 -crf 23 -pix_fmt yuv420p .devdata/video/pets1080.mp4
fi
[[ -f .devdata/models/person-yolov8s.pt ]] || cp "$(python3 -c 'from pockit.registry import fetch; print(fetch("person-yolov8s-pt"))')" .devdata/models/
[[ -d .devdata/data/mot/TUD-Campus ]] || cp -r "$data/mot/TUD-Campus" .devdata/data/mot/
# the versions installed here, as wheels for the device's Python 3.12 (polars and av are imported lazily and left
# out: 90 MB); pydantic etc. shadow the device's own copies through PYTHONPATH
dl() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_34_x86_64 -d .whl "$@"; }
v() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
# a wheel of another version of the same package (left by an earlier run) makes pip's install on the device fail
for p in pydantic pydantic-core supervision trackers ultralytics-opencv-headless click; do
  ver=$(v "$p"); stem=${p//-/_}
  for f in .whl/"$stem"-*.whl; do [[ -e $f && $f != .whl/"$stem-$ver"-* ]] && rm -f "$f"; done
  dl "$p==$ver"
done
dl annotated-types typing-inspection ultralytics-thop ultralytics-platform pydeprecate defusedxml plotly imagehash \
   PyWavelets faster-coco-eval lap py-spy
[[ ${NVDEC:-0} == 1 ]] && dl PyNvVideoCodec
du -sh .devdata .whl
