"""Recompute BatchNorm running statistics from data (needed after averaging weights, as in SWA).

Averaging checkpoints also averages their BatchNorm running means and variances, but those are not the
statistics the averaged convolutions produce. `recalibrate_batchnorm` runs the network forward in training
mode (each layer normalised by its batch, as during training) and sets every BatchNorm's running mean and
variance to the population statistics of its inputs over all the batches: the mean of all values per channel
and their unbiased variance, not a momentum-weighted average of per-batch figures ("precise BN").

Shapes: a batch is (N, C_in, H, W); a BatchNorm2d input is (N, C, H, W) and its statistics are per C.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

log = logging.getLogger(__name__)


class _ChannelMoments:
    """Per-channel count, sum and sum of squares of every value a BatchNorm saw (float64)."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: torch.Tensor | None = None
        self.sum_sq: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        dims = [d for d in range(x.dim()) if d != 1]
        x = x.detach().double()
        total, total_sq = x.sum(dim=dims), (x * x).sum(dim=dims)
        self.count += x.numel() // x.shape[1]
        self.sum = total if self.sum is None else self.sum + total
        self.sum_sq = total_sq if self.sum_sq is None else self.sum_sq + total_sq

    def mean_and_unbiased_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.sum / self.count
        # Var = E[x^2] - E[x]^2 loses precision only when the mean dwarfs the spread; float64 keeps ~1e-10 here.
        var = (self.sum_sq / self.count - mean * mean).clamp_min(0.0) * (self.count / max(self.count - 1, 1))
        return mean, var


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Set every BatchNorm's running mean and variance to its inputs' statistics over `batches`.

    Args:
        model: any module; its BatchNorm layers (1d/2d/3d) are updated in place. Its training flag is restored.
        batches: network inputs, each (N, ...) on the model's device.
    Returns:
        the number of batches used.
    Raises:
        ValueError: if `batches` is empty or the model has no BatchNorm layer.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not layers:
        raise ValueError("the model has no BatchNorm layer with running statistics")
    moments = {layer: _ChannelMoments() for layer in layers}
    hooks = [layer.register_forward_pre_hook(lambda module, args: moments[module].add(args[0])) for layer in layers]
    was_training = model.training
    # Training-mode forwards also bump these counters; they are restored so that only the statistics change.
    counters = [layer.num_batches_tracked.clone() for layer in layers]
    used = 0
    try:
        model.train()
        with torch.no_grad():
            for batch in batches:
                model(batch)
                used += 1
    finally:
        for hook in hooks:
            hook.remove()
        for layer, counter in zip(layers, counters):
            layer.num_batches_tracked.copy_(counter)
        model.train(was_training)
    if used == 0:
        raise ValueError("no batches given to recalibrate BatchNorm with")
    for layer, stats in moments.items():
        mean, var = stats.mean_and_unbiased_var()
        layer.running_mean.copy_(mean.to(layer.running_mean.dtype))
        layer.running_var.copy_(var.to(layer.running_var.dtype))
    log.info("recalibrated %d BatchNorm layers over %d batches", len(layers), used)
    return used
