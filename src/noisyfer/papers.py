"""The papers noisyfer implements, by title: text written for users names them so, never by the file
numbers of the project's paper folder ("paper 000")."""

from __future__ import annotations

import re

#: File number -> short citation (authors, title, venue).
PAPERS = {
    "000": "Chen, Kok & Chan, \u201cEnhancing FER under data uncertainty based on embedding proximity\u201d (IEEE Access 2024)",
    "001": "Kim et al., \u201cSplit and merge consistency regularization (SMEC)\u201d (IEEE Access 2023)",
    "002": "Yan et al., \u201cMitigating label-noise for FER in the wild (LRN)\u201d (ICME 2022)",
    "003": "Gera et al., \u201cClass adaptive threshold and negative class guided noisy annotation robust FER\u201d (NCCTFER, 2023)",
    "004": "Le et al., \u201cUncertainty-aware label distribution learning for FER (LDLVA)\u201d (WACV 2023)",
}

#: File number -> short name for figure titles (the full title is in :data:`PAPERS`).
SHORT = {"000": "Chen et al. 2024 (embedding proximity)", "001": "Kim et al. 2023 (SMEC)", "002": "Yan et al. 2022 (LRN)",
         "003": "Gera et al. 2023 (NCCTFER)", "004": "Le et al. 2023 (LDLVA)"}

_NUMBERED = re.compile(r"\b[Pp]aper (00[0-4])\b")


def name_papers(text: str, *, short: bool = False) -> str:
    """``text`` with every "paper 000" replaced by the paper's citation with its title (its short name
    after the first mention, or everywhere with ``short``)."""
    seen: set[str] = set()

    def cite(match: re.Match) -> str:
        number = match.group(1)
        if short or number in seen:
            return SHORT[number]
        seen.add(number)
        return PAPERS[number]

    return _NUMBERED.sub(cite, text)
