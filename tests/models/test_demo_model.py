"""The bundled demo model: it loads as the released key format and sees the demo world's people."""
from __future__ import annotations

import numpy as np
import torch

from pose_stream.synthetic.animation import demo_frames
from pose_stream.train.batches import normalise_bgr
from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_info, demo_model_path, load_demo_model


def test_demo_model_files_describe_each_other():
    info = demo_model_info()
    assert info["model"] == DEMO_MODEL_NAME and info["input_size"] == DEMO_INPUT_SIZE
    assert info["weights"] == demo_model_path().name
    assert demo_model_path().stat().st_size < 10 * 2**20  # "a few MB"
    assert "pose-stream train" in info["training_command"] and info["final_loss"] > 0


def _heatmaps(model, image):
    with torch.no_grad():
        out0, out1 = model(torch.from_numpy(normalise_bgr(image))[None])
    return out0, out1[0].numpy()


def test_demo_model_heatmaps_peak_on_the_people_of_demo_frames():
    """Near most visible joints the 1/2 heatmap has a clear peak; away from people it stays quiet.

    (Measured when the model was shipped: 80 % of 158 joints above 0.2; background 99th percentile 0.003.)
    """
    torch.set_flush_denormal(True)
    model = load_demo_model()
    hits, total = 0, 0
    for seed in (3, 4, 5):
        # 448 x 256 needs no resizing: the frame is the network input (height = the demo input size).
        frame = next(iter(demo_frames(width=448, height=DEMO_INPUT_SIZE, seed=seed, num_frames=1)))
        out0, heat = _heatmaps(model, frame.image)
        assert out0.shape == (1, 34, 64, 112) and heat.shape == (17, 128, 224)
        people = np.zeros(heat.shape[1:], bool)
        for person in frame.keypoints:
            for k, (x, y, v) in enumerate(person):
                if v != 2:
                    continue
                # The peak of joint k belongs at (x / 2 - 0.5, y / 2 - 0.5) on the 1/2 map.
                cx, cy = int(round(x / 2 - 0.5)), int(round(y / 2 - 0.5))
                window = heat[k, max(cy - 2, 0):cy + 3, max(cx - 2, 0):cx + 3]
                hits += int(window.size > 0 and window.max() > 0.2)
                total += 1
            labelled = person[person[:, 2] > 0, :2] / 2
            if len(labelled):
                x0, y0 = np.maximum(labelled.min(0) - 12, 0).astype(int)
                x1, y1 = (labelled.max(0) + 12).astype(int)
                people[y0:y1, x0:x1] = True
        assert np.quantile(heat.max(0)[~people], 0.99) < 0.05, "the background is not quiet"
    assert total >= 60
    assert hits / total > 0.65, f"only {hits} of {total} visible joints have a heatmap peak"



def test_model_card_names_the_shipped_weights_by_hash_and_size():
    """The card's SHA-256 and parameter count are those of the file that ships beside it."""
    import hashlib

    info = demo_model_info()
    assert hashlib.sha256(demo_model_path().read_bytes()).hexdigest() == info["sha256"]
    model = load_demo_model()
    assert sum(p.numel() for p in model.parameters()) == info["parameters"]
    assert 0 < info["held_out_check"]["ap"] <= 1
