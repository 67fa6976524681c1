# common.sh as in call1; call 6 ran the same script before the loop/wait fix (its first run ended before the kill)
# GPU session 13, call 6: a pockit run killed with SIGKILL leaves its MPS daemon; the next run stops it
source .devdata/common.sh
mk() { python3 - "$1" "$2" <<'PY'
import sys, yaml, os
n, out = int(sys.argv[1]), sys.argv[2]
v, m = os.path.abspath(".devdata/video/pets576.mp4"), os.path.abspath(".devdata/models/person-yolov8s.pt")
yaml.safe_dump({"name": "kill", "sources": [{"id": f"cam{i}", "uri": v, "max_frames": n, "loop": n > 1000, "options": {"decoder": "nvdec"}}
                for i in range(4)], "model": {"path": m, "backend": "torch", "device": "cuda:0", "half": True, "batch": 8}},
               open(out, "w"))
PY
}
mk 5000 /tmp/k1.yaml; mk 100 /tmp/k2.yaml
PK="import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))"
setsid python3 -c "$PK" run /tmp/k1.yaml --run-dir /tmp/k1 --no-progress > $OUT/k1.log 2>&1 &
BG=$!; for i in $(seq 60); do sleep 1; [[ -f /tmp/k1/run.json ]] && grep -q "cam0" /tmp/k1/run.json && break; done
sleep 5; echo "after ${i}s: $(ps aux | grep -c '[n]vidia-cuda-mps') mps procs, dirs: $(ls -d /tmp/pockit-mps-* 2>/dev/null)"
cat /tmp/pockit-mps-*/owner
PG=$(ps -o pgid= -p $BG | tr -d ' '); kill -9 -- -$PG; sleep 3
echo "killed group $PG: pockit procs left $(pgrep -f 'pockit.cli' | wc -l); mps procs $(ps aux | grep -c '[n]vidia-cuda-mps'); dirs: $(ls -d /tmp/pockit-mps-* 2>/dev/null)"
python3 -c "$PK" run /tmp/k2.yaml --run-dir /tmp/k2 --no-progress > $OUT/k2.log 2>&1; echo "second run rc=$?"
grep -i "mps" $OUT/k2.log | cut -c1-300
python3 -c "import json; d=json.load(open('/tmp/k2/run.json')); print('cuda_mps:', d['pipeline']['cuda_mps'], '| frames', sum(s['frames'] for s in d['sources'].values()))"
sleep 4; echo "after the second run: mps procs $(ps aux | grep -c '[n]vidia-cuda-mps'); dirs: $(ls -d /tmp/pockit-mps-* 2>/dev/null | wc -l)"
