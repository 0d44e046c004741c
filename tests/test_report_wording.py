"""Issue 17, the report: progress lines, figures at page width, no truth wording on data without ground
truth, papers named by title."""

from __future__ import annotations

import re

from noisyfer.cli.main import main
from noisyfer.data.format import FERData, save_dataset
from noisyfer.papers import PAPERS, SHORT, name_papers
from noisyfer.report.html import _e

from .conftest import make_tiny_split


def test_papers_are_named_by_title_in_text_and_html():
    text = name_papers("as in paper 000 (Table 2) and Paper 001; paper 000 again")
    assert "paper 00" not in text.lower()
    assert text.startswith(f"as in {PAPERS['000']}") and text.endswith(f"{SHORT['000']} again")
    assert "Enhancing FER under data uncertainty based on embedding proximity" in text
    assert "Split and merge consistency regularization" in _e("paper 001, Fig. 4")


def test_report_of_data_without_ground_truth_says_why_and_never_speaks_of_truth(tmp_path, capsys):
    tiny = make_tiny_split(224, size=32, seed=1)
    test = make_tiny_split(70, size=32, seed=2)
    plain = lambda d: FERData(images=d.images, labels=d.labels, class_names=d.class_names)  # noqa: E731
    save_dataset({"train": plain(tiny), "test": plain(test)}, tmp_path / "plain")
    assert main(["train", "data=noisyfer", f"data.root={tmp_path / 'plain'}", "model.backbone=resnet_tiny",
                 "train.batch_size=32", "train.epochs=1", "--out", str(tmp_path / "runs")]) == 0
    run = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["report", run, "--no-features"]) == 0
    captured = capsys.readouterr()
    phases = re.findall(r"^report: (\d)/(\d) (.+?) done in [0-9.]+ s$", captured.err, re.M)
    assert [p[0] for p in phases] == ["1", "2", "3", "4", "5"] and {p[1] for p in phases} == {"5"}
    markdown = (tmp_path / "runs" / run.rsplit("/", 1)[1] / "report.md").read_text()
    assert not re.search(r"\btrue (label|class)", markdown)
    assert "which training labels are wrong is unknown for this data" in markdown
    assert "paper 00" not in markdown.lower()
    from PIL import Image

    curves = Image.open(tmp_path / "runs" / run.rsplit("/", 1)[1] / "report_figures" / "accuracy_curves.png")
    assert curves.width >= 800  # 6.4 in at 150 dpi: wide enough to fill most of the page
