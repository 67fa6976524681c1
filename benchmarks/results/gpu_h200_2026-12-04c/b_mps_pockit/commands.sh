# GPU session 12, call 3: pockit-managed CUDA MPS (pipeline.cuda_mps auto) and the new defaults (3 NVDEC decode
# processes, 15 frame slots a NVDEC stream), benchmarks/gpu/pets576_nvdec_mps.yaml, no env vars
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
B="--device cuda:0 --half --no-progress"
mkdir -p /tmp/bo
run() { n=$1; shift; timeout 150 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-900; python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]['pipeline']; print(' mps:', d.get('cuda_mps'), '| run:', c.get('cuda_mps'), '| decoders', c['decoders'], 'slots', c['frame_pool']['slots'], 'workers', c['workers'])" /tmp/bo/$n.json; }
sed "s/^name: gpu-pets576-nvdec-mps/name: gpu-pets576-nvdec-mps\npipeline: {frame_slots: 648}/" $g/pets576_nvdec_mps.yaml > $g/_mps_s648.yaml
sed "s/^name: gpu-pets576-nvdec-mps/name: gpu-pets576-nvdec-mps\npipeline: {decode_threads: 4}/" $g/pets576_nvdec_mps.yaml > $g/_mps_d4.yaml
run D64 $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 64 --max-frames 1200
run D32 $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
run D32_s648 $g/_mps_s648.yaml $B --batch 32 --streams 32 --max-frames 1600
run D32_d4 $g/_mps_d4.yaml $B --batch 32 --streams 32 --max-frames 1600
run D64b $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 64 --max-frames 1200
ls /tmp | grep pockit-mps; ps aux | grep -c "[n]vidia-cuda-mps"
grep -hiE "error|Traceback|MPS" /tmp/bo/log_*.txt | sort | uniq -c | head -10
# ---- call 4 (after: workers auto one per 4 NVDEC streams; MPS quit detached)
# GPU session 12, call 4: workers auto = one per 4 NVDEC streams; MPS quit detached at exit
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
B="--device cuda:0 --half --no-progress"
mkdir -p /tmp/bo
run() { n=$1; shift; /usr/bin/time -f "$n exit after %e s" timeout 150 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; tail -1 /tmp/bo/log_$n.txt; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-900; python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]['pipeline']; print(' mps:', d.get('cuda_mps'), '| decoders', c['decoders'], 'slots', c['frame_pool']['slots'], 'workers', c['workers'], 'wall', d['cases'][0]['wall_s'])" /tmp/bo/$n.json; sleep 2; echo "mps procs left: $(ps aux | grep -c '[n]vidia-cuda-mps')"; ls /tmp | grep -c pockit-mps; }
run E32 $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
run E64 $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 64 --max-frames 1200
run E32b $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
grep -hiE "error|Traceback|MPS" /tmp/bo/log_*.txt | sort | uniq -c | head -10
# ---- call 5
# GPU session 12, call 5: 32 streams again (noise), and batch 64 at 32 streams
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
B="--device cuda:0 --half --no-progress"
mkdir -p /tmp/bo
run() { n=$1; shift; timeout 150 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-700; }
run F32 $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
run F32_b64 $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 32 --max-frames 1600
run F32b $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
