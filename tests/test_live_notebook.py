"""The live view in a notebook: a widget with the latest annotated frame and counts per source, updated while
a run goes (pockit.notebook.display.live_view / run_live)."""
import time

import cv2
import numpy as np
import pytest

from pockit.config import LiveConfig, parse_config
from pockit.core import Detections, Frame
from pockit.notebook import display as nbd
from pockit.sinks.live import LivePublisher, LiveServer

pytest.importorskip("ipywidgets")

RULES = [{"name": "yard", "type": "zone_enter", "zone": [[200, 0], [320, 0], [320, 240], [200, 240]],
          "zone_name": "yard area"}]


def wait_for(cond, timeout=10.0, what="condition"):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_live_view_widget_follows_the_stream_and_stops_watching():
    with LiveServer(["cam"], port=0) as srv:
        pub = LivePublisher(LiveConfig(port=srv.port, fps=1000), "cam", RULES, {0: "person"})
        view = nbd.live_view(srv, width=320, interval=0.02)
        board = srv.hub.sources["cam"].board
        wait_for(lambda: board.watchers == 1, what="the widget to watch")
        image = view.children[1].children[0].children[1]
        text = view.children[1].children[0].children[2]
        shown = []
        for i, x in enumerate([40, 230, 240]):
            d = Detections(xyxy=[[x, 100, x + 20, 200]], track_ids=[1], class_ids=[0], class_names={0: "person"})
            assert pub.publish(Frame(np.full((240, 320, 3), 60, np.uint8), i, i / 10, "cam"), d) is True
            wait_for(lambda i=i: view.frames_shown["cam"] == i + 1, what=f"frame {i} in the widget")
            shown.append(bytes(image.value))
            time.sleep(0.25)  # counts go out a few times a second
        pics = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in shown]
        assert all(p.shape == (240, 320, 3) for p in pics) and len(set(shown)) == 3
        wait_for(lambda: "zone yard area: 1 inside" in text.value, what="the counts text")
        assert "frame 2" in text.value and "objects now: 1" in text.value
        view.stop()
        assert board.watchers == 0 and not view.thread.is_alive()
        assert view.children[0].value == "the run has ended: last frames shown"
        pub.close()


def test_run_live_shows_the_run_in_the_notebook(shared_data, tmp_path, monkeypatch):
    from test_pipeline_sharded import GtDetector

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    seq = shared_data / "mot" / "TUD-Campus"
    cfg = parse_config({"name": "nb", "sources": [{"id": "campus", "uri": str(seq), "max_frames": 30}],
                        "model": {"path": "unused.onnx"}, "tracker": {"minimum_consecutive_frames": 1},
                        "rules": [{"name": "right", "type": "zone_enter",
                                   "zone": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}],
                        "outputs": {"dir": str(tmp_path), "snapshots": False}})
    summary = nbd.run_live(cfg, width=320, run_dir=tmp_path / "run", detector=GtDetector([seq]), progress=False,
                           workers=0)
    assert summary.frames == 30 and len(shown) == 1
    view = shown[0]
    assert not view.thread.is_alive() and view.frames_shown["campus"] >= 1
    img = cv2.imdecode(np.frombuffer(bytes(view.children[1].children[0].children[1].value), np.uint8),
                       cv2.IMREAD_COLOR)
    assert img.shape == (480, 640, 3)
    assert cfg.outputs.live is not None and cfg.outputs.live.port > 0  # a free port was taken
