"""pockit.run(..., live=...) serves the live view while the run goes on (the notebook/Python entry point)."""
import json
import threading
import time
import urllib.request

import pockit
from pockit.config import LiveConfig


def test_run_with_live_serves_counts_while_running(tud_campus, tmp_path):
    cfg = {"name": "lv", "sources": [{"id": "campus", "uri": str(tud_campus), "max_frames": 30}],
           "model": {"path": "person-yolov8s"},
           "rules": [{"name": "right", "type": "zone_enter", "zone": [[320, 0], [640, 0], [640, 480], [320, 480]]}],
           "pipeline": {"workers": 0}}
    live = LiveConfig(port=0)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("s", pockit.run(cfg, run_dir=tmp_path / "r", progress=False,
                                                                           live=live)))
    t.start()
    seen = None
    deadline = time.monotonic() + 120
    while t.is_alive() and time.monotonic() < deadline:
        if live.port:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{live.port}/counts.json", timeout=5) as r:
                    got = json.loads(r.read())
                if "campus" in json.dumps(got):
                    seen = got
                    break
            except OSError:
                pass
        time.sleep(0.2)
    t.join(180)
    assert seen is not None, "the live view never answered while the run was going on"
    assert result["s"].frames == 30 and not result["s"].errors
