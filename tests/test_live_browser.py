"""The live view in a real browser: headless Chromium (Debian's, via Playwright) opens the index page and
its <img> shows the MJPEG stream, frame after frame, with the live counts under it."""
import threading
import time

import numpy as np
import pytest

from pockit.config import LiveConfig
from pockit.core import Detections, Frame
from pockit.report.pdf import find_chromium
from pockit.rules import RuleEngine
from pockit.sinks.live import LivePublisher, LiveServer

pytestmark = pytest.mark.browser

RULES = [{"name": "yard", "type": "zone_enter", "zone": [[200, 0], [320, 0], [320, 240], [200, 240]],
          "zone_name": "yard area"}]


def test_index_page_shows_the_stream_updating(tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    exe = find_chromium()
    if exe is None:
        pytest.fail("Chromium not found: `apt-get install chromium` (scripts/test.sh installs it)")
    stop = threading.Event()
    with LiveServer(["cam 1"], port=0, title="pockit live: test") as srv:
        pub = LivePublisher(LiveConfig(port=srv.port, fps=20), "cam 1", RULES, {0: "person"})
        eng = RuleEngine(RULES, "cam 1", frame_size=(320, 240))

        def publish():  # a person walking right, into the yard, forever (10 frames/s)
            i = 0
            while not stop.is_set():
                x = 20 + (i * 6) % 280
                d = Detections(xyxy=[[x, 100, x + 20, 200]], track_ids=[1], class_ids=[0], class_names={0: "person"})
                fr = Frame(np.full((240, 320, 3), 60, np.uint8), i, i / 10, "cam 1")
                eng.update(fr, d, fr.timestamp, i)
                pub.publish(fr, d, eng)
                i += 1
                time.sleep(0.1)

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1000, "height": 800})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(srv.url)
                assert page.title() == "pockit live: test"
                assert page.locator("section.src h2").all_inner_texts() == ["cam 1"]
                assert page.get_attribute("section.src img", "src") == "stream/cam%201.mjpg"
                page.wait_for_function("document.querySelector('section.src img').naturalWidth > 0", timeout=20000)
                assert page.eval_on_selector("section.src img", "i => [i.naturalWidth, i.naturalHeight]") == [320, 240]
                # two different pictures in the same <img>: draw it on a canvas now and then and compare
                grab = """i => { const c = document.createElement('canvas'); c.width = i.naturalWidth;
                                 c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);
                                 return c.toDataURL('image/png'); }"""
                first = page.eval_on_selector("section.src img", grab)
                t0 = time.monotonic()
                second = first
                while second == first and time.monotonic() - t0 < 20:
                    page.wait_for_timeout(200)
                    second = page.eval_on_selector("section.src img", grab)
                assert second != first and len(first) > 1000
                page.wait_for_function("document.querySelector('.counts').textContent.includes('zone yard area')",
                                       timeout=20000)
                text = page.inner_text(".counts")
                assert "objects now: 1" in text and "inside" in text
                assert errors == []
                page.screenshot(path=str(tmp_path / "live.png"))
                browser.close()
        finally:
            stop.set()
            t.join(5)
            pub.close()
        clients = srv.clients()
    assert clients and clients[0]["source"] == "cam 1" and clients[0]["sent"] >= 2
    assert (tmp_path / "live.png").stat().st_size > 5000


def test_index_page_with_many_sources_polls_stills(tmp_path):
    """Six sources: more MJPEG streams than a browser opens connections to one server (6), so the page polls
    each source's latest frame instead, and every picture and the counts still arrive."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    exe = find_chromium()
    if exe is None:
        pytest.fail("Chromium not found: `apt-get install chromium` (scripts/test.sh installs it)")
    ids = [f"cam{k}" for k in range(6)]
    stop = threading.Event()
    with LiveServer(ids, port=0) as srv:
        pubs = {sid: LivePublisher(LiveConfig(port=srv.port, fps=20), sid, RULES, {0: "person"}) for sid in ids}

        def publish():
            i = 0
            while not stop.is_set():
                for k, sid in enumerate(ids):
                    x = 20 + (i * 6 + 40 * k) % 280
                    d = Detections(xyxy=[[x, 100, x + 20, 200]], track_ids=[1], class_ids=[0],
                                   class_names={0: "person"})
                    pubs[sid].publish(Frame(np.full((240, 320, 3), 60, np.uint8), i, i / 10, sid), d)
                i += 1
                time.sleep(0.1)

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(srv.url)
                assert page.eval_on_selector_all("img", "is => is.map(i => i.dataset.still)") == \
                    [f"frame/{sid}.jpg" for sid in ids]
                page.wait_for_function("[...document.querySelectorAll('section.src img')]"
                                       ".every(i => i.naturalWidth === 320)", timeout=30000)
                page.wait_for_function("[...document.querySelectorAll('.counts')]"
                                       ".every(c => c.textContent.includes('objects now: 1'))", timeout=30000)
                browser.close()
        finally:
            stop.set()
            t.join(5)
            for pub in pubs.values():
                pub.close()
        assert srv.clients() == []  # no MJPEG connection was opened


def test_webrtc_page_plays_the_live_frames(tmp_path):
    """WebRTC (aiortc, host candidates only, offline): Chromium's <video> plays the source's live frames."""
    pytest.importorskip("aiortc")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    exe = find_chromium()
    if exe is None:
        pytest.fail("Chromium not found: `apt-get install chromium` (scripts/test.sh installs it)")
    stop = threading.Event()
    with LiveServer(["cam 1"], port=0, fps=10) as srv:
        pub = LivePublisher(LiveConfig(port=srv.port, fps=10), "cam 1", RULES, {0: "person"})
        board = srv.hub.sources["cam 1"].board

        def publish():
            i = 0
            while not stop.is_set():
                x = 20 + (i * 6) % 280
                d = Detections(xyxy=[[x, 100, x + 20, 200]], track_ids=[1], class_ids=[0], class_names={0: "person"})
                pub.publish(Frame(np.full((240, 320, 3), 60, np.uint8), i, i / 10, "cam 1"), d)
                i += 1
                time.sleep(0.1)

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu",
                                                                       "--autoplay-policy=no-user-gesture-required"])
                page = browser.new_page()
                page.goto(srv.url + "webrtc/cam%201.html")
                page.wait_for_function("document.getElementById('video').videoWidth > 0", timeout=60000)
                assert page.eval_on_selector("#video", "v => [v.videoWidth, v.videoHeight]") == [320, 240]
                assert board.watchers == 1  # the peer counts as a viewer: frames are drawn for it
                grab = """v => { const c = document.createElement('canvas'); c.width = v.videoWidth;
                                 c.height = v.videoHeight; c.getContext('2d').drawImage(v, 0, 0);
                                 return c.toDataURL('image/png'); }"""
                first = page.eval_on_selector("#video", grab)
                t0 = time.monotonic()
                second = first
                while second == first and time.monotonic() - t0 < 20:
                    page.wait_for_timeout(300)
                    second = page.eval_on_selector("#video", grab)
                assert second != first
                assert page.inner_text("#state") == "WebRTC: connected"
                page.goto("about:blank")  # leaving the page closes the peer connection
                t0 = time.monotonic()
                while board.watchers and time.monotonic() - t0 < 20:
                    time.sleep(0.1)
                assert board.watchers == 0  # the viewer left: no more frames drawn for it
                browser.close()
        finally:
            stop.set()
            t.join(5)
            pub.close()
