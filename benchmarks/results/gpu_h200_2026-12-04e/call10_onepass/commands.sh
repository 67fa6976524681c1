# GPU session 14, call 10: one pass of the file (--max-frames 800: no loop reopen) at 32 and 64 streams
source .devdata/common.sh
st() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['cases'][0]; r=c['resources']['cpu']; p=c['pipeline']; print(' e2e/model', round(c['e2e_over_model_only'],3), 'steady', round(c['steady_fps']), 'model', round(c['model_only_ips']), 'steal', round(r.get('steady',{}).get('steal_pct_mean') or -1, 3), 'decode max ms', round(c['stages']['decode']['max_ms'],1), 'mean', round(c['stages']['decode']['mean_ms'],3), 'limiting:', str(p.get('limiting_stage'))[:90])" /tmp/bo/$1.json; }
runq() { n=$1; shift; timeout 100 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/; st $n; }
runq M32 $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 800
runq M64 $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 800
