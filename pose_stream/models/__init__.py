"""HigherHRNet models: configurations, the network, checkpoints (reading safely, writing atomically), the demo model.
May import: torch and pose_stream.{joints, atomic, errors}; not engine/, decoding/, pipeline/ or train/.
"""
from __future__ import annotations

from pose_stream.models.checkpoint import CheckpointError, load_checkpoint, read_state_dict
from pose_stream.models.config import MODEL_CONFIGS, ModelConfig, get_config
from pose_stream.models.hrnet import HigherHRNet


def build_model(name: str | ModelConfig) -> HigherHRNet:
    """A HigherHRNet for a registered config name (e.g. "w32_512"), in eval mode, randomly initialised."""
    config = name if isinstance(name, ModelConfig) else get_config(name)
    return HigherHRNet(config).eval()


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MODEL_CONFIGS", "CheckpointError", "HigherHRNet", "ModelConfig", "build_model", "count_parameters",
    "get_config", "load_checkpoint", "read_state_dict",
]
