# device call 5: run in the repo root with .devdata carried; sources common.sh (saved beside these folders)
# GPU session 13, call 5: 64 streams at batch 64 with 20 slots a stream (the new default, 1213 slots under the 1.5 GB
# cap), twice; 32 streams at batch 64
source .devdata/common.sh
run E64 $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 64 --max-frames 1200
run E32_b64 $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 32 --max-frames 1600
run E64b $g/pets576_nvdec_mps.yaml $B --batch 64 --streams 64 --max-frames 1200
