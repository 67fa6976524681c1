# GPU session 15, call 1: NVDEC rewind on the GPU (micro check, tests), then looped 1,600-frame 32 streams rewind on/off interleaved
source .devdata/common.sh
mon() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) | steal: $(awk '/^cpu /{print $9}' /proc/stat)"; }
python3 .devdata/rewind_check.py .devdata/video/pets576.mp4 2>&1 | grep -v Warning | tee $OUT/rewind_check.txt
timeout 200 python3 -m pytest -q -rs tests/test_cuda_path.py tests/test_sources.py -p no:cacheprovider 2>&1 | tail -6 | tee $OUT/pytest_cuda.txt
st() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; p=c['pipeline']; print(' e2e/model', round(c['e2e_over_model_only'],3), 'steady', round(c['steady_fps']), 'model', round(c['model_only_ips']), 'steal', round(r.get('steady',{}).get('steal_pct_mean') or -1, 3), 'decode max ms', round(c['stages']['decode']['max_ms'],1), 'mean', round(c['stages']['decode']['mean_ms'],3), 'drops', p.get('dropped'), 'limiting:', str(p.get('limiting_stage'))[:90])" /tmp/bo/$1.json; }
runq() { n=$1; shift; timeout 120 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json /tmp/bo/log_$n.txt $OUT/; st $n; grep -iE "rewind|opening the file again|ended early" /tmp/bo/log_$n.txt | sort | uniq -c | head -3; sleep 2; }
for i in 1 2; do
  mon; runq R32_$i $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
  mon; POCKIT_NVDEC_REWIND=0 runq X32_$i $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
done
mon
