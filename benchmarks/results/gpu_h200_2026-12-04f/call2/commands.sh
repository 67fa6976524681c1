# GPU session 15, call 2: CUDA tests (names of any failure), 64 streams looped rewind on/off, one-pass 32/64 repeats
source .devdata/common.sh
mkdir -p /tmp/o2
mon() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) | steal: $(awk '/^cpu /{print $9}' /proc/stat)"; }
timeout 200 python3 -m pytest -q -rfs tests/test_cuda_path.py tests/test_sources.py -p no:cacheprovider 2>&1 | grep -E "^(FAILED|SKIPPED|ERROR)|passed|failed" | cut -c1-200 | tee /tmp/o2/pytest_cuda.txt
st() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; p=c['pipeline']; print(' e2e/model', round(c['e2e_over_model_only'],3), 'steady', round(c['steady_fps']), 'model', round(c['model_only_ips']), 'steal', round(r.get('steady',{}).get('steal_pct_mean') or -1, 3), 'decode max ms', round(c['stages']['decode']['max_ms'],1), 'mean', round(c['stages']['decode']['mean_ms'],3), 'drops', p.get('dropped'), 'limiting:', str(p.get('limiting_stage'))[:90])" /tmp/bo/$1.json; }
runq() { n=$1; shift; timeout 120 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json /tmp/bo/log_$n.txt /tmp/o2/; st $n; sleep 2; }
mon; runq R64_1 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 1000
mon; POCKIT_NVDEC_REWIND=0 runq X64_1 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 1000
mon; runq M32_2 $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 800
mon; runq M64_2 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 800
mon; runq R64_2 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 1000
mon
tar czf $OUT/call2.tgz -C /tmp/o2 .
