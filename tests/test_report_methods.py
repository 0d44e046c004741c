"""Every registered method's run gets a report: what it records is analysed, what it lacks is n/a."""

from __future__ import annotations

import numpy as np
import pytest

import noisyfer
from noisyfer.config import config_from_args
from noisyfer.registry import METHODS
from noisyfer.report.analyses import RunAnalyses
from noisyfer.report.markdown import render_markdown
from noisyfer.report.run_report import build_run_report


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(e.name for e in METHODS))
def test_run_report_of_every_method(tiny_overrides, method):
    result = noisyfer.train(config_from_args(None, tiny_overrides + [
        f"method={method}", "train.epochs=1", "noise.kind=symmetric", "noise.rate=0.3"]))
    analyses = RunAnalyses(result.run_dir)
    record = analyses.record
    md = render_markdown(build_run_report(result.run_dir, features=False))
    detection = md[md.index("## Noise detection"):md.index("## Relabel inconsistency")]
    if "clean_score" in record or "labels" in record:
        assert f"| {int(analyses.noisy.sum())} of 448" in detection
        if "clean_score" in record:
            auroc = analyses.detection.auroc
            assert auroc is None or 0.0 <= auroc <= 1.0
    else:
        assert f"n/a: method '{method}' records no per-sample clean_score and no relabels" in detection
    relabel = md[md.index("## Relabel inconsistency"):md.index("## Label-distribution fidelity")]
    assert ("n/a: method" in relabel) == ("labels" not in record)
    fidelity = md[md.index("## Label-distribution fidelity"):]
    if "label_dist" in record:
        value = analyses.fidelity["kl_mean"]
        assert np.isnan(value) or value >= 0.0
        assert "mean KL(true‖learned)" in fidelity
    else:
        assert f"n/a: method '{method}' records no label distributions" in fidelity
