import pytest
import torch

from pose_stream.cli.main import main
from pose_stream.models import build_model


def test_export_command_prints_a_summary(tmp_path, capsys):
    weights = tmp_path / "tiny.pth"
    torch.save(build_model("tiny_w8").state_dict(), weights)
    out = tmp_path / "tiny.onnx"
    code = main(["export", "--weights", str(weights), "--model", "tiny_w8", "--input-size", "64x96", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and out.is_file()
    assert "verified" in captured.out and "[4/4]" in captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "--model", "tiny_w8", "--input-size", "100x96", "-o", "x.onnx"], "bad --input-size 100x96"),
        (["export", "--model", "tiny_w8", "--input-size", "abc", "-o", "x.onnx"], "bad --input-size 'abc'"),
        (["export", "--model", "w99", "-o", "x.onnx"], "unknown model 'w99'"),
        (["export", "--model", "tiny_w8", "--weights", "missing.pth", "-o", "x.onnx"], "checkpoint not found"),
    ],
)
def test_export_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pose-stream: error: ") and message in err[-1]


def test_weights_for_another_model_name_the_likely_model(tmp_path, capsys):
    weights = tmp_path / "tiny.pth"
    torch.save(build_model("tiny_w8").state_dict(), weights)
    assert main(["export", "--model", "small_w16", "--weights", str(weights), "-o", str(tmp_path / "x.onnx")]) == 1
    assert "looks like model 'tiny_w8'" in capsys.readouterr().err


def test_help_lists_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize("extra, expected", [([], 320), (["--input-size", "384"], 384)])
def test_demo_source_runs_the_demo_model_at_its_training_size(monkeypatch, extra, expected):
    # 320 differs from the demo config's default (256): the size must come from DEMO_INPUT_SIZE, and an explicit
    # --input-size still wins.
    from pose_stream.cli import run
    from pose_stream.cli.main import build_parser
    from pose_stream.models.config import get_config
    from pose_stream.models import demo

    monkeypatch.setattr(demo, "DEMO_INPUT_SIZE", 320)
    assert get_config(demo.DEMO_MODEL_NAME).input_size != 320
    args = build_parser().parse_args(["run", "--source", "demo", *extra])
    run._check_options(args)
    assert (args.model, args.input_size) == (demo.DEMO_MODEL_NAME, expected)
