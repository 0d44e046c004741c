"""Issue 13's catalogue in the suite: every case gives its exit status and one line naming the path or key,
without a traceback, without losing a file, without accepting something wrong (see reliability_catalogue)."""

from __future__ import annotations

import pytest

from tests.reliability_catalogue import build_shared, run_case
from tests.reliability_cases_input import CASES


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return build_shared(tmp_path_factory.mktemp("catalogue"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case, shared, tmp_path):
    outcome = run_case(case, shared, tmp_path)
    assert outcome.verdict == "clear", f"{outcome.verdict}: {outcome.detail}\n{outcome.stderr}"


def test_every_item_of_the_issue_has_cases():
    items = {case.issue for case in CASES}
    assert {str(i) for i in range(1, 16)} | {"smaller"} <= items
    assert len({case.id for case in CASES}) == len(CASES)
