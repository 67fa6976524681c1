"""The report in a real browser: headless Chromium (Debian's) via Playwright renders every plot
without JavaScript errors, the cover, timeline and alarm table show, alarm clips play, and the PDF
prints without stranded headings, plot toolbars or wrapped badges and numbers."""
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
                                               "plot-hota-campus", "plot-perf-stages", "plot-pr-campus",
                                               "plot-timeline"]
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
        # images decoded (embedded reference frame, example snapshots, a thumbnail per alarm in the table)
        n_alarms = len(json.loads(report.with_suffix(".metrics.json").read_text())["alarms"])
        widths = page.eval_on_selector_all("img", "is => is.map(i => i.naturalWidth)")
        assert len(widths) == 1 + 7 + n_alarms and min(widths) > 0
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


PLAY_ALL = """async () => Promise.all([...document.querySelectorAll('video.clip')].map(async v => {
    try { await v.play(); } catch (e) {}
    await new Promise(r => { if (v.readyState >= 2 || v.error) return r();
                             v.addEventListener('loadeddata', r); v.addEventListener('error', r); setTimeout(r, 15000); });
    if (!v.error) await new Promise(r => setTimeout(r, 250));
    const t = v.currentTime; v.pause();
    return [v.readyState, v.error && v.error.code, v.videoWidth, Math.round(v.duration * 25), t];
}))"""


