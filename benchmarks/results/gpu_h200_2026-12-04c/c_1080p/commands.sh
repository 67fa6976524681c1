# GPU session 12, call 6: 64 x 1080p paced at 25 fps, NVDEC in decode processes under pockit's CUDA MPS
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
B="--device cuda:0 --half --no-progress"
mkdir -p /tmp/bo
run() { n=$1; shift; timeout 120 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-900; python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]['pipeline']; print(' mps:', d.get('cuda_mps'), '| decoders', c['decoders'], 'slots', c['frame_pool']['slots'], 'workers', c['workers'], 'lag', c.get('realtime_lag_s'), 'dropped', c['dropped'])" /tmp/bo/$n.json; }
sed "s/^name: gpu-1080p-nvdec-mps/name: gpu-1080p-nvdec-mps\npipeline: {frame_slots: 400}/" $g/pets1080_nvdec_mps.yaml > $g/_1080_s400.yaml
run G1080 $g/pets1080_nvdec_mps.yaml $B --batch 64 --streams 64 --realtime --max-frames 300 --no-model-only
run G1080_s400 $g/_1080_s400.yaml $B --batch 64 --streams 64 --realtime --max-frames 300 --no-model-only
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -5
# ---- call 7 (the machine still warm: /tmp/site installed by call 6)
# GPU session 12, call 7: 64 x 1080p paced, NVDEC in 8 decode processes under MPS
set -o pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
sed "s/^name: gpu-1080p-nvdec-mps/name: gpu-1080p-nvdec-mps\npipeline: {decode_threads: 8}/" $g/pets1080_nvdec_mps.yaml > $g/_1080_d8.yaml
n=G1080_d8; timeout 100 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench $g/_1080_d8.yaml --device cuda:0 --half --no-progress --batch 64 --streams 64 --realtime --max-frames 300 --no-model-only -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-600
