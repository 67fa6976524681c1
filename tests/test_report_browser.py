"""The report in a real browser: headless Chromium (Debian's) via Playwright renders every plot
without JavaScript errors, and the PDF prints."""
import json

import pytest

from pockit.report import build_report
from pockit.report.pdf import find_chromium, html_to_pdf

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium():
    exe = find_chromium()
    if exe is None:
        pytest.fail("Chromium not found: `apt-get install chromium` (scripts/test.sh installs it)")
    return exe


@pytest.fixture
def report(tmp_path, tud_campus):
    from test_report import make_fixture_run

    run = tmp_path / "run"
    make_fixture_run(run, tud_campus)
    return build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "report.html")


def test_renders_every_plot(report, chromium, tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors, requests = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto(report.as_uri())
        page.wait_for_function("[...document.querySelectorAll('.plotly-graph-div')]"
                               ".every(d => d.querySelector('svg.main-svg'))", timeout=30000)
        plots = page.eval_on_selector_all(
            ".plotly-graph-div", "ds => ds.map(d => [d.id, d.querySelectorAll('svg.main-svg').length,"
                                 " d.querySelectorAll('.trace, .hm, .heatmaplayer image').length])")
        assert sorted(p[0] for p in plots) == ["plot-cm-campus", "plot-ev-counts", "plot-ev-latency",
                                               "plot-hota-campus", "plot-perf-stages", "plot-pr-campus"]
        assert all(n_svg >= 1 for _, n_svg, _ in plots)
        assert all(n_traces >= 1 for _, _, n_traces in plots), plots
        # every plot fits its box: side-by-side plots used to be drawn at the full page width (the script ran
        # before the second flex child existed) and were cut off on the right, legend and axis included
        fit = page.eval_on_selector_all(
            ".plotly-graph-div", "ds => ds.map(d => [d.id, Math.round(d.querySelector('svg.main-svg')"
                                 ".getBoundingClientRect().width), Math.round(d.parentElement.parentElement"
                                 ".getBoundingClientRect().width)])")
        assert all(svg <= box + 1 for _, svg, box in fit), fit
        assert {k: svg for k, svg, _ in fit}["plot-ev-counts"] < 600, fit
        # images decoded (embedded reference frame and alarm snapshots)
        widths = page.eval_on_selector_all("img", "is => is.map(i => i.naturalWidth)")
        assert len(widths) == 8 and min(widths) > 0
        acc = json.loads(report.with_suffix(".metrics.json").read_text())["acceptance"]
        for status in ("pass", "fail", "no_data", "manual"):
            assert page.locator(f"#acceptance .{status}").count() == sum(a["status"] == status for a in acc)
        assert errors == [] and requests == []
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        page.emulate_media(media="print")
        page.pdf(path=str(tmp_path / "pw.pdf"), format="A4", print_background=True)
        browser.close()
    assert (tmp_path / "report.png").stat().st_size > 50_000
    assert (tmp_path / "pw.pdf").read_bytes()[:5] == b"%PDF-"


def test_pdf_with_chromium_cli(report, chromium, tmp_path):
    pdf = html_to_pdf(report, tmp_path / "report.pdf")
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-"
    pages = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    assert pages >= 4, pages  # eight sections with plots and snapshots do not fit on fewer A4 pages


def test_pdf_without_chromium_says_how(report, tmp_path, monkeypatch):
    from pockit.report.pdf import PdfError

    monkeypatch.setenv("POCKIT_CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(PdfError, match="apt-get install chromium"):
        html_to_pdf(report, tmp_path / "x.pdf")


def _clip_run(tmp_path, tud, codec):
    """The fixture run with a clip (frames around the event, written with ``codec``) on every alarm."""
    import cv2
    from test_report import make_fixture_run

    from pockit.core import read_events, write_events
    from pockit.sinks.draw import VideoFile

    run = tmp_path / f"run-{codec}"
    make_fixture_run(run, tud)
    events = read_events(run / "events.jsonl")
    (run / "clips").mkdir()
    for e in events:
        e.clip = f"clips/{e.id}.mp4"
        vf = VideoFile(run / e.clip, 25, (320, 240), codec)
        for f in range(e.frame - 5, e.frame + 6):  # 11 frames, the first/last image repeated near the ends
            img = cv2.imread(str(tud / f"img1/{min(max(f, 1), 71):06d}.jpg"))
            vf.write(cv2.resize(img, (320, 240)))
        vf.close()
    write_events(events, run / "events.jsonl")
    return run, len(events)


def _video_states(chromium, html_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(html_path.as_uri())
        page.wait_for_function("[...document.querySelectorAll('video.clip')].every(v => v.readyState >= 2 || v.error)",
                               timeout=30000)
        states = page.eval_on_selector_all("video.clip", "vs => vs.map(v => [v.readyState, v.error && v.error.code,"
                                                         " v.videoWidth, Math.round(v.duration * 25)])")
        played = page.evaluate("async () => { const v = document.querySelector('video.clip'); if (!v || v.error)"
                               " return -1; await v.play(); await new Promise(r => setTimeout(r, 300));"
                               " return v.currentTime; }")
        browser.close()
    return states, played


def test_alarm_clips_play_in_chromium(chromium, tmp_path, tud_campus):
    # H.264 clips (what ClipRecorder writes when PyAV has libx264) play: decoded frames, no error
    run, _ = _clip_run(tmp_path, tud_campus, "h264")
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "h264.html")
    states, played = _video_states(chromium, out)
    assert len(states) == 3 + 1 + 3  # true-alarm and false-alarm examples shown per rule (as the snapshots)
    assert all(rs >= 2 and err is None and w == 320 and n == 11 for rs, err, w, n in states), states
    assert played > 0
    # the former mp4v clips do not: MEDIA_ERR_SRC_NOT_SUPPORTED (4), the bug this guards against
    run, _ = _clip_run(tmp_path, tud_campus, "mp4v")
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "mp4v.html")
    states, _ = _video_states(chromium, out)
    assert states and all(err == 4 for _, err, _, _ in states), states
