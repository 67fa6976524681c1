"""HTML -> PDF with headless Chromium (Debian: ``apt-get install chromium fonts-noto-cjk``).

Chromium runs the report's plotly JavaScript before printing, so the plots appear in the PDF
(WeasyPrint does not run JavaScript and would print empty plot boxes).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class PdfError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary: env POCKIT_CHROMIUM, else the first on PATH."""
    env = os.environ.get("POCKIT_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    return None


def html_to_pdf(html: str | Path, pdf: str | Path, timeout: float = 120.0) -> Path:
    """Print ``html`` to ``pdf`` (A4, backgrounds on) and return the PDF path."""
    exe = find_chromium()
    if exe is None:
        raise PdfError("PDF needs Chromium: install it (Debian/Ubuntu: `sudo apt-get install chromium "
                       "fonts-noto-cjk`) or set POCKIT_CHROMIUM to a Chrome/Chromium binary; the HTML report "
                       "is complete without it")
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    if pdf.exists():
        pdf.unlink()
    with tempfile.TemporaryDirectory(prefix="pockit-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               "--run-all-compositor-stages-before-draw", "--virtual-time-budget=20000",
               f"--print-to-pdf={pdf}", html.as_uri()]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not finish printing {html} within {timeout:.0f} s") from None
    if not pdf.exists() or pdf.stat().st_size == 0:
        tail = (res.stderr or res.stdout or "").strip().splitlines()[-5:]
        raise PdfError(f"Chromium ({exe}) exited {res.returncode} without writing {pdf}: " + " | ".join(tail))
    return pdf
