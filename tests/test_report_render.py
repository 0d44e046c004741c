"""Reports: a sweep's HTML rendered by headless Chromium (not blank, tables present), run reports'
sections and their n/a for what a method lacks, and the Markdown summary."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from noisyfer.cli.main import main
from noisyfer.report import write_report
from noisyfer.sweep import SweepSpec, run_sweep

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when absent (skipped, with the reason, if that fails)."""
    found = _find_chromium()
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium"]
    attempts = [install, ["apt-get", "update"], install]
    reason = "apt-get not found"
    for cmd in attempts:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"{' '.join(cmd)}: {exc}"
            continue
        if proc.returncode == 0 and cmd[1] == "install" and _find_chromium():
            return _find_chromium()
        if proc.returncode != 0:
            reason = f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
    print(f"chromium could not be installed: {reason}", file=sys.stderr)
    pytest.skip(f"chromium could not be installed: {reason}")


def _chromium(binary: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180)


@pytest.fixture(scope="module")
def tiny_sweep(tiny_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "sweep"
    spec = SweepSpec.from_args([
        "data=noisyfer", f"data.root={tiny_data_dir}", "model.backbone=resnet_tiny", "train.batch_size=32",
        "train.epochs=2", "train.lr=0.003", "noise.kind=symmetric", "noise.rate=0.3", "method=ce,scn",
        "scn:method.relabel_epoch=1", "scn:method.margin2=0.05"])
    counts = run_sweep(spec, out, echo=lambda _: None)
    assert counts["finished"] == 2
    return out


def test_sweep_report_renders_in_headless_chromium(tiny_sweep, chromium, tmp_path):
    files = write_report([tiny_sweep], tsne_samples=140)
    html = files.html.read_text()
    assert files.kind == "sweep" and files.html == tiny_sweep / "report.html"
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # self-contained: nothing fetched
    figures = sorted((tiny_sweep / "report_figures").glob("*.png"))  # the Markdown summary's copies
    assert len(figures) >= 8 and html.count('src="data:image/png;base64,') == len(figures)
    shot = tmp_path / "shot.png"
    result = _chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", files.html.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (1600, 1280)
    assert pixels.std() > 20  # a blank page is one flat colour
    assert (pixels < 128).mean() > 0.03 and (pixels > 200).mean() > 0.3  # dark header/text on a light page
    dom = _chromium(chromium, tmp_path, "--dump-dom", files.html.as_uri()).stdout
    assert dom.count("<table") >= 10
    assert "test accuracy (%), best epoch" in dom and "Cluster compactness of test features" in dom
    table = dom[dom.index("test accuracy (%), best epoch"):]
    table = table[:table.index("</table>")]
    assert re.search(r"<td>ce</td>", table) and re.search(r"<td>scn</td>", table) and "<th>30%</th>" in table


def test_sweep_report_markdown_and_result_files(tiny_sweep):
    md = (tiny_sweep / "report.md").read_text() if (tiny_sweep / "report.md").is_file() else \
        write_report([tiny_sweep], features=False).markdown.read_text()
    assert "## Accuracy tables (paper layout)" in md and "| method | 30%" in md
    for name in ("results.csv", "aggregate.csv", "tables.md", "tables/accuracy_last.tex"):
        assert (tiny_sweep / name).is_file()
    # ce records no clean_score: its detection cells are n/a, never 0
    detection = md[md.index("## Noise detection, relabeling"):]
    ce_row = next(line for line in detection.splitlines() if line.startswith("| ce "))
    cells = [c.strip() for c in ce_row.strip("|").split("|")]
    assert cells[1] == "n/a" and cells[6] == "n/a"  # AUROC, back-and-forth


def test_run_reports_show_what_each_method_has(tiny_sweep, capsys):
    scn_run, ce_run = tiny_sweep / "runs" / "method-scn", tiny_sweep / "runs" / "method-ce"
    assert main(["report", str(scn_run), "--tsne-samples", "140", "--top", "8"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(scn_run / "report.html")
    md = (scn_run / "report.md").read_text()
    for heading in ("## Results", "## Noise detection", "## Relabel inconsistency",
                    "## Features and class activation maps", "## Suspected mislabels"):
        assert heading in md
    assert "AUROC of the score" in md and "back-and-forth" in md
    figures = {p.name for p in (scn_run / "report_figures").iterdir()}
    assert {"relabel_history.png", "distances.png", "cams.png", "gradcam_relabeled.png", "tsne.png"} <= figures
    assert main(["report", str(ce_run), "--no-features"]) == 0
    md = (ce_run / "report.md").read_text()
    assert "n/a: method 'ce' records no per-sample clean_score and no relabels" in md
    assert "n/a: method 'ce' does not relabel" in md and "## Features" not in md


def test_report_errors(tmp_path, tiny_sweep):
    assert main(["report", str(tmp_path)]) == 2
    assert main(["report", str(tiny_sweep / "runs" / "method-ce"), str(tiny_sweep / "runs" / "method-scn")]) == 2


def test_sweep_report_groups_seeds_into_one_row(tiny_overrides, tmp_path):
    import json

    import yaml

    from noisyfer.report.markdown import render_markdown
    from noisyfer.report.sweep_report import build_sweep_report
    from noisyfer.sweep import collect_sweep

    spec = SweepSpec.from_args([*tiny_overrides, "method=ce,scn", "noise.kind=symmetric", "noise.rate=0.2",
                                "seed=0,1"])
    for point, config in spec.resolved(runs_dir=tmp_path / "runs"):
        run = tmp_path / "runs" / point.name
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        acc = 0.5 + 0.1 * point.index  # ce: 0.5, 0.6; scn: 0.7, 0.8
        (run / "summary.json").write_text(json.dumps({
            "status": "finished", "epochs_done": 2, "accuracy_best": acc, "accuracy_last": acc,
            "per_class_accuracy_last": [acc] * 7, "class_names": ["neutral", "happiness", "sadness", "surprise",
                                                                  "fear", "disgust", "anger"]}))
    (tmp_path / "sweep.yaml").write_text(spec.to_yaml())
    md = render_markdown(build_sweep_report(collect_sweep(tmp_path), title="t", source="s", features=False))
    rows = [line for line in md.splitlines() if line.startswith(("| ce ", "| scn "))]
    # one row per method in every table (six accuracy tables, per-class, analyses), never one per seed
    assert len(rows) == 2 * 8, rows
    assert "| ce     | 55.00 ± 7.07 |" in md and "| scn    | **75.00 ± 7.07** |" in md
    per_class = next(line for line in rows if line.startswith("| ce ") and line.count("|") == 10)
    assert "55.00 ± 7.07" in per_class
