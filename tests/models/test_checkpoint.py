import pytest
import torch

from pose_stream.models import CheckpointError, build_model, load_checkpoint


@pytest.fixture(scope="module")
def small_state():
    return build_model("small_w16").state_dict()


def _save(path, obj):
    torch.save(obj, path)
    return path


def test_round_trip_restores_every_tensor(tmp_path):
    source = build_model("small_w16")
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    path = _save(tmp_path / "ckpt.pth", source.state_dict())
    target = load_checkpoint(build_model("small_w16"), path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_module_prefix_and_wrapped_dicts_are_accepted(tmp_path, small_state):
    prefixed = {f"module.{k}": v for k, v in small_state.items()}
    load_checkpoint(build_model("small_w16"), _save(tmp_path / "a.pth", prefixed))
    load_checkpoint(build_model("small_w16"), _save(tmp_path / "b.pth", {"state_dict": prefixed, "epoch": 3}))


def test_missing_num_batches_tracked_is_tolerated(tmp_path, small_state):
    old_style = {k: v for k, v in small_state.items() if not k.endswith("num_batches_tracked")}
    load_checkpoint(build_model("small_w16"), _save(tmp_path / "old.pth", old_style))


def test_wrong_key_is_listed(tmp_path, small_state):
    state = dict(small_state)
    state["conv1.weights"] = state.pop("conv1.weight")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(build_model("small_w16"), _save(tmp_path / "k.pth", state))
    message = str(err.value)
    assert "1 missing: conv1.weight" in message and "1 unexpected: conv1.weights" in message
    assert "\n" not in message


def test_wrong_shape_is_listed(tmp_path, small_state):
    state = dict(small_state)
    state["final_layers.0.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError, match=r"shape mismatch: final_layers.0.bias: file \(5,\) vs model \(34,\)"):
        load_checkpoint(build_model("small_w16"), _save(tmp_path / "s.pth", state))


def test_checkpoint_of_another_config_is_named(tmp_path):
    path = _save(tmp_path / "tiny.pth", build_model("tiny_w8").state_dict())
    with pytest.raises(CheckpointError, match="looks like model 'tiny_w8'"):
        load_checkpoint(build_model("small_w16"), path)


def test_crowdpose_checkpoint_into_coco_model_is_named(tmp_path):
    # Build the 14-joint variant of the small config by hand to keep the test fast.
    from dataclasses import replace

    from pose_stream.models import get_config
    from pose_stream.models.hrnet import HigherHRNet

    crowd = HigherHRNet(replace(get_config("small_w16"), name="small_crowd", joint_set_name="crowdpose"))
    path = _save(tmp_path / "crowd.pth", crowd.state_dict())
    with pytest.raises(CheckpointError, match="shape mismatch") as err:
        load_checkpoint(build_model("small_w16"), path)
    assert "matches no known model config" in str(err.value)


@pytest.mark.parametrize(
    "content, reason",
    [(b"this is not a checkpoint", "not a PyTorch checkpoint"), (b"", "not a PyTorch checkpoint")],
)
def test_not_a_checkpoint_is_one_line(tmp_path, content, reason):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason) as err:
        load_checkpoint(build_model("tiny_w8"), path)
    assert "\n" not in str(err.value)


def test_non_tensor_pickle_is_rejected(tmp_path):
    path = _save(tmp_path / "list.pth", [1, 2, 3])
    with pytest.raises(CheckpointError, match="does not hold a model state_dict"):
        load_checkpoint(build_model("tiny_w8"), path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(build_model("tiny_w8"), tmp_path / "nope.pth")
