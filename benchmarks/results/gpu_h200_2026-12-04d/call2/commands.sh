# device call 2: run in the repo root with .devdata carried; sources common.sh (saved beside these folders)
# GPU session 13, call 2: 32 streams at batch 32: frame slots 640 / 768 against the default 480
source .devdata/common.sh
run B32_s640 .devdata/exp/mps_s640.yaml $B --batch 32 --streams 32 --max-frames 1600
run B32_s768 .devdata/exp/mps_s768.yaml $B --batch 32 --streams 32 --max-frames 1600
run B32 $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
run B32_s768b .devdata/exp/mps_s768.yaml $B --batch 32 --streams 32 --max-frames 1600
run B32_s640b .devdata/exp/mps_s640.yaml $B --batch 32 --streams 32 --max-frames 1600
