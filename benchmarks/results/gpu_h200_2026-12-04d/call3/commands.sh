# device call 3: run in the repo root with .devdata carried; sources common.sh (saved beside these folders)
# GPU session 13, call 3: NVDEC_PROC_SLOTS_PER_STREAM 20 (was 15); the default decoder (auto, pets576_loop.yaml: no
# decoder option) under pockit's MPS, and decoder: nvdec
source .devdata/common.sh
run C32_auto $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
run C32 $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
run C64_auto $g/pets576_loop.yaml $B --batch 64 --streams 64 --max-frames 1200
run C32_autob $g/pets576_loop.yaml $B --batch 32 --streams 32 --max-frames 1600
run C32b $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
run C64 $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 64 --max-frames 1200
