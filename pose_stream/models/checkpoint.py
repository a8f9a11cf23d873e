"""Loading released HigherHRNet checkpoints (and our own) with one clear error on any mismatch, and writing them."""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pose_stream.atomic import atomic_path
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)

_SHOW = 5  # how many keys of each kind an error message lists
_REFUSED_GLOBAL = re.compile(r"\bGLOBAL (\S+)")  # torch names the class or function it refused


class CheckpointError(PoseStreamError):
    """The file is not a checkpoint, or not one for this model."""


def load_tensors(path: str | Path, what: str) -> Any:
    """`torch.load` that never runs code from the file (`weights_only`: tensors, numbers, strings, lists, dicts).

    One-line CheckpointError for a file torch cannot read, and for one that holds other Python objects
    (refused: unpickling them could run anything). `what` names the file's role in the message.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's unpickler raises many types on garbage; all mean "not ours"
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused:
            raise CheckpointError(
                f"{path} holds Python objects ({refused.group(1)}), not only tensors: refused, because loading it "
                f"could run code; a {what} must be a plain state_dict") from None
        raise CheckpointError(f"{path} is not a PyTorch {what}: torch cannot read it (corrupt, truncated or "
                              f"another format)") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat state_dict (safe `weights_only` unpickling).

    Accepts a plain state_dict, or a training checkpoint holding one under "state_dict" / "model".
    A `module.` prefix (DataParallel copies) is stripped.
    """
    path = Path(path)
    obj = load_tensors(path, "checkpoint")
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a model state_dict (found {type(obj).__name__})")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def guess_config(state: Mapping[str, torch.Tensor]) -> str | None:
    """Name of the registered model config whose tensors this state_dict matches, if any."""
    from pose_stream.models.config import MODEL_CONFIGS
    from pose_stream.models.hrnet import HigherHRNet

    head = state.get("final_layers.1.weight")
    if head is None:
        return None
    w, k = int(head.shape[1]), int(head.shape[0])
    found = _shapes(state)
    for name, cfg in MODEL_CONFIGS.items():
        # Released configs share weights across input sizes; the first registered (smallest) is named.
        if cfg.width == w and cfg.num_joints == k and _shapes(HigherHRNet(cfg).state_dict()) == found:
            return name
    return None


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape, without the BatchNorm counters that older checkpoints lack."""
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load `path` into `model` strictly; raise CheckpointError listing every kind of mismatch."""
    state = read_state_dict(path)
    original = dict(state)
    expected = model.state_dict()
    # BatchNorm's num_batches_tracked counters only matter for training; older checkpoints lack them.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        model_name = getattr(getattr(model, "config", None), "name", type(model).__name__)
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong_shape)):
            if items:
                more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:_SHOW])}{more}")
        guess = guess_config(original)
        hint = f"; the file looks like model '{guess}'" if guess else "; it matches no known model config"
        raise CheckpointError(f"{Path(path).name} does not fit model '{model_name}': {'; '.join(parts)}{hint}")
    model.load_state_dict(state, strict=True)
    log.info("loaded %s (%d tensors)", path, len(state))
    return model


def save_atomic(obj: object, path: str | Path) -> None:
    """torch.save through `atomic_path`: an interrupted save leaves the old file whole."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_state_dict(state: Mapping[str, torch.Tensor], path: str | Path, half: bool = False) -> Path:
    """Save a plain state_dict (CPU, contiguous) to `path` atomically, creating its folder.

    half stores floating tensors as float16: half the file, and `load_checkpoint` puts them back into a
    float32 model (load_state_dict copies into the model's dtype).
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(state, path)
    return path
