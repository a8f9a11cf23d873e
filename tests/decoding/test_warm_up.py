"""The warm-up leaves no decoding kernel for the first real frame to compile."""
import json
import subprocess
import sys

import numpy as np

from pose_stream.decoding.types import ScaleOutputs
from pose_stream.decoding.warm_up import LEFT_OUT_JOINT, with_planted_people

# In a fresh process: kernels compiled by earlier tests in this one would make the check pass whatever warm_up does.
CHECK = """
import importlib, json, pkgutil
import numba.core.registry
import pose_stream.decoding as decoding
from pose_stream.estimator import PoseEstimator
from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_path
from pose_stream.synthetic.animation import demo_frames

def compiled():
    counts = {}
    for info in pkgutil.iter_modules(decoding.__path__):
        module = importlib.import_module(f"pose_stream.decoding.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher):
                counts[f"{info.name}.{name}"] = len(value.signatures)
    return counts

with PoseEstimator(DEMO_MODEL_NAME, weights=str(demo_model_path()), input_size=DEMO_INPUT_SIZE, device="cpu") as e:
    e.warm_up()
    before = compiled()
    frame = next(demo_frames(640, 360, 25.0, seed=0, num_frames=1))
    people = len(e.predict(frame.image).scores)
    after = compiled()
print(json.dumps({"people": people, "kernels": len(after),
                  "compiled_by_the_frame": sorted(k for k in after if after[k] > before.get(k, 0))}))
"""


def test_after_warm_up_a_frame_with_people_compiles_no_decoding_kernel():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["people"] >= 2 and result["kernels"] > 20  # people found, the kernels seen
    assert result["compiled_by_the_frame"] == []


def test_planted_people_leave_the_outputs_alone_and_peak_where_planted():
    k, h, w = 17, 16, 24
    plain = (np.zeros((2 * k, h, w), np.float32), np.zeros((k, 2 * h, 2 * w), np.float32))
    flipped = (np.zeros((2 * k, h, w), np.float32), np.zeros((k, 2 * h, 2 * w), np.float32))
    (planted,) = with_planted_people([ScaleOutputs(plain, flipped)])
    assert all(not a.any() for a in plain + flipped)  # copies
    for out0, out1 in (planted.outputs, planted.flipped):
        assert out0.shape == (2 * k, h, w) and out1.shape == (k, 2 * h, 2 * w)
        for heatmap in (out0[:k], out1):
            peaks = (heatmap == 1.0).reshape(k, -1).sum(axis=1)
            assert peaks[LEFT_OUT_JOINT] == 0 and (np.delete(peaks, LEFT_OUT_JOINT) == 2 * 9).all()
        assert set(np.unique(out0[k:])) == {0.0, 2.0}  # person 0's tag is 0, person 1's is 2
