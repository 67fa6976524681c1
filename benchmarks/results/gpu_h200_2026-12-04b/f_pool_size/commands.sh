# pool size with few NVDEC decode processes (the census showed 94 of 162 slots on the decode side, 2 free)
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
mk() { sed "s/pipeline: {decode_processes: true}/pipeline: {decode_processes: true, $2}/" $g/pets576_nvdec_proc.yaml > $g/_$1.yaml; }
mk d3w8s648 "decode_threads: 3, workers: 8, frame_slots: 648"
mk d3w8s1296 "decode_threads: 3, workers: 8, frame_slots: 1296"
mk d4w8s648 "decode_threads: 4, workers: 8, frame_slots: 648"
mk d3w4s648 "decode_threads: 3, frame_slots: 648"
B="--device cuda:0 --half --no-progress"
rm -rf /tmp/bo; mkdir -p /tmp/bo
run() { n=$1; shift; timeout 100 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-600; }
export POCKIT_NVDEC_NV12=1
run f_nv12_d3w8s648 $g/_d3w8s648.yaml $B --batch 32 --streams 32 --max-frames 800
run g_nv12_d3w8s1296 $g/_d3w8s1296.yaml $B --batch 32 --streams 32 --max-frames 800
run h_nv12_d4w8s648 $g/_d4w8s648.yaml $B --batch 32 --streams 32 --max-frames 800
run i_nv12_d3w4s648 $g/_d3w4s648.yaml $B --batch 32 --streams 32 --max-frames 800
POCKIT_NVDEC_NV12=0 run j_bgr_d3w8s648 $g/_d3w8s648.yaml $B --batch 32 --streams 32 --max-frames 800
run k_nv12_d3w8s1296_64 $g/_d3w8s1296.yaml $B --batch 64 --streams 64 --max-frames 600
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -10
