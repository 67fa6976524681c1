# CPU decode, long runs: tracking workers 4 (auto) vs 6 vs 8 in one call (run A was tracking-bound: 83 % busy)
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
lp() { sed "s|^    uri: ../../.devdata/video/pets576.mp4|    uri: ../../.devdata/video/pets576.mp4\n    loop: true|" $1; }
lp $g/pets576.yaml > $g/_cpu_loop.yaml
for w in 6 8; do lp $g/pets576.yaml | sed "s/^name: gpu-pets576/name: gpu-pets576\npipeline: {workers: $w}/" > $g/_cpu_loop_w$w.yaml; done
grep -n "pipeline\|loop" $g/_cpu_loop_w6.yaml
B="--device cuda:0 --half --no-progress"
rm -rf /tmp/bo; mkdir -p /tmp/bo
run() { n=$1; shift; timeout 110 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-600; }
run G_cpu32_w6 $g/_cpu_loop_w6.yaml $B --batch 32 --streams 32 --max-frames 1600
run H_cpu32_w4 $g/_cpu_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
run I_cpu32_w8 $g/_cpu_loop_w8.yaml $B --batch 32 --streams 32 --max-frames 1600
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -10
