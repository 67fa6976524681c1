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
        assert dict((k, svg) for k, svg, _ in fit)["plot-ev-counts"] < 600, fit
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
