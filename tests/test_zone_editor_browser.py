"""The zone editor in a real browser: JupyterLab + headless Debian Chromium driven by Playwright.

Starts JupyterLab on a free localhost port with a token, opens a small editor notebook, runs it,
clicks a polygon on the frame canvas, drags one vertex, presses Save and checks the YAML.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TOKEN = "pockit-test-token"
W, H = 640, 480  # TUD-Campus frame size
CLICKS = [(100, 120), (400, 110), (420, 380), (90, 400)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(path: Path, display_width: int = 640) -> None:
    code = ("from pockit.notebook import ZoneEditor\n"
            f"ed = ZoneEditor('frame.jpg', config='poc.yaml', source_id='cam', display_width={display_width})\n"
            "ed")
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": code}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


@pytest.fixture()
def lab(tmp_path, tud_campus):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium); "
                    "scripts/test.sh does it")
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(tud_campus / "img1" / "000001.jpg", work / "frame.jpg")
    (work / "poc.yaml").write_text(
        "# browser test config\nname: browser\nsources:\n"
        f"  - id: cam\n    uri: {tud_campus}\n"
        "rules:\n  - name: bag\n    type: abandoned_object\n")
    _notebook(work / "editor.ipynb")
    port = _free_port()
    env = dict(os.environ)
    for k, sub in (("JUPYTER_RUNTIME_DIR", "rt"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                   ("JUPYTERLAB_WORKSPACES_DIR", "ws"), ("IPYTHONDIR", "ipy")):
        env[k] = str(tmp_path / sub)
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}", "--ServerApp.port_retries=0",
         "--allow-root", "--LabApp.extension_manager=readonly",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 120 s:\n" + (tmp_path / "lab.log").read_text()[-3000:])
        if proc.poll() is not None:
            pytest.fail("JupyterLab exited:\n" + (tmp_path / "lab.log").read_text()[-3000:])
        yield base, work
    finally:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_click_polygon_drag_and_save(lab):
    from playwright.sync_api import sync_playwright

    base, work = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"{base}/lab/tree/editor.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
            # wait for the kernel, then Run > Run All Cells; a run requested while the kernel's websocket is
            # still (re)connecting can be dropped by the front end, so ask again until the editor shows up
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
            canvas = page.locator("canvas.pockit-zone-canvas, .pockit-zone-canvas canvas").last
            for attempt in range(6):
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    # ipycanvas >= 0.14 composes the MultiCanvas layers into one <canvas> carrying the class
                    canvas.wait_for(state="visible", timeout=30_000)
                    break
                except Exception:
                    if attempt == 5:
                        raise
            status = page.locator(".pockit-status")
            box = canvas.bounding_box()
            sx, sy = box["width"] / W, box["height"] / H
            assert abs(box["width"] - 640) < 2  # display_width=640 CSS px

            def at(x, y):
                return box["x"] + x * sx, box["y"] + y * sy

            def after(word, before):
                """Wait until the kernel has handled the event (its status line changed and names the action)."""
                page.wait_for_function(
                    "([w, b]) => { const t = document.querySelector('.pockit-status').innerText;"
                    " return t !== b && t.startsWith(w); }", arg=[word, before])
                return status.inner_text()

            last = status.inner_text()
            for i, (x, y) in enumerate(CLICKS):
                page.mouse.click(*at(x, y))
                last = after("new" if i == 0 else "add", last)
            page.mouse.click(*at(*CLICKS[0]))  # close the polygon on its first vertex
            last = after("close", last)
            # drag the third vertex to (450, 420)
            page.mouse.move(*at(*CLICKS[2]))
            page.mouse.down()
            last = after("drag", last)
            for k in range(1, 6):
                page.mouse.move(*at(CLICKS[2][0] + 6 * k, CLICKS[2][1] + 8 * k))
            page.mouse.up()
            page.locator(".pockit-save").click()
            text = after("saved", last)
        except Exception as e:  # noqa: BLE001 - any failed step: add the evidence, re-raise
            shot = work.parent / "failure.png"
            page.screenshot(path=str(shot))
            outputs = page.locator(".jp-OutputArea").all_inner_texts()
            log = (work.parent / "lab.log").read_text()[-3000:]
            raise AssertionError(f"browser step failed: {e}\nscreenshot: {shot}\ncell outputs: {outputs}\n"
                                 f"lab log tail:\n{log}") from None
        finally:
            browser.close()
    assert text == "saved 1 drawn rule(s) into poc.yaml (2 rules in the file)"
    saved = (work / "poc.yaml").read_text()
    assert saved.startswith("# browser test config\n")
    rules = yaml.safe_load(saved)["rules"]
    assert [r["name"] for r in rules] == ["bag", "zone_1"]  # the rule the editor does not show is kept
    zone = rules[1]
    assert zone["type"] == "zone_enter" and zone["normalized"] is True
    expected = [CLICKS[0], CLICKS[1], (450, 420), CLICKS[3]]
    assert len(zone["zone"]) == 4
    for (nx, ny), (ex, ey) in zip(zone["zone"], expected):
        # a click lands within one CSS pixel of the target (sub-pixel rounding of the layout)
        assert abs(nx * W - ex) <= 1.0 and abs(ny * H - ey) <= 1.0, (zone["zone"], expected)


def test_layout_at_1280_with_file_browser_and_double_click(lab):
    """A 1280 px wide window with JupyterLab's file browser open: the Save button and the parameter panel
    are inside the window, the frame is not wider than the notebook column, and a double-click closes a zone."""
    from playwright.sync_api import sync_playwright

    base, work = lab
    _notebook(work / "wide.ipynb", display_width=768)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(120_000)
            page.goto(f"{base}/lab/tree/wide.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
            browser_panel = page.locator("#filebrowser")
            if not browser_panel.is_visible():
                page.locator('.jp-SideBar [data-id="filebrowser"]').first.click()
            browser_panel.wait_for(state="visible")
            fb = browser_panel.bounding_box()
            assert fb["width"] > 150  # the file browser takes its share of the 1280 px
            canvas = page.locator("canvas.pockit-zone-canvas, .pockit-zone-canvas canvas").last
            for attempt in range(6):
                page.get_by_role("menuitem", name="Run", exact=True).click()
                page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
                try:
                    canvas.wait_for(state="visible", timeout=30_000)
                    break
                except Exception:
                    if attempt == 5:
                        raise
            save = page.locator(".pockit-save")
            save.scroll_into_view_if_needed()
            sb = save.bounding_box()
            assert sb["x"] >= fb["x"] + fb["width"] and sb["x"] + sb["width"] <= 1280, sb
            assert sb["y"] >= 0 and sb["y"] + sb["height"] <= 800, sb
            cell = page.locator(".jp-Notebook .jp-Cell").first.bounding_box()
            box = canvas.bounding_box()
            assert box["x"] + box["width"] <= min(1280, cell["x"] + cell["width"]) + 1, (box, cell)
            params = page.locator(".pockit-params")
            params.scroll_into_view_if_needed()
            pb = params.bounding_box()
            assert pb["x"] + pb["width"] <= 1280 and pb["width"] >= 300, pb  # whole, below or beside the frame
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            sx, sy = box["width"] / W, box["height"] / H
            status = page.locator(".pockit-status")

            def after(word, before):
                page.wait_for_function(
                    "([w, b]) => { const t = document.querySelector('.pockit-status').innerText;"
                    " return t !== b && t.startsWith(w); }", arg=[word, before])
                return status.inner_text()

            last = status.inner_text()
            for i, (x, y) in enumerate(CLICKS[:3]):
                page.mouse.click(box["x"] + x * sx, box["y"] + y * sy)
                last = after("new" if i == 0 else "add", last)
            page.mouse.dblclick(box["x"] + CLICKS[3][0] * sx, box["y"] + CLICKS[3][1] * sy)
            last = after("close", last)
            save.scroll_into_view_if_needed()
            save.click()
            text = after("saved", last)
        except Exception as e:  # noqa: BLE001 - any failed step: add the evidence, re-raise
            shot = work.parent / "failure-1280.png"
            page.screenshot(path=str(shot))
            raise AssertionError(f"browser step failed: {e}\nscreenshot: {shot}") from None
        finally:
            browser.close()
    assert text == "saved 1 drawn rule(s) into poc.yaml (2 rules in the file)"
    zone = yaml.safe_load((work / "poc.yaml").read_text())["rules"][1]
    assert len(zone["zone"]) == 4  # 3 clicks + the double-click's point, then closed
    for (nx, ny), (ex, ey) in zip(zone["zone"], CLICKS):
        assert abs(nx * W - ex) <= 1.5 and abs(ny * H - ey) <= 1.5, (zone["zone"], CLICKS)
