# device call 4: run in the repo root with .devdata carried; sources common.sh (saved beside these folders)
# GPU session 13, call 4: 32 streams at batch 32 again, 20 slots a stream (the new default, 640) against 15 (480),
# interleaved, with the host's load and the GPU's clocks before each run
source .devdata/common.sh
mon() { echo "load: $(cut -d' ' -f1-3 /proc/loadavg) | $(nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,temperature.gpu,power.draw,utilization.gpu --format=csv,noheader) | mps: $(ps aux | grep -c '[n]vidia-cuda-mps')"; }
mon; run D32 $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
mon; run D32_s480 .devdata/exp/mps_s480.yaml $B --batch 32 --streams 32 --max-frames 1600
mon; run D32b $g/pets576_nvdec_mps.yaml $B --batch 32 --streams 32 --max-frames 1600
mon; run D32_s480b .devdata/exp/mps_s480.yaml $B --batch 32 --streams 32 --max-frames 1600
mon; ps aux --sort=-%cpu | head -8 | cut -c1-150
