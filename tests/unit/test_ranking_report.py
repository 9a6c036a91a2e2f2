"""report.html: self-contained (every PNG figure embedded), rendered by headless Chromium."""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from xasmpi.report.html import markdown_to_html


def test_markdown_subset_to_html(tmp_path):
    png = tmp_path / "fig.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(png)
    plt.close(fig)
    md = ("# Title\n\n> **SIMULATED DATA.** labelled\n\n- item `code` with [link](table.csv)\n- second\n\n"
          "| a | b |\n|---|---|\n| 1 | <2> |\n\nA paragraph\ncontinued.\n\n![fig](fig.png)\n\n![gone](missing.png)\n")
    h = markdown_to_html(md, base=tmp_path)
    assert "<h1>Title</h1>" in h and "<blockquote><b>SIMULATED DATA.</b> labelled</blockquote>" in h
    assert '<li>item <code>code</code> with <a href="table.csv">link</a></li>' in h
    assert "<th>a</th>" in h and "<td>&lt;2&gt;</td>" in h and "<p>A paragraph continued.</p>" in h
    src = re.search(r'<img alt="fig" src="data:image/png;base64,([^"]+)"', h).group(1)
    assert base64.b64decode(src) == png.read_bytes()  # the figure itself, embedded
    assert "missing.png not found" in h


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (scripts/bootstrap.sh --test installs "
                                                 "Debian's chromium when run as root)")
def test_report_html_self_contained_in_headless_chromium(tmp_path):
    from tests.unit.test_report import make_results
    from xasmpi.report import write_report

    res_file = make_results(tmp_path / "results.h5")
    res = write_report(res_file, tmp_path / "rep", formats=("png",))
    page = tmp_path / "rep" / "report.html"
    assert page in res.written
    text = page.read_text()
    n_png = sum(1 for _, files in res.figures for p in files if p.suffix == ".png")
    assert n_png >= 5 and text.count("data:image/png;base64,") == n_png
    assert not re.search(r'<img[^>]+src="(?!data:)', text)  # no figure loaded from a file
    moved = tmp_path / "mailed" / "report.html"  # opened elsewhere, alone: still complete
    moved.parent.mkdir()
    shutil.copy(page, moved)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", moved.as_uri()], capture_output=True, text=True,
                         timeout=120, env=env)
    assert dom.returncode == 0, dom.stderr[-2000:]
    imgs = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', dom.stdout)
    assert len(imgs) == n_png and "SIMULATED DATA" in dom.stdout
    shot = tmp_path / "shot.png"
    p = subprocess.run([_chromium(), *flags, f"--screenshot={shot}", "--window-size=1200,2000", moved.as_uri()],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and shot.stat().st_size > 20000, p.stderr[-2000:]
