# GPU session 15, call 3: 64 cameras paced 25 fps for 440 s with the NVDEC rewind (each stream restarts its 800-frame file every 32 s): memory timeline
source .devdata/common.sh
timeout 560 python3 -c "import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))" bench $g/pets576_loop.yaml $B --batch 64 --streams 64 --realtime --max-frames 11000 --no-model-only -o $OUT/long64_rewind.json > $OUT/log_long64.txt 2>&1; echo rc=$?
python3 - <<'PY'
import json, os
d = json.load(open(os.environ["OUT"] + "/long64_rewind.json")); c = d["cases"][0]
print("steady", c.get("steady_fps"), "drops", c["pipeline"].get("dropped"), "limiting", str(c["pipeline"].get("limiting_stage"))[:120])
tl = c.get("memory_timeline") or d.get("memory_timeline") or []
print("timeline points", len(tl))
for p in tl[:: max(1, len(tl) // 12)] + tl[-1:]:
    print({k: (round(v, 1) if isinstance(v, float) else v) for k, v in p.items()})
PY
