# shellcheck shell=bash
# Sourced at the start of a device call (see make_devdata.sh): installs the carried wheels, sets the paths, and
# defines `pk` (the pockit command line) and `show` (the figures to read first in bench JSONs).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
export POCKIT_TEST_PT=$PWD/.devdata/models/person-yolov8s.pt POCKIT_DATA_DIR=$PWD/.devdata/data
pk() { python3 -c 'import sys; from pockit.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
# shellcheck disable=SC2034  # used by the call's own commands
g=benchmarks/gpu
show() {
python3 - "$@" <<'PY'
import json, sys
for f in sys.argv[1:]:
    try:
        d = json.load(open(f))
    except Exception as e:
        print(f, "unreadable", e); continue
    for c in d["cases"]:
        p = c.get("pipeline") or {}
        print(f"== {f}: streams {c['streams']} fps {c['fps']:.0f} steady {c.get('steady_fps')} "
              f"model-only {c.get('model_only_ips')} ratio {c.get('e2e_over_model_only')} wall {c['wall_s']:.1f}")
        print("  limiting:", p.get("limiting_stage"))
        print("  waits:", p.get("thread_waits_s"), "mean batch", p.get("mean_batch"))
        for k, v in (p.get("stages") or {}).items():
            print("  ", k, v)
        print("  cpu:", c["resources"]["cpu"])
        print("  errors:", c.get("errors"))
PY
}
