# GPU session 14, call 2: preprocessing GPU time old vs new (micro), then 32 streams with the new code against the
# old (the three changed files swapped back in a copy of the tree), interleaved, steal beside each run
source .devdata/common.sh
mon() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) | steal: $(awk '/^cpu /{print $9}' /proc/stat) | $(nvidia-smi --query-gpu=clocks.sm,temperature.gpu,utilization.gpu --format=csv,noheader)"; }
python3 .devdata/pre_bench.py 32 2>&1 | grep -v Warning | tee $OUT/pre_bench32.txt
python3 .devdata/pre_bench.py 64 2>&1 | grep -v Warning | tail -5 | tee $OUT/pre_bench64.txt
rm -rf /tmp/oldtree && mkdir -p /tmp/oldtree && cp -r pockit benchmarks /tmp/oldtree/ && ln -s $PWD/.devdata /tmp/oldtree/.devdata
cp .devdata/old/torch_backend.py /tmp/oldtree/pockit/inference/; cp .devdata/old/streamwork.py .devdata/old/workers.py /tmp/oldtree/pockit/pipeline/
st() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; print(' e2e/model', round(c['e2e_over_model_only'],3), 'steal', r.get('steady',{}).get('steal_pct_mean'), 'waits', c['pipeline'].get('waits',{}).get('thread_waits_s'), 'cpu_s', c['pipeline'].get('cpu_s'))" /tmp/bo/$1.json; }
runold() { n=$1; shift; (cd /tmp/oldtree && PYTHONPATH=/tmp/site:/tmp/oldtree timeout 170 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1); echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-300; sleep 2; }
for i in 1 2; do
  mon; run N32_$i $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600 > /dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| N32_$i " | cut -c1-300; st N32_$i
  mon; runold O32_$i $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600; st O32_$i
done
mon; run N64_1 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 1200 > /dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| N64_1 " | cut -c1-300; st N64_1
mon