def _video_states(chromium, html_path):
    """Play every alarm clip of the report: [readyState, error code, width, frames, currentTime] each."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(html_path.as_uri())
        states = page.evaluate(PLAY_ALL)
        browser.close()
    return states


def test_alarm_clips_play_in_chromium(chromium, tmp_path, tud_campus):
    # H.264 clips (what ClipRecorder writes when PyAV has libx264) play: decoded frames, no error, time moves
    run, n = _clip_run(tmp_path, tud_campus, "h264")
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "h264.html")
    states = _video_states(chromium, out)
    assert len(states) == n  # every alarm of the table has its clip
    assert all(rs >= 2 and err is None and w == 320 and fr == 11 and t > 0 for rs, err, w, fr, t in states), states
    # the former mp4v clips do not: MEDIA_ERR_SRC_NOT_SUPPORTED (4), the bug this guards against
    run, _ = _clip_run(tmp_path, tud_campus, "mp4v")
    out = build_report(run, gt=tud_campus / "gt/gt.txt", out=tmp_path / "mp4v.html")
    states = _video_states(chromium, out)
    assert states and all(err == 4 for _, err, _, _, _ in states), states


POC = {"customer": "ACME Logistics", "site": "Shanghai DC", "start": "2026-11-02", "end": "2026-11-20",
       "scope": "Walkway intrusion and line crossing",
       "people": [{"name": "Li Wei", "role": "Security manager", "organisation": "ACME"},
                  {"name": "Ann Smith", "role": "Presales engineer", "organisation": "Vendor Co"}]}


def _signable_report(tmp_path, tud, lang="en"):
    """The fixture run with H.264 clips on every alarm and a cover block, reported with ground truth."""
    import yaml

    run, n = _clip_run(tmp_path, tud, "h264")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["poc"] = POC
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = build_report(run, gt=tud / "gt/gt.txt", out=tmp_path / f"signable-{lang}.html", lang=lang)
    return out, n


def test_cover_timeline_and_alarm_table(chromium, tmp_path, tud_campus):
    out, n = _signable_report(tmp_path, tud_campus)
    d = json.loads(out.with_suffix(".metrics.json").read_text())
    missed = int(d["metrics"]["events.all.fn"])
    n_fp = int(d["metrics"]["events.all.fp"])
    assert missed == 1 and n_fp == 1
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        page.wait_for_function("document.querySelector('#plot-timeline svg.main-svg')", timeout=30000)
        # cover block: the config's poc section, a signature line per person (visible, empty boxes to sign in)
        assert page.inner_text("#cover-customer") == "ACME Logistics"
        assert page.inner_text("#cover-dates") == "2026-11-02 – 2026-11-20"
        rows = page.eval_on_selector_all("tr.signatory", "rs => rs.map(r => [r.cells[0].innerText, "
                                         "r.cells[3].innerText, Math.round(r.cells[3].getBoundingClientRect().height)])")
        assert [r[0] for r in rows] == ["Li Wei", "Ann Smith"] and all(r[1] == "" and r[2] >= 30 for r in rows), rows
        # timeline: one point per alarm plus the missed ground-truth event, one legend entry per rule + missed
        n_points = page.locator("#plot-timeline .scatterlayer .point").count()
        assert n_points == n + missed
        legend = page.eval_on_selector_all("#plot-timeline .legendtext", "ts => ts.map(t => t.textContent)")
        assert legend == ["center_line", "walkway_zone", "Missed events"]
        # the table: every alarm with its thumbnail (decoded), clip and verdict
        assert page.locator("tr.alarm").count() == n
        thumbs = page.eval_on_selector_all("tr.alarm img.thumb", "is => is.map(i => i.naturalWidth)")
        assert len(thumbs) == n and min(thumbs) > 0
        assert page.locator("tr.alarm video.clip").count() == n
        assert page.locator("tr.alarm .v-fp").count() == n_fp and page.locator("tr.alarm .v-tp").count() == n - n_fp
        ids = page.eval_on_selector_all("tr.alarm", "rs => rs.map(r => r.dataset.event)")
        assert sorted(ids) == sorted(a["id"] for a in d["alarms"])
        assert errors == []
        browser.close()


# the lines an element's text takes, less the ones its own <br> start: 1 when nothing wraps
LINES = """els => els.map(el => { const r = document.createRange(); r.selectNodeContents(el);
    const tops = new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
    return [el.className, el.textContent.trim(), tops.size - el.querySelectorAll('br').length]; })"""


def _pdf_lines(pdf):
    import unicodedata

    from pypdf import PdfReader

    pages = []
    for pg in PdfReader(str(pdf)).pages:
        text = unicodedata.normalize("NFKC", pg.extract_text() or "")
        pages.append([" ".join(ln.split()) for ln in text.splitlines() if ln.strip()])
    return pages


def _site_report(tmp_path, tud, lang):
    """Two boxes' runs (no clips) in one site report, ground truth for the first box's camera."""
    from test_report import _box_run

    a = _box_run(tmp_path, tud, "run-a", box_key="gate-box")
    b = _box_run(tmp_path, tud, "run-b", box_key="yard-box")
    out = build_report([a, b], gt=[f"gate-box/campus={tud / 'gt/gt.txt'}"], out=tmp_path / "site.html", lang=lang)
    return out, 0


def _collect_report(tmp_path, tud, lang):
    """A `pockit collect` folder of two boxes' alarms (the time each box raised it shown beside each)."""
    from test_report import _collected_folder

    folder, _ = _collected_folder(tmp_path, tud, ["gate-box", "yard-box"])
    return build_report(folder, out=tmp_path / "collected.html", lang=lang), 0


