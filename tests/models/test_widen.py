"""Growing a trained network into a wider one: same outputs at the start, new channels alive, clear errors."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pose_stream.models import build_model, get_config
from pose_stream.models.hrnet import HigherHRNet
from pose_stream.models.widen import widen_state_dict


def _random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Weights and BatchNorm statistics far from any initialisation, so that a misplaced channel shows."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            state[key] = value
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=g) + 0.5
        else:
            state[key] = 0.3 * torch.randn(value.shape, generator=g)
    return state


@pytest.mark.parametrize("seed, wide_width", [(0, 12), (1, 16), (2, 9)])
@pytest.mark.parametrize("training", [False, True])
def test_widened_network_computes_the_same_outputs(seed, wide_width, training):
    narrow = get_config("tiny_w8")
    wide = replace(narrow, name=f"tiny_w{wide_width}", width=wide_width)
    small = HigherHRNet(narrow)
    small.load_state_dict(_random_state(small, seed))
    grown = HigherHRNet(wide)
    grown.load_state_dict(widen_state_dict(small.state_dict(), narrow, wide, seed=seed))
    small.train(training)
    grown.train(training)
    features = {}

    def keep_features(module, inputs, output) -> None:
        features["x"] = inputs[0]

    grown.final_layers[0].register_forward_hook(keep_features)
    x = torch.randn(2, 3, 128, 96, generator=torch.Generator().manual_seed(seed + 100))
    with torch.no_grad():
        expected, got = small(x), grown(x)
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        torch.testing.assert_close(g, e, atol=1e-5 * float(e.abs().max()), rtol=1e-5)
    new_channels = features["x"][:, narrow.width:]
    assert new_channels.shape[1] == wide_width - narrow.width and new_channels.std() > 1e-3  # not dead


def test_widening_keeps_the_trained_weights_in_the_leading_channels():
    narrow, wide = get_config("small_w16"), get_config("small_w32")
    small = HigherHRNet(narrow)
    state = _random_state(small, 5)
    grown = widen_state_dict(state, narrow, wide)
    assert torch.equal(grown["conv1.weight"], state["conv1.weight"])  # the stem does not widen
    assert torch.equal(grown["final_layers.1.weight"][:, :16], state["final_layers.1.weight"])
    assert not grown["final_layers.1.weight"][:, 16:].any()
    deconv = grown["deconv_layers.0.0.0.weight"]  # [W + 2K, W, 4, 4] narrow -> [W' + 2K, W', 4, 4]
    assert deconv.shape == (32 + 34, 32, 4, 4)
    assert torch.equal(deconv[:16, :16], state["deconv_layers.0.0.0.weight"][:16])
    assert torch.equal(deconv[32:, :16], state["deconv_layers.0.0.0.weight"][16:])
    assert not deconv[16:32, :16].any()


@pytest.mark.parametrize("narrow, wide, message", [
    ("small_w16", "tiny_w8", "differ in more than their width"),
    ("small_w32", "small_w16", "narrower"),
    ("small_w48", "small_w32", "narrower"),
    ("small_w16", "w32_512", "differ in more than their width"),
])
def test_widening_refuses_configs_that_differ_otherwise(narrow, wide, message):
    with pytest.raises(ValueError, match=message):
        widen_state_dict(build_model(narrow).state_dict(), get_config(narrow), get_config(wide))


def test_train_grows_init_weights_with_widen_from(tmp_path):
    from pose_stream.models import load_checkpoint
    from pose_stream.train.augment import NO_AUGMENTATION
    from pose_stream.synthetic.scenes import SceneConfig
    from pose_stream.train.synthetic import write_coco_dataset
    from pose_stream.train.trainer import TrainConfig, train

    data = tmp_path / "data"
    write_coco_dataset(data, 2, seed=4, config=SceneConfig(sizes=((128, 128),), max_people=1, min_height=40),
                       progress=False)
    small = HigherHRNet(get_config("small_w16"))
    small.load_state_dict(_random_state(small, 7))
    torch.save(small.state_dict(), tmp_path / "small.pth")
    config = TrainConfig(data=str(data), out=str(tmp_path / "wide.pth"), model="small_w32", epochs=1,
                         batch_size=2, lr=1e-12, augment=NO_AUGMENTATION, threads=1,
                         init=str(tmp_path / "small.pth"), widen_from="small_w16")
    train(config, progress=False)
    wide = load_checkpoint(build_model("small_w32"), tmp_path / "wide.pth").train()
    small.train()
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # training mode: BatchNorm uses the batch, so the one step's running stats do not matter
        for e, g in zip(small(x), wide(x)):
            torch.testing.assert_close(g, e, atol=1e-4 * float(e.abs().max()), rtol=1e-4)


def test_train_cli_explains_a_bad_widen_pair(tmp_path, capsys):
    from pose_stream.cli.main import main

    torch.save(build_model("tiny_w8").state_dict(), tmp_path / "tiny.pth")
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "x.pth"), "--model", "small_w32",
                 "--init", str(tmp_path / "tiny.pth"), "--widen-from", "tiny_w8"])
    assert code == 1
    assert "cannot widen" in capsys.readouterr().err
