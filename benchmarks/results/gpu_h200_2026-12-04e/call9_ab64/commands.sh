# GPU session 14, call 7: 64 streams at batch 64, new then old (the three files of 284728b)
source .devdata/common.sh
mon() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) | steal: $(awk '/^cpu /{print $9}' /proc/stat)"; }
rm -rf /tmp/oldtree && mkdir -p /tmp/oldtree && cp -r pockit benchmarks /tmp/oldtree/ && ln -s $PWD/.devdata /tmp/oldtree/.devdata
cp .devdata/old/torch_backend.py /tmp/oldtree/pockit/inference/; cp .devdata/old/streamwork.py .devdata/old/workers.py /tmp/oldtree/pockit/pipeline/
st() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; p=c['pipeline']; print(' e2e/model', round(c['e2e_over_model_only'],3), 'steady', c['steady_fps'], 'model', c['model_only_ips'], 'steal', round(r.get('steady',{}).get('steal_pct_mean') or -1, 3), 'cpu_s', p.get('cpu_s'), 'pre ms/frame', c['stages'].get('preprocess',{}).get('mean_ms'))" /tmp/bo/$1.json; }
runq() { n=$1; shift; timeout 170 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/; st $n; sleep 2; }
runold() { n=$1; shift; (cd /tmp/oldtree && PYTHONPATH=/tmp/site:/tmp/oldtree timeout 170 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1); echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/; st $n; sleep 2; }
mon; runq N64_1 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 1000
mon; runold O64_1 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 1000
mon