@pytest.mark.parametrize("lang,kind", [("en", "run"), ("zh", "run"), ("en", "site"), ("zh", "collect")])
def test_print_layout(chromium, tmp_path, tud_campus, lang, kind):
    import unicodedata

    pytest.importorskip("pypdf")  # in the [test] extra
    make = {"run": _signable_report, "site": _site_report, "collect": _collect_report}[kind]
    out, n = make(tmp_path, tud_campus, lang)
    # timeline + 6 plots; site: timeline, gate-box 6 with ground truth, yard-box stages; collect: timeline
    n_plots = {"run": 7, "site": 1 + 6 + 1, "collect": 1}[kind]
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 718, "height": 1000})  # A4 less 2 x 10 mm margins at 96 dpi
        page.goto(out.as_uri())
        page.wait_for_function("[...document.querySelectorAll('.plotly-graph-div')]"
                               ".every(d => d.querySelector('.modebar-container'))", timeout=30000)
        page.emulate_media(media="print")
        # headings stay with what follows them; the cover is a page of its own
        breaks = page.eval_on_selector_all("h1, h2, h3", "hs => hs.map(h => getComputedStyle(h).breakAfter)")
        assert len(breaks) > (5 if kind == "collect" else 20) and set(breaks) == {"avoid"}
        assert page.eval_on_selector("#cover", "c => getComputedStyle(c).breakAfter") == "page"
        # no plot toolbar and no video player in print
        bars = page.eval_on_selector_all(".modebar-container", "ms => ms.map(m => getComputedStyle(m).display)")
        assert len(bars) == n_plots and set(bars) == {"none"}
        if kind == "site":  # each box starts a page
            assert page.eval_on_selector_all(".box-title", "hs => hs.map(h => getComputedStyle(h).breakBefore)") \
                == ["page", "page"]
        vids = page.eval_on_selector_all("video", "vs => vs.map(v => getComputedStyle(v).display)")
        assert len(vids) == n and all(v == "none" for v in vids)
        # badges (pass/fail, verdicts) and numbers on one line; no table wider than the page
        lines = page.eval_on_selector_all(".pass, .fail, .manual, .no_data, .verdict, td.num", LINES)
        assert len(lines) > (40 if kind == "collect" else 100)
        assert [x for x in lines if x[2] != 1] == []
        wide = page.eval_on_selector_all("table", "ts => ts.filter(t => t.getBoundingClientRect().width > "
                                                  "document.body.clientWidth + 1).map(t => t.className)")
        assert wide == []
        headings = page.eval_on_selector_all("h1, h2, h3", "hs => hs.map(h => h.textContent)")
        browser.close()
    pdf = html_to_pdf(out, tmp_path / f"{lang}.pdf")
    pages = _pdf_lines(pdf)
    heads = {" ".join(unicodedata.normalize("NFKC", h).split()) for h in headings}
    assert len(pages) >= 3
    # no page ends with a heading whose content went to the next page
    stranded = [(i + 1, lines[-1]) for i, lines in enumerate(pages) if lines and lines[-1] in heads]
    assert stranded == []
    # the cover (with its signature table) is page 1 alone; the executive summary starts page 2
    assert pages[0][0].startswith(unicodedata.normalize("NFKC", headings[0])) and pages[1][0] in heads


@pytest.mark.slow
def test_real_run_clips_play_in_the_report(chromium, tmp_path, tud_campus):
    """`pockit run` with alarm clips on (the person detector on 30 TUD-Campus frames), then the report: every
    alarm of the run is in the table with its clip, and each clip (H.264 written by the pipeline) plays."""
    import yaml
    from click.testing import CliRunner

    from pockit.cli import cli
    from pockit.core import read_events

    cfg = {"name": "real-clips", "sources": [{"id": "campus", "uri": str(tud_campus / "img1"), "fps": 25,
                                              "max_frames": 30}],
           "model": {"path": "person-yolov8s", "conf": 0.25},
           "rules": [{"name": "walkway_zone", "type": "zone_enter",
                      "zone": [[0.05, 0.6], [0.5, 0.6], [0.5, 0.98], [0.05, 0.98]]}],
           "outputs": {"dir": str(tmp_path / "runs"), "run_name": "real", "snapshots": True, "clip_seconds": 1.0},
           "poc": POC}
    (tmp_path / "poc.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(cli, ["run", str(tmp_path / "poc.yaml")])
    assert res.exit_code == 0, res.output
    run = tmp_path / "runs" / "real"
    events = read_events(run / "events.jsonl")
    assert events and all((run / e.clip).is_file() for e in events)
    out = build_report(run, out=tmp_path / "real.html")
    states = _video_states(chromium, out)
    assert len(states) == len(events)
    assert all(rs >= 2 and err is None and w > 0 and t > 0 for rs, err, w, _, t in states), states
