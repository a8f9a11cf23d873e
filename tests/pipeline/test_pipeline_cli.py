"""`pose-stream run` as users run it: a subprocess, one-line errors, Ctrl-C, outputs on disk."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline_fakes import decode_all, write_video
from pose_stream.atomic import partial_path
from pipeline_rtsp import free_port
from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME

ROOT = Path(__file__).resolve().parents[2]
FAKE_CLI = Path(__file__).resolve().parent / "fake_cli.py"
ESTIMATOR_MISSING = None
try:
    import pose_stream.estimator  # noqa: F401
except ImportError as exc:
    ESTIMATOR_MISSING = f"pose_stream.estimator (PoseEstimator) is not available: {exc}"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}, **(extra or {}))
    return env


def pose_stream_cmd(*args: str, fake: bool = True) -> list[str]:
    """The command line: with fake=True the real CLI with FakeEstimator as its model."""
    head = [sys.executable, str(FAKE_CLI)] if fake else [sys.executable, "-m", "pose_stream"]
    return [*head, *args]


def run_cli(*args: str, fake: bool = True, timeout: float = 60, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(pose_stream_cmd(*args, fake=fake), capture_output=True, text=True, timeout=timeout,
                          env=_env(env), cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr
    line = errors[0]
    assert line.startswith("pose-stream: error: ") and proc.stderr.rstrip().endswith(line), proc.stderr
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def dummy_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"  # never read: the fake estimator stands in for the model
    path.write_bytes(b"\0")
    return path


def test_help_lists_examples_and_the_shortcut_reaches_run():
    proc = run_cli("run", "--help", fake=False)
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--rtsp-transport" in proc.stdout
    assert_one_line_error(run_cli("--source", "camera-one", fake=False), "unknown source 'camera-one'")


@pytest.mark.parametrize("case", ["missing file", "corrupt video", "unknown source", "empty folder",
                                  "input size not /32", "input size not a number", "unknown model",
                                  "no weights", "headless --show", "--no-render --save"])
def test_bad_input_is_one_line_and_exit_1(case, tmp_path, dummy_model):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(5000))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    video = write_video(tmp_path / "ok.mp4", 3)
    model = ["--onnx", str(dummy_model)]
    args, fragments = {
        "missing file": (["--source", str(tmp_path / "missing.mp4"), *model], ["file not found", "missing.mp4"]),
        "corrupt video": (["--source", str(corrupt), *model], ["cannot read video", "corrupt.mp4"]),
        "unknown source": (["--source", "frontdoor", *model], ["unknown source 'frontdoor'"]),
        "empty folder": (["--source", str(empty), *model], ["has no images"]),
        "input size not /32": (["--source", "demo", "--input-size", "500"], ["--input-size 500", "multiple of 32"]),
        "input size not a number": (["--source", "demo", "--input-size", "big"], ["--input-size 'big'"]),
        "unknown model": (["--source", str(video), "--model", "w99", *model], ["unknown model 'w99'"]),
        "no weights": (["--source", str(video)], ["no model given"]),
        "headless --show": (["--source", str(video), "--show", *model], ["--show", "pip install"]),
        "--no-render --save": (["--source", str(video), "--no-render", "--save", str(tmp_path / "o.mp4"), *model],
                               ["--no-render"]),
    }[case]
    if case == "headless --show":
        from pose_stream.pipeline import gui_available

        if gui_available():
            pytest.skip("this OpenCV build has GUI support")
    assert_one_line_error(run_cli(*args), *fragments)


def test_unreachable_rtsp_fails_after_the_configured_attempts(dummy_model):
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/stream"
    started = time.monotonic()
    proc = run_cli("--source", url, "--onnx", str(dummy_model), "--reconnect-attempts", "3", "--timeout", "1")
    line = assert_one_line_error(proc, "cannot connect to rtsp://***@127.0.0.1", "after 3 attempts")
    assert "hunter2" not in proc.stderr + proc.stdout and "hunter2" not in line
    assert time.monotonic() - started < 30


def test_video_to_json_and_video(tmp_path, dummy_model):
    video = write_video(tmp_path / "walk.mp4", 18)
    jsonl, saved = tmp_path / "walk.jsonl", tmp_path / "walk_out.mp4"
    proc = run_cli("--source", str(video), "--onnx", str(dummy_model), "--json", str(jsonl), "--save", str(saved),
                   "--stats")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame_index"] for r in records] == list(range(18))
    assert len(decode_all(saved)) == 18
    assert "frames 18" in proc.stdout and "latency p50" in proc.stdout and "reconnects 0" in proc.stdout
    assert "infer" in proc.stdout  # --stats: the stage table
    assert "pose-stream: backend fake on cpu (fp32)" in proc.stderr
    people = [p for r in records for p in r["people"]]
    assert people and all("track_id" in p for p in people)  # videos are tracked by default


def test_no_track_leaves_track_ids_out(tmp_path, dummy_model):
    video = write_video(tmp_path / "walk.mp4", 4)
    proc = run_cli("--source", str(video), "--onnx", str(dummy_model), "--json", "-", "--no-track")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 4 and not any("track_id" in p for r in records for p in r["people"])


def test_image_folder_to_coco_results(image_folder, tmp_path, dummy_model):
    out = tmp_path / "results.json"
    proc = run_cli("--source", str(image_folder), "--onnx", str(dummy_model), "--coco-results", str(out),
                   "--no-render")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert sorted(r["image_id"] for r in results) == [1000 + 7 * i for i in range(6)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_exits_0_within_2s_with_valid_files(sig, tmp_path):
    jsonl, saved = tmp_path / "demo.jsonl", tmp_path / "demo.mp4"
    proc = subprocess.Popen(pose_stream_cmd("--source", "demo", "--every-frame", "--json", str(jsonl), "--save",
                                            str(saved)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env({"FAKE_DELAYS": json.dumps({"infer": 0.03, "group": 0.01})}))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            partial = partial_path(jsonl)  # written there until the run ends
            if partial.exists() and len(partial.read_text().splitlines()) >= 5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert took < 2.0, f"exited {took:.2f} s after the signal"
    lines = jsonl.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line complete and valid
    assert 5 <= len(records) < 250 and [r["seq"] for r in records] == list(range(len(records)))
    assert len(decode_all(saved)) == len(records)  # the MP4 was finalised and holds every processed frame
    assert f"frames {len(records)}" in out


@pytest.mark.skipif(ESTIMATOR_MISSING is not None, reason=ESTIMATOR_MISSING or "")
def test_demo_runs_on_cpu_without_weights(tmp_path):
    jsonl = tmp_path / "demo.jsonl"
    proc = run_cli("--source", "demo", "--max-frames", "3", "--json", str(jsonl), fake=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(jsonl.read_text().splitlines()) == 3
    assert "pose-stream: backend" in proc.stderr
    # The demo runs at the size it was trained at, which need not be its config's default.
    assert f"model {DEMO_MODEL_NAME} (" in proc.stderr and f"input {DEMO_INPUT_SIZE}," in proc.stderr


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    import torch

    from pose_stream.models import build_model

    torch.manual_seed(0)
    path = tmp_path / "tiny_w8.pth"
    torch.save(build_model("tiny_w8").state_dict(), path)
    return path


@pytest.mark.skipif(ESTIMATOR_MISSING is not None, reason=ESTIMATOR_MISSING or "")
def test_real_estimator_end_to_end_with_tiny_weights(tmp_path, tiny_weights):
    video = write_video(tmp_path / "clip.mp4", 6)
    jsonl, saved = tmp_path / "clip.jsonl", tmp_path / "clip_out.mp4"
    proc = run_cli("--source", str(video), "--model", "tiny_w8", "--weights", str(tiny_weights), "--backend", "torch",
                   "--json", str(jsonl), "--save", str(saved), "--no-flip", fake=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(jsonl.read_text().splitlines()) == 6 and len(decode_all(saved)) == 6


@pytest.mark.skipif(ESTIMATOR_MISSING is not None, reason=ESTIMATOR_MISSING or "")
def test_weights_for_another_model_is_one_line(tmp_path, tiny_weights):
    video = write_video(tmp_path / "clip.mp4", 2)
    proc = run_cli("--source", str(video), "--model", "small_w16", "--weights", str(tiny_weights), fake=False,
                   timeout=300)
    assert_one_line_error(proc, "tiny_w8")



@pytest.mark.skipif(ESTIMATOR_MISSING is not None, reason=ESTIMATOR_MISSING or "")
def test_an_exact_input_size_runs_from_the_command_line(tmp_path, tiny_weights):
    video = write_video(tmp_path / "clip.mp4", 3)  # 160x120
    jsonl = tmp_path / "clip.jsonl"
    proc = run_cli("--source", str(video), "--model", "tiny_w8", "--weights", str(tiny_weights), "--input-size",
                   "64x96", "--json", str(jsonl), "--no-flip", fake=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "input 64x96" in proc.stderr and len(jsonl.read_text().splitlines()) == 3
