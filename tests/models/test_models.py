import pytest
import torch

from pose_stream.joints import COCO, CROWDPOSE
from pose_stream.models import MODEL_CONFIGS, build_model, count_parameters, get_config


@pytest.mark.parametrize(
    "name, millions",
    [("w32_512", 28.6), ("w48_640", 63.8), ("crowdpose_w32_512", 28.6), ("crowdpose_w48_640", 63.8)],
)
def test_parameter_counts_match_the_paper(name, millions):
    assert round(count_parameters(build_model(name)) / 1e6, 1) == millions


@pytest.mark.parametrize("hw", [(128, 128), (96, 160), (160, 96)], ids=["square", "16:9-ish", "portrait"])
@pytest.mark.parametrize("name, joints", [("w32_512", 17), ("crowdpose_w32_512", 14)])
def test_output_shapes(name, joints, hw):
    model = build_model(name)
    assert not model.training
    h, w = hw
    with torch.no_grad():
        out0, out1 = model(torch.randn(2, 3, h, w))
    assert out0.shape == (2, 2 * joints, h // 4, w // 4)
    assert out1.shape == (2, joints, h // 2, w // 2)


def test_wide_input_shape():
    with torch.no_grad():
        out0, out1 = build_model("tiny_w8")(torch.randn(1, 3, 512, 960))
    assert out0.shape == (1, 34, 128, 240) and out1.shape == (1, 17, 256, 480)


def test_configs_name_their_joint_set():
    assert get_config("w32_512").joint_set is COCO
    assert get_config("crowdpose_w48_640").joint_set is CROWDPOSE
    assert all(cfg.name == name for name, cfg in MODEL_CONFIGS.items())


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'w64'"):
        build_model("w64")


def test_released_state_dict_layout():
    keys = set(build_model("w32_512").state_dict())
    for key in (
        "conv1.weight", "bn2.running_var", "layer1.0.downsample.0.weight", "transition1.0.0.weight",
        "transition1.1.0.0.weight", "transition2.2.0.0.weight", "transition3.3.0.0.weight",
        "stage2.0.branches.1.3.conv2.weight", "stage2.0.fuse_layers.0.1.0.weight",
        "stage3.3.fuse_layers.2.0.1.0.weight", "stage4.2.fuse_layers.0.3.1.running_mean", "stage4.0.fuse_layers.3.0.2.1.running_mean",
        "final_layers.0.bias", "final_layers.1.weight", "deconv_layers.0.0.0.weight",
        "deconv_layers.0.0.1.running_mean", "deconv_layers.0.4.0.conv2.weight",
    ):
        assert key in keys, key
    # The last stage-4 module fuses into the highest-resolution branch only.
    assert not any(k.startswith("stage4.2.fuse_layers.1") for k in keys)
