# longer runs (the file looped to 2000 frames a stream) so steady_fps and the census see a long steady part
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
lp() { sed "s|^    uri: ../../.devdata/video/pets576.mp4|    uri: ../../.devdata/video/pets576.mp4\n    loop: true|" $1; }
lp $g/pets576.yaml > $g/_cpu_loop.yaml
lp $g/pets576_nvdec_proc.yaml | sed "s/pipeline: {decode_processes: true}/pipeline: {decode_processes: true, decode_threads: 3, workers: 8, frame_slots: 648}/" > $g/_nv_loop.yaml
grep -n "loop\|pipeline" $g/_cpu_loop.yaml $g/_nv_loop.yaml
B="--device cuda:0 --half --no-progress"
rm -rf /tmp/bo; mkdir -p /tmp/bo
run() { n=$1; shift; timeout 150 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-600; }
run A_cpu32_loop $g/_cpu_loop.yaml $B --batch 32 --streams 32 --max-frames 2000
POCKIT_NVDEC_NV12=1 run B_nv12_32_loop $g/_nv_loop.yaml $B --batch 32 --streams 32 --max-frames 2000
POCKIT_NVDEC_NV12=1 run C_nv12_64_loop $g/_nv_loop.yaml $B --batch 64 --streams 64 --max-frames 1600
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -10
runsi() { n=$1; shift; timeout 150 python3 -c "import sys; sys.setswitchinterval(0.0005); from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-600; }
POCKIT_NVDEC_NV12=1 runsi F_nv12_32_loop_si $g/_nv_loop.yaml $B --batch 32 --streams 32 --max-frames 2000
