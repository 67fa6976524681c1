# GPU session 14, call 1: where the inference process's time and interpreter lock go at 32 streams (defaults),
# with the hypervisor's steal time beside each run
source .devdata/common.sh
python3 -m pip install -q --no-index --no-deps --target /tmp/pyspy .devdata/pyspy/*.whl 2>&1 | tail -1
SPY=/tmp/pyspy/bin/py-spy; ls -la $SPY
mon() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) | steal: $(awk '/^cpu /{print $9}' /proc/stat) | $(nvidia-smi --query-gpu=clocks.sm,temperature.gpu,utilization.gpu --format=csv,noheader)"; }
lscpu | grep -E "Model name|Thread|Core|Socket|NUMA node|Hypervisor" 
# a profiled run: 5,000 frames a stream; py-spy on the main process in the steady part
prof() { n=$1; shift
  python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1 &
  P=$!; sleep 40
  timeout 30 $SPY record --gil -r 97 -d 8 -p $P -f raw -o $OUT/${n}_gil.txt --nonblocking > $OUT/${n}_spy1.log 2>&1
  timeout 30 $SPY record --idle -r 97 -d 8 -p $P -f raw -o $OUT/${n}_wall.txt --nonblocking > $OUT/${n}_spy2.log 2>&1
  timeout 30 $SPY record -r 47 -d 6 -p $P --subprocesses -f raw -o $OUT/${n}_all.txt --nonblocking > $OUT/${n}_spy3.log 2>&1
  wait $P; echo "$n rc=$?"; cp /tmp/bo/$n.json /tmp/bo/log_$n.txt $OUT/; tail -2 /tmp/bo/log_$n.txt
  python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-600
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; print(' e2e/model', c['e2e_over_model_only'], 'steal', r.get('steal_pct_mean'), r.get('steady'))" /tmp/bo/$n.json
}
mon; prof P32 $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 5000
mon; run Q32 $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; print(' steal', r.get('steal_pct_mean'), r.get('steady'))" /tmp/bo/Q32.json
mon; run Q32b $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; print(' steal', r.get('steal_pct_mean'), r.get('steady'))" /tmp/bo/Q32b.json
mon
