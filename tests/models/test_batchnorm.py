"""BatchNorm recalibration: population statistics against NumPy and against PyTorch's own BatchNorm, the CLI."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from pose_stream.cli.main import main
from pose_stream.models import build_model
from pose_stream.models.batchnorm import recalibrate_batchnorm


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(),
                         nn.Conv2d(5, 4, 3, stride=2), nn.BatchNorm2d(4))


def _batches(seed: int, sizes=(4, 3, 5), hw=(9, 7)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # Batches with different means and spreads: a mean of per-batch variances would be visibly wrong.
    return [torch.randn(n, 3, *hw, generator=g) * (1 + i) + 2 * i for i, n in enumerate(sizes)]


@pytest.mark.parametrize("seed, sizes", [(0, (4, 3, 5)), (1, (2,)), (2, (1, 1, 6, 2))])
def test_first_layer_gets_the_numpy_statistics_of_all_batches(seed, sizes):
    batches = _batches(seed, sizes)
    model = _net(seed)
    assert recalibrate_batchnorm(model, batches) == len(sizes)
    values = np.concatenate([b.numpy() for b in batches]).transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(model[0].running_mean.numpy(), values.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model[0].running_var.numpy(), values.var(axis=1, ddof=1), rtol=1e-5)


@pytest.mark.parametrize("seed", [3, 4])
def test_one_batch_gives_every_layer_what_pytorch_batchnorm_computes(seed):
    # With one batch the population is the batch: PyTorch's own training-mode BatchNorm with momentum 1 stores
    # exactly its batch mean and unbiased variance, in every layer, as an independent check.
    batch = _batches(seed, sizes=(6,))[0]
    model = _net(seed)
    expected = copy.deepcopy(model)
    for layer in expected.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = 1.0
    with torch.no_grad():
        expected.train()(batch)
    recalibrate_batchnorm(model, [batch])
    for got, want in zip(model.modules(), expected.modules()):
        if isinstance(got, nn.BatchNorm2d):
            torch.testing.assert_close(got.running_mean, want.running_mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(got.running_var, want.running_var, rtol=1e-5, atol=1e-6)


def test_only_the_statistics_change():
    model = _net(5).eval()
    before = copy.deepcopy(model.state_dict())
    recalibrate_batchnorm(model, _batches(5))
    assert not model.training
    after = model.state_dict()
    for key, value in before.items():
        changed = not torch.equal(value, after[key])
        assert changed == (key.endswith("running_mean") or key.endswith("running_var")), key


@pytest.mark.parametrize("model, batches, message", [
    (nn.Conv2d(3, 3, 1), [torch.zeros(1, 3, 4, 4)], "no BatchNorm"),
    (nn.BatchNorm2d(3), [], "no batches"),
])
def test_refuses_what_it_cannot_do(model, batches, message):
    with pytest.raises(ValueError, match=message):
        recalibrate_batchnorm(model, batches)


def _tiny_dataset(tmp_path, images: int):
    from pose_stream.synthetic.scenes import SceneConfig
    from pose_stream.train.synthetic import write_coco_dataset

    config = SceneConfig(sizes=((128, 128),), max_people=2, min_height=40, small_fraction=0.0)
    write_coco_dataset(tmp_path / "data", images, seed=5, config=config, progress=False)
    return tmp_path / "data"


@pytest.mark.parametrize("half", [False, True])
def test_cli_rewrites_only_the_statistics_of_a_checkpoint(tmp_path, capsys, half):
    torch.manual_seed(0)
    state = build_model("tiny_w8").state_dict()
    torch.save(state, tmp_path / "in.pth")
    data = _tiny_dataset(tmp_path, images=6)
    out = tmp_path / "bn" / "out.pth"
    args = ["recalibrate", "--model", "tiny_w8", "--weights", str(tmp_path / "in.pth"), "--data", str(data),
            "--images", "5", "--batch-size", "2", "--input-size", "128", "--threads", "1", "--out", str(out)]
    assert main(args + (["--half"] if half else [])) == 0
    assert "BatchNorm statistics of 4 images" in capsys.readouterr().out
    written = torch.load(out, weights_only=True)
    assert set(written) == set(state)
    for key, value in state.items():
        if key.endswith("running_mean") or key.endswith("running_var"):
            assert not torch.allclose(written[key].float(), value), key  # fresh init: mean 0, var 1
        elif value.is_floating_point():
            torch.testing.assert_close(written[key].float(), value, atol=1e-3 if half else 0, rtol=1e-3 if half else 0)
        else:
            assert torch.equal(written[key], value), key


@pytest.mark.parametrize("make_args, message", [
    (lambda d, t: ["--weights", str(t / "missing.pth"), "--data", str(d)], "missing.pth"),
    (lambda d, t: ["--weights", str(t / "in.pth"), "--data", str(t / "nothing")], "dataset folder not found"),
    (lambda d, t: ["--weights", str(t / "in.pth"), "--data", str(d), "--images", "1"], "fewer than one batch"),
    (lambda d, t: ["--weights", str(t / "in.pth"), "--data", str(d), "--input-size", "100"], "multiple of 32"),
])
def test_cli_explains_bad_input_in_one_line(tmp_path, capsys, make_args, message):
    torch.save(build_model("tiny_w8").state_dict(), tmp_path / "in.pth")
    data = _tiny_dataset(tmp_path, images=2)
    code = main(["recalibrate", "--model", "tiny_w8", "--threads", "1", "--out", str(tmp_path / "o.pth"),
                 *make_args(data, tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.pth").exists()


def test_cli_refuses_to_overwrite_its_input(tmp_path, capsys):
    path = tmp_path / "in.pth"
    torch.save(build_model("tiny_w8").state_dict(), path)
    assert main(["recalibrate", "--model", "tiny_w8", "--weights", str(path), "--data", str(tmp_path),
                 "--out", str(path)]) == 1
    assert "is the input checkpoint" in capsys.readouterr().err
