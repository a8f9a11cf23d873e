"""Average the weights of several fine-tuned copies of one network ("model soup", Wortsman et al. 2022).

Runs fine-tuned from the same starting weights stay in one basin of the loss, so the element-wise mean of
their weights is a network too, and often a better one than any of them. Used for the demo model, whose runs
all start from earlier runs' weights. Networks trained from different starting points do not average into
anything useful; nothing here can tell, so only average runs that share an ancestor.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def normalised_shares(factors: Sequence[float] | None, count: int) -> list[float]:
    """Each of `count` state_dicts' share of the mean: `factors` (positive; default all equal) scaled to sum to 1."""
    if factors is None:
        factors = [1.0] * count
    if len(factors) != count:
        raise ValueError(f"{len(factors)} factors for {count} state_dicts")
    if any(not f > 0 for f in factors):
        raise ValueError(f"factors must be positive, got {list(factors)}")
    total = float(sum(factors))
    return [f / total for f in factors]


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]],
                        factors: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """The weighted element-wise mean of state_dicts that share keys and shapes.

    `factors` (one per state, positive; default all equal) are normalised to sum to 1. Floating tensors are
    averaged in float32 and returned as float32 whatever their stored dtype (the shipped demo weights are
    float16). Integer tensors (BatchNorm's num_batches_tracked) are counters, not weights: they take the
    largest value.
    """
    if not states:
        raise ValueError("nothing to average: no state_dicts given")
    shares = normalised_shares(factors, len(states))

    keys = list(states[0])
    for i, state in enumerate(states[1:], start=2):
        if set(state) != set(keys):
            differ = sorted(set(state) ^ set(keys))
            raise ValueError(f"state_dict {i} has other tensors than the first: {', '.join(differ[:5])}"
                             + (f" (+{len(differ) - 5} more)" if len(differ) > 5 else ""))
        for key in keys:
            if state[key].shape != states[0][key].shape:
                raise ValueError(f"state_dict {i}: {key} is {tuple(state[key].shape)}, "
                                 f"the first has {tuple(states[0][key].shape)}")

    averaged: dict[str, torch.Tensor] = {}
    for key in keys:
        tensors = [state[key] for state in states]
        if tensors[0].is_floating_point():
            mean = torch.zeros(tensors[0].shape, dtype=torch.float32)
            for share, tensor in zip(shares, tensors):
                mean += share * tensor.float()
            averaged[key] = mean
        else:
            averaged[key] = torch.stack(tensors).amax(dim=0)
    return averaged
