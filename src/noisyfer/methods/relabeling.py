"""Relabeling of stored training labels (SCN's rule) and the bookkeeping of relabel inconsistency.

A component shared by the relabeling methods (``scn``, ``scn_c`` and ``rul``/``rul_c`` with
``relabel=true``), not a registered method.

The rule is Eq. 1 of paper 000 (SCN's relabeling module): a sample whose largest predicted
probability exceeds the probability of its current label by more than ``margin`` takes the argmax
class::

    y' = argmax_k p_k   if  p_max - p_y > margin,   else  y

The new label lives in per-sample state and is used the next time the sample is drawn.

Paper 000 (Fig. 3) observes that relabeled samples flip back and forth between two classes
("relabel inconsistency"). :class:`RelabelTracker` keeps, per sample, the number of relabels, the
number of *returns* (relabels to a label the sample had already held: its given label or an earlier
relabel) and the set of labels it has held, so a method can log both counts every epoch without
reading per-sample data back during the epoch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .sample_state import SampleState

__all__ = ["RelabelTracker", "low_importance_mask", "relabel_decision"]

RELABEL_SCOPES = ("all", "low")


def relabel_decision(probs: Tensor, labels: Tensor, *, margin: float,
                     eligible: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Eq. 1 of paper 000 / SCN: relabel to the argmax where ``p_max - p_label > margin``.

    Parameters
    ----------
    probs
        (N, C) predicted probabilities (softmax of the training forward).
    labels
        (N,) current labels.
    margin
        SCN's ``margin_2`` (``delta`` in paper 000), >= 0; the comparison is strict.
    eligible
        Optional (N,) bool: only these samples may be relabeled (SCN paper: the low-importance group).

    Returns
    -------
    new_labels, changed
        (N,) int64 labels after the rule and (N,) bool marking the samples whose label changed.
    """
    p_max, y_max = probs.max(1)
    p_label = probs.gather(1, labels.view(-1, 1)).squeeze(1)
    changed = (p_max - p_label) > margin
    if eligible is not None:
        changed = changed & eligible
    return torch.where(changed, y_max, labels), changed


def low_importance_mask(weights: Tensor, *, beta: float) -> Tensor:
    """(N,) bool marking SCN's low-importance group: all but the ``high_group_size`` largest weights.

    Ties are broken by position (stable sort), so the split is deterministic.
    """
    n = weights.shape[0]
    order = torch.argsort(weights.detach().float(), descending=True, stable=True)
    low = torch.zeros(n, dtype=torch.bool, device=weights.device)
    low[order[high_group_size(n, beta):]] = True
    return low


def high_group_size(n: int, beta: float) -> int:
    """``int(n * beta)`` as in SCN's code, kept within 1..n-1 so both groups are non-empty."""
    return min(max(int(n * beta), 1), n - 1)


class RelabelTracker:
    """Current labels of a relabeling method plus per-sample relabel / return counts.

    Registers in ``state``: ``labels`` (int64, current), ``given_labels`` (int64, as given to the
    run), ``relabel_count`` and ``return_count`` (int64) and ``held_labels`` ((N, C) bool, the
    labels each sample has held). All changes go through :meth:`SampleState.update`.
    """

    def __init__(self, state: SampleState, *, num_classes: int):
        self.state = state
        n = state.num_samples
        state.register("labels", torch.zeros(n, dtype=torch.long))
        state.register("relabel_count", torch.zeros(n, dtype=torch.long))
        state.register("return_count", torch.zeros(n, dtype=torch.long))
        state.register("held_labels", torch.zeros(n, num_classes, dtype=torch.bool))
        state.register("given_labels", torch.zeros(n, dtype=torch.long))

    def reset(self, labels: Tensor) -> None:
        """Start from the given training labels (called from the method's ``setup``)."""
        index = torch.arange(self.state.num_samples, device=self.state["labels"].device)
        labels = labels.to(index.device, torch.long)
        held = torch.zeros_like(self.state["held_labels"])
        held[index, labels] = True
        self.state.update("labels", index, labels)
        self.state.update("given_labels", index, labels)
        self.state.update("relabel_count", index, torch.zeros_like(labels))
        self.state.update("return_count", index, torch.zeros_like(labels))
        self.state.update("held_labels", index, held)

    def labels(self, indices: Tensor) -> Tensor:
        return self.state["labels"][indices]

    @torch.no_grad()
    def apply(self, indices: Tensor, new_labels: Tensor, changed: Tensor) -> Tensor:
        """Store ``new_labels`` of samples ``indices``; returns (N,) bool: relabels that are returns."""
        held = self.state["held_labels"][indices]
        returned = changed & held.gather(1, new_labels.view(-1, 1)).squeeze(1)
        held = held.scatter(1, new_labels.view(-1, 1), True)
        self.state.update("labels", indices, new_labels)
        self.state.update("held_labels", indices, held)
        self.state.update("relabel_count", indices, self.state["relabel_count"][indices] + changed.long())
        self.state.update("return_count", indices, self.state["return_count"][indices] + returned.long())
        return returned

    def totals(self) -> Tensor:
        """Device tensor ``[relabels, returns]`` summed over samples (no host sync)."""
        return torch.stack([self.state["relabel_count"].sum(), self.state["return_count"].sum()])

    def epoch_logs(self, at_epoch_start: Tensor) -> dict[str, float]:
        """Scalars for ``on_epoch_end`` (reads a few numbers back once per epoch).

        ``relabels_epoch``: relabels during the epoch (``at_epoch_start`` = :meth:`totals` taken in
        ``on_epoch_start``); ``relabel_returns_total``: relabels so far that went back to a label the
        sample had held before (back-and-forth flips); ``relabeled_samples`` /
        ``back_and_forth_samples``: samples relabeled at least once / that returned at least once;
        ``labels_changed``: samples whose current label differs from their given label.
        """
        now = self.totals()
        relabels = now[0] - at_epoch_start.to(now.device)[0]
        changed = (self.state["labels"] != self.state["given_labels"]).sum()
        values = torch.stack([relabels, now[1], (self.state["relabel_count"] > 0).sum(),
                              (self.state["return_count"] > 0).sum(), changed]).tolist()
        names = ("relabels_epoch", "relabel_returns_total", "relabeled_samples", "back_and_forth_samples",
                 "labels_changed")
        return {name: float(value) for name, value in zip(names, values)}
