"""Files a user is handed can be hostile: no loader in the package runs code from a file it reads.

Each loader gets a file whose unpickling would run a payload (create a marker file); it must refuse it with a
one-line error and the marker must not exist afterwards. Random bytes get a short "not a PyTorch ..." line, not
torch's long `weights_only` text.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pose_stream.models import CheckpointError, build_model, load_checkpoint
from pose_stream.models.checkpoint import read_state_dict


class Payload:
    """Unpickling this runs `Path(marker).touch()`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _hostile(path: Path, marker: Path, wrap) -> Path:
    torch.save(wrap(Payload(marker)), path)
    return path


def _load_checkpoint(path: Path) -> None:
    load_checkpoint(build_model("tiny_w8"), path)


def _read_state_dict(path: Path) -> None:
    read_state_dict(path)


def _resume_training(path: Path) -> None:
    """`train --resume`: the checkpoint is fine, the state file beside it is the hostile one."""
    from pose_stream.train.trainer import TrainConfig, state_path, train

    out = path.with_name("run.pth")
    torch.save(build_model("tiny_w8").state_dict(), out)
    os.replace(path, state_path(out))
    data = path.parent / "data"
    (data / "annotations").mkdir(parents=True, exist_ok=True)
    (data / "images").mkdir(exist_ok=True)
    import json

    import cv2
    import numpy as np

    cv2.imwrite(str(data / "images" / "1.png"), np.zeros((64, 64, 3), np.uint8))
    (data / "annotations" / "person_keypoints.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 64}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 1, "area": 400,
                         "bbox": [20, 20, 20, 20], "keypoints": [30, 30, 2] + [0] * 48}],
        "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}))
    train(TrainConfig(data=str(data), out=str(out), model="tiny_w8", epochs=1, batch_size=1, resume=True,
                      threads=1), progress=False)


def _pose_estimator(path: Path) -> None:
    from pose_stream.estimator import PoseEstimator

    PoseEstimator("tiny_w8", weights=path, input_size=64, eager=True)


LOADERS = {"load_checkpoint": _load_checkpoint, "read_state_dict": _read_state_dict,
           "train --resume": _resume_training, "PoseEstimator(weights=)": _pose_estimator}
WRAPPERS = {"bare object": lambda p: p, "inside a state_dict": lambda p: {"conv.weight": torch.zeros(1), "x": p},
            "inside a training checkpoint": lambda p: {"state_dict": {"a": torch.zeros(1)}, "optimizer": p}}


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("loader", LOADERS)
def test_no_loader_runs_code_from_a_file(tmp_path, loader, wrapper):
    marker = tmp_path / "payload-ran"
    path = _hostile(tmp_path / "hostile.pth", marker, WRAPPERS[wrapper])
    with pytest.raises(CheckpointError) as err:
        LOADERS[loader](path)
    assert not marker.exists(), f"{loader} ran the file's payload"
    message = str(err.value)
    assert "\n" not in message and "refused" in message and "could run code" in message, message


@pytest.mark.parametrize("loader", LOADERS)
def test_random_bytes_are_one_short_line(tmp_path, loader):
    path = tmp_path / "random.pth"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as err:
        LOADERS[loader](path)
    message = str(err.value)
    assert "not a PyTorch" in message and "weights_only" not in message and "\n" not in message, message
    assert len(message) < 300
