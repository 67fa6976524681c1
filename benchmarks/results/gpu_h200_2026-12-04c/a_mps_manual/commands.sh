# GPU session 12, call 1: NVDEC x3 + NV12 at 64 streams without / with CUDA MPS; CPU decode 32 with cpu_s
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
B="--device cuda:0 --half --no-progress"
mkdir -p /tmp/bo
nproc; nvidia-smi --query-gpu=name,driver_version,compute_mode --format=csv,noheader
which nvidia-cuda-mps-control nvidia-cuda-mps-server; ls /usr/bin | grep -i nvidia | head -20
run() { n=$1; shift; timeout 150 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-900; }
POCKIT_NVDEC_NV12=1 run B_nv12_64 $g/pets576_nvdec3_loop.yaml $B --batch 64 --streams 64 --max-frames 1200
if which nvidia-cuda-mps-control; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog; mkdir -p /tmp/mps /tmp/mpslog
  nvidia-cuda-mps-control -d && echo "MPS on"; sleep 1
  POCKIT_NVDEC_NV12=1 run C_nv12_64_mps $g/pets576_nvdec3_loop.yaml $B --batch 64 --streams 64 --max-frames 1200
  echo get_server_list | nvidia-cuda-mps-control
  echo quit | nvidia-cuda-mps-control; sleep 1; tail -5 /tmp/mpslog/control.log; cp /tmp/mpslog/*.log $OUT/ 2>/dev/null
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
fi
run A_cpu32 $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -10
cp /tmp/bo/log_*.txt $OUT/
# ---- call 2
# GPU session 12, call 2: all under CUDA MPS: 32 streams (the 32-stream target), 64 streams with 4 NVDEC processes,
# with 972 frame slots, and the 64-stream baseline again (noise)
set -o pipefail
mkdir -p /tmp/site && tar xzf .devdata/nvsite.tgz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devdata/whlslim/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
g=benchmarks/gpu
B="--device cuda:0 --half --no-progress"
mkdir -p /tmp/bo
run() { n=$1; shift; timeout 150 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench "$@" -o /tmp/bo/$n.json > /tmp/bo/log_$n.txt 2>&1; echo "$n rc=$?"; cp /tmp/bo/$n.json $OUT/ 2>/dev/null; python3 benchmarks/gpu/summarize.py /tmp/bo 2>&1 | grep "| $n " | cut -c1-900; }
sed "s/decode_threads: 3/decode_threads: 4/" $g/pets576_nvdec3_loop.yaml > $g/_nv4_loop.yaml
sed "s/frame_slots: 648/frame_slots: 972/" $g/pets576_nvdec3_loop.yaml > $g/_nv3s972_loop.yaml
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mpslog; mkdir -p /tmp/mps /tmp/mpslog
nvidia-cuda-mps-control -d && echo "MPS on"; sleep 1
export POCKIT_NVDEC_NV12=1
run M1_nv12_32_mps $g/pets576_nvdec3_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
run M2_nv12_64_d4_mps $g/_nv4_loop.yaml $B --batch 64 --streams 64 --max-frames 1200
run M3_nv12_64_s972_mps $g/_nv3s972_loop.yaml $B --batch 64 --streams 64 --max-frames 1200
run M4_nv12_64_mps $g/pets576_nvdec3_loop.yaml $B --batch 64 --streams 64 --max-frames 1200
run M5_nv12_32_d4_mps $g/_nv4_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
echo quit | nvidia-cuda-mps-control; sleep 1; tail -3 /tmp/mpslog/control.log
grep -hiE "error|Traceback" /tmp/bo/log_*.txt | sort | uniq -c | head -10
cp /tmp/bo/log_M*.txt $OUT/
