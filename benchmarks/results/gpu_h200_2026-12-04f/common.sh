set -o pipefail
if [[ ! -d /tmp/site/PyNvVideoCodec ]]; then
  mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
export POCKIT_TEST_PT=$PWD/.devdata/models/person-yolov8s.pt POCKIT_DATA_DIR=$PWD/.devdata/data
g=benchmarks/gpu
B="--device cuda:0 --half --no-progress"
mkdir -p /tmp/bo
run() { n=$1; shift; /usr/bin/time -f "$n exit after %e s" timeout 170 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; tail -1 /tmp/bo/log_$n.txt; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; cp /tmp/bo/log_$n.txt $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-900; python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]['pipeline']; print(' mps:', d.get('cuda_mps'), '| decoders', c['decoders'], 'slots', c['frame_pool']['slots'], 'workers', c['workers'], 'nv12', c.get('nv12_streams'), 'wall', d['cases'][0]['wall_s'])" /tmp/bo/$n.json; sleep 2; echo "mps procs left: $(ps aux | grep -c '[n]vidia-cuda-mps') dirs: $(ls /tmp | grep -c pockit-mps)"; }
