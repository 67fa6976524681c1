# next session: lazy NV12 slots A/B + the CUDA tests (carry .devdata/data too)
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
export POCKIT_TEST_PT=$PWD/.devdata/models/person-yolov8s.pt POCKIT_DATA_DIR=$PWD/.devdata/data
g=benchmarks/gpu
for d in 2 3; do sed "s/pipeline: {decode_processes: true}/pipeline: {decode_processes: true, decode_threads: $d}/" $g/pets576_nvdec_proc.yaml > $g/_nv_d$d.yaml; done
sed "s/pipeline: {decode_processes: true}/pipeline: {decode_processes: true, decode_threads: 3, workers: 8}/" $g/pets576_nvdec_proc.yaml > $g/_nv_d3w8.yaml
B="--device cuda:0 --half --no-progress"
rm -rf /tmp/bo; mkdir -p /tmp/bo
run() { n=$1; shift; timeout 100 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-600; }
timeout 200 python3 -m pytest -q tests/test_cuda_path.py -p no:cacheprovider 2>&1 | tail -5 | tee $OUT/pytest_cuda.txt
run a_bgr_d3 $g/_nv_d3.yaml $B --batch 32 --streams 32 --max-frames 800
POCKIT_NVDEC_NV12=1 run b_nv12_d3 $g/_nv_d3.yaml $B --batch 32 --streams 32 --max-frames 800
POCKIT_NVDEC_NV12=1 run c_nv12_d3w8 $g/_nv_d3w8.yaml $B --batch 32 --streams 32 --max-frames 800
run d_cpu32 $g/pets576.yaml $B --batch 32 --streams 32 --max-frames 800
POCKIT_NVDEC_NV12=1 run e_nv12_d3w8_64 $g/_nv_d3w8.yaml $B --batch 64 --streams 64 --max-frames 600
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -10
# carry: .devdata/nvsite.tgz .devdata/whlslim .devdata/models .devdata/video/pets576.mp4 .devdata/data .devdata/goW.sh
