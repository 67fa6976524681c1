# GPU session 14, call 6: tests/test_cuda_path.py on this session's code, then 32 streams new/old interleaved
source .devdata/common.sh
mon() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) | steal: $(awk '/^cpu /{print $9}' /proc/stat)"; }
timeout 300 python3 -m pytest -q -rs tests/test_cuda_path.py tests/test_torch_backend.py -p no:cacheprovider 2>&1 | tail -8 | tee $OUT/pytest_cuda.txt
rm -rf /tmp/oldtree && mkdir -p /tmp/oldtree && cp -r pockit benchmarks /tmp/oldtree/ && ln -s $PWD/.devdata /tmp/oldtree/.devdata
cp .devdata/old/torch_backend.py /tmp/oldtree/pockit/inference/; cp .devdata/old/streamwork.py .devdata/old/workers.py /tmp/oldtree/pockit/pipeline/
st() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; p=c['pipeline']; print(' e2e/model', round(c['e2e_over_model_only'],3), 'steady', c['steady_fps'], 'model', c['model_only_ips'], 'steal', round(r.get('steady',{}).get('steal_pct_mean') or -1, 3), 'cpu_s', p.get('cpu_s'), 'pre ms/frame', c['stages'].get('preprocess',{}).get('mean_ms'))" /tmp/bo/$1.json; }
runq() { n=$1; shift; timeout 170 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/; st $n; sleep 2; }
runold() { n=$1; shift; (cd /tmp/oldtree && PYTHONPATH=/tmp/site:/tmp/oldtree timeout 170 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1); echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/; st $n; sleep 2; }
for i in 1 2; do
  mon; runq N32_$i $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
  mon; runold O32_$i $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
done
mon
