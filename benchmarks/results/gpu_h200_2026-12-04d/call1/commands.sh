# device call 1: run in the repo root with .devdata carried; sources common.sh (saved beside these folders)
# GPU session 13, call 1: tests/test_cuda_path.py (incl. the MPS end-to-end test), then 32 streams at batch 32 (defaults)
source .devdata/common.sh
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv; which nvidia-cuda-mps-control; nproc
python3 -c "import PyNvVideoCodec, pockit; from pockit.sources.nvdec import nvdec_available; print(nvdec_available())"
timeout 420 python3 -m pytest -q -rs tests/test_cuda_path.py -p no:cacheprovider 2>&1 | tail -25 | tee $OUT/pytest_cuda.txt
run A32 $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
