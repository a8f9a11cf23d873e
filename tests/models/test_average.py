"""Averaging the weights of runs of one model: the weighted mean, counters, clear errors, and the CLI."""
from __future__ import annotations

import pytest
import torch

from pose_stream.cli.main import main
from pose_stream.models import build_model
from pose_stream.models.average import average_state_dicts


def _random_state(seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g).to(dtype),
        "bn.running_var": (torch.rand(4, generator=g) + 0.5).to(dtype),
        "bn.num_batches_tracked": torch.randint(0, 10_000, (), generator=g),
    }


def _naive_mean(states, factors):
    """The weighted mean written out element by element, as a check on the vectorised code."""
    total = sum(factors)
    flat = [s["conv.weight"].double().flatten().tolist() for s in states]
    return torch.tensor([sum(f * v[i] for f, v in zip(factors, flat)) / total for i in range(len(flat[0]))],
                        dtype=torch.float64).reshape(4, 3, 3, 3)


@pytest.mark.parametrize("seeds, factors", [
    ((0, 1), None),
    ((2, 3, 4), None),
    ((5, 6), (3.0, 1.0)),
    ((7, 8, 9), (0.2, 0.5, 0.3)),
])
def test_average_is_the_weighted_mean_of_the_floating_tensors(seeds, factors):
    states = [_random_state(s) for s in seeds]
    averaged = average_state_dicts(states, factors)
    expected = _naive_mean(states, factors or [1.0] * len(states))
    torch.testing.assert_close(averaged["conv.weight"].double(), expected, atol=1e-6, rtol=1e-6)
    assert averaged["bn.num_batches_tracked"] == max(int(s["bn.num_batches_tracked"]) for s in states)


def test_average_of_float16_files_is_float32_and_leaves_the_inputs_alone():
    states = [_random_state(s, torch.float16) for s in (10, 11)]
    before = [{k: v.clone() for k, v in s.items()} for s in states]
    averaged = average_state_dicts(states)
    assert averaged["conv.weight"].dtype == torch.float32
    expected = (states[0]["conv.weight"].float() + states[1]["conv.weight"].float()) / 2
    torch.testing.assert_close(averaged["conv.weight"], expected)
    for state, copy in zip(states, before):
        for key in state:
            assert torch.equal(state[key], copy[key])


def test_average_of_one_network_with_itself_computes_the_same_outputs():
    torch.manual_seed(0)
    model = build_model("tiny_w8")
    state = model.state_dict()
    soup = build_model("tiny_w8")
    soup.load_state_dict(average_state_dicts([state, state, state], (1.0, 2.0, 0.5)))
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for expected, got in zip(model(x), soup(x)):
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("states, factors, message", [
    ([], None, "nothing to average"),
    ([_random_state(0), _random_state(1)], (1.0,), "1 factors for 2"),
    ([_random_state(0), _random_state(1)], (1.0, 0.0), "positive"),
    ([_random_state(0), _random_state(1)], (1.0, -2.0), "positive"),
    ([_random_state(0), {**_random_state(1), "extra.bias": torch.zeros(2)}], None, "extra.bias"),
    ([_random_state(0), {**_random_state(1), "conv.weight": torch.zeros(4, 3, 1, 1)}], None, "conv.weight"),
])
def test_average_refuses_what_cannot_be_averaged(states, factors, message):
    with pytest.raises(ValueError, match=message):
        average_state_dicts(states, factors)


def _save_random_tiny(path, seed):
    torch.manual_seed(seed)
    state = build_model("tiny_w8").state_dict()
    torch.save(state, path)
    return state


@pytest.mark.parametrize("half", [False, True])
def test_average_cli_writes_a_checkpoint_that_loads(tmp_path, capsys, half):
    a = _save_random_tiny(tmp_path / "a.pth", 1)
    b = _save_random_tiny(tmp_path / "b.pth", 2)
    out = tmp_path / "soup" / "soup.pth"
    args = ["average", "--model", "tiny_w8", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"),
            "--factors", "3", "1", "--out", str(out)] + (["--half"] if half else [])
    assert main(args) == 0
    assert "a.pth x 0.75, b.pth x 0.25" in capsys.readouterr().out
    written = torch.load(out, weights_only=True)
    key = "final_layers.0.weight"
    assert written[key].dtype == (torch.float16 if half else torch.float32)
    torch.testing.assert_close(written[key].float(), 0.75 * a[key] + 0.25 * b[key],
                               atol=1e-3 if half else 1e-6, rtol=1e-3 if half else 1e-6)
    model = build_model("tiny_w8")
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in written.items()})


@pytest.mark.parametrize("extra_args, message", [
    (["--model", "small_w16"], "does not fit model 'small_w16'"),
    (["--model", "tiny_w8", "--factors", "1"], "--factors has 1 values for 2 checkpoints"),
    (["--model", "no_such_model"], "unknown model"),
])
def test_average_cli_explains_bad_input_in_one_line(tmp_path, capsys, extra_args, message):
    _save_random_tiny(tmp_path / "a.pth", 1)
    _save_random_tiny(tmp_path / "b.pth", 2)
    code = main(["average", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"), "--out", str(tmp_path / "o.pth"),
                 *extra_args])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.pth").exists()


def test_average_cli_refuses_to_overwrite_an_input(tmp_path, capsys):
    _save_random_tiny(tmp_path / "a.pth", 1)
    _save_random_tiny(tmp_path / "b.pth", 2)
    code = main(["average", "--model", "tiny_w8", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"),
                 "--out", str(tmp_path / "a.pth")])
    assert code == 1
    assert "is one of the inputs" in capsys.readouterr().err


def test_average_cli_needs_two_checkpoints(tmp_path, capsys):
    _save_random_tiny(tmp_path / "a.pth", 1)
    code = main(["average", "--model", "tiny_w8", str(tmp_path / "a.pth"), "--out", str(tmp_path / "o.pth")])
    assert code == 1
    assert "at least two checkpoints" in capsys.readouterr().err
