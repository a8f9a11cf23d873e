"""Grow a trained HigherHRNet into a wider one that starts out computing exactly the same outputs.

Used to give the demo model more capacity without throwing its training away. Every tensor of the narrow
network is copied into the leading channels of the wide one. Weights that would let a new channel reach an old
one are set to zero, so the old channels (and the heatmaps and tags read from them) are unchanged; the new
channels keep their fresh initialisation and only start to matter as training moves those zeros. Training
mode gives the same outputs too, because BatchNorm normalises each channel on its own.

Shapes: W (narrow width) and W' (wide width); K joints. The one place where channels are not simply
"the first W of W'" is the deconvolution input, the concatenation [features (W), 1/4 predictions (2K)].
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import nn

from pose_stream.models.config import ModelConfig
from pose_stream.models.hrnet import HigherHRNet

_DECONV_WEIGHT = "deconv_layers.0.0.0.weight"


def check_widenable(narrow: ModelConfig, wide: ModelConfig) -> None:
    """Raise ValueError unless `wide` differs from `narrow` only by a width at least as large."""
    same_depth = dataclasses.replace(wide, name=narrow.name, width=narrow.width, released=narrow.released)
    if same_depth != narrow:
        raise ValueError(f"cannot widen {narrow.name} into {wide.name}: they differ in more than their width "
                         "(blocks, modules, stem or joints)")
    if wide.width < narrow.width:
        raise ValueError(f"cannot widen {narrow.name} (width {narrow.width}) into the narrower {wide.name} "
                         f"(width {wide.width})")


def widen_state_dict(state: Mapping[str, torch.Tensor], narrow: ModelConfig, wide: ModelConfig,
                     seed: int = 0) -> dict[str, torch.Tensor]:
    """The state_dict of a `wide` HigherHRNet that computes what `state` (a `narrow` one) computes.

    `seed` fixes the fresh initialisation of the new channels.
    """
    check_widenable(narrow, wide)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = HigherHRNet(wide)
    transposed = {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.ConvTranspose2d)}
    grown: dict[str, torch.Tensor] = {}
    for key, fresh in model.state_dict().items():
        if key not in state:
            raise ValueError(f"the {narrow.name} weights lack {key}")
        old = state[key].to(fresh.dtype)
        if old.shape == fresh.shape:
            grown[key] = old.clone()
            continue
        if old.dim() != fresh.dim() or any(o > n for o, n in zip(old.shape, fresh.shape)):
            raise ValueError(f"{key}: {tuple(old.shape)} does not fit into {tuple(fresh.shape)}")
        new = fresh.clone()
        if old.dim() == 4:
            # Conv2d weights are [out, in, kh, kw]; ConvTranspose2d weights are [in, out, kh, kw].
            out_dim, in_dim = (1, 0) if key in transposed else (0, 1)
            n_out = old.shape[out_dim]
            inputs = _input_channels(key, old.shape[in_dim], narrow, wide)
            new_view = new.movedim((out_dim, in_dim), (0, 1))
            old_view = old.movedim((out_dim, in_dim), (0, 1))
            new_view[:n_out] = 0  # new inputs must not reach old outputs
            new_view[:n_out, inputs] = old_view
        else:
            new[tuple(slice(0, n) for n in old.shape)] = old
        grown[key] = new
    return grown


def _input_channels(key: str, n_in: int, narrow: ModelConfig, wide: ModelConfig) -> torch.Tensor:
    """Where the narrow network's input channels of `key` sit among the wide network's."""
    if key == _DECONV_WEIGHT:
        predictions = torch.arange(2 * narrow.num_joints)
        return torch.cat((torch.arange(narrow.width), wide.width + predictions))
    return torch.arange(n_in)
