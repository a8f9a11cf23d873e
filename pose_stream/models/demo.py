"""The bundled demo model: a small HigherHRNet trained on the synthetic world only.

`pose-stream --source demo` plays `demo_frames()` through this model:
    PoseEstimator(model=DEMO_MODEL_NAME, weights=demo_model_path(), input_size=DEMO_INPUT_SIZE)
"""
from __future__ import annotations

import json
from pathlib import Path

from pose_stream.errors import PoseStreamError

DEMO_MODEL_NAME = "small_w32"
DEMO_INPUT_SIZE = 256
# Grouping's max_reach for this model (a fraction of the network input's longer side): its tags alone let a
# joint join a person across the frame; chosen on the demo clip, checked on other scenes (docs/demo-model.md).
DEMO_MAX_REACH = 0.15
DEMO_WEIGHTS_FILE = f"demo_{DEMO_MODEL_NAME}.pth"
DEMO_NOTICE = (
    "the demo model was trained on synthetic figures only and will not find real people; for real video "
    "use a released HigherHRNet checkpoint, e.g. pose-stream --source webcam --model w32_512 "
    "--weights pose_higher_hrnet_w32_512.pth"
)


def _data_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "data"


def demo_model_path() -> Path:
    """Path of the bundled demo weights (a plain state_dict of DEMO_MODEL_NAME)."""
    path = _data_dir() / DEMO_WEIGHTS_FILE
    if not path.is_file():
        raise PoseStreamError(f"the bundled demo model is missing ({path}); reinstall pose-stream")
    return path


def is_demo_weights(weights: str | Path | None) -> bool:
    """Whether weights is the bundled demo model's file."""
    if weights is None:
        return False
    try:
        return Path(weights).resolve() == demo_model_path().resolve()
    except PoseStreamError:
        return False


def demo_model_info() -> dict:
    """What the bundled model is: config name, input size, training command, date, final loss, ..."""
    path = demo_model_path().with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PoseStreamError(f"cannot read the demo model's description {path} ({exc})") from None


def load_demo_model():
    """The demo HigherHRNet with its weights, in eval mode (CPU)."""
    from pose_stream.models import build_model, load_checkpoint

    return load_checkpoint(build_model(DEMO_MODEL_NAME), demo_model_path())
