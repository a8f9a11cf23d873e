"""`pose-stream run` against an adversarial user: outputs that would destroy inputs, signals in the middle of a
network call, corrupt images, mismatched model files, odd numbers, credentials. Each case was a bug."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline_fakes import decode_all, write_video
from pipeline_rtsp import free_port
from pose_stream.atomic import partial_path
from test_pipeline_cli import _env, assert_one_line_error, pose_stream_cmd, run_cli


@pytest.fixture
def dummy_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"  # never read: the fake estimator stands in for the model
    path.write_bytes(b"\0")
    return path


def _digest(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize("option", ["--save", "--json"])
def test_an_output_equal_to_the_input_is_refused_and_the_input_untouched(tmp_path, dummy_model, option):
    video = write_video(tmp_path / "v.mp4", 10)
    before = _digest(video)
    proc = run_cli("--source", str(video), "--onnx", str(dummy_model), option, str(video))
    line = assert_one_line_error(proc, option, "v.mp4")
    assert "is also an input" in line or "unknown file extension" in line
    assert _digest(video) == before and "wrote" not in proc.stdout


def test_an_existing_output_needs_overwrite(tmp_path, dummy_model):
    video = write_video(tmp_path / "v.mp4", 4)
    jsonl = tmp_path / "poses.jsonl"
    jsonl.write_text("precious\n")
    assert_one_line_error(run_cli("--source", str(video), "--onnx", str(dummy_model), "--json", str(jsonl)),
                          "already exists", "--overwrite")
    assert jsonl.read_text() == "precious\n"
    proc = run_cli("--source", str(video), "--onnx", str(dummy_model), "--json", str(jsonl), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["frame_index"] for line in jsonl.read_text().splitlines()] == [0, 1, 2, 3]
    assert not partial_path(jsonl).exists() and f"wrote {jsonl}" in proc.stdout


@pytest.mark.parametrize("case, fragments", [
    ("no extension", ["--save", "unknown file extension"]),
    ("under a file", ["is a file, not a folder"]),
])
def test_bad_output_paths_fail_before_the_model_loads(tmp_path, case, fragments):
    video = write_video(tmp_path / "v.mp4", 2)
    (tmp_path / "notes.txt").write_text("x")
    weights = tmp_path / "w.pth"
    weights.write_bytes(os.urandom(64))  # would fail to load: the output error must come first
    option = {"no extension": ["--save", str(tmp_path / "out")],
              "under a file": ["--json", str(tmp_path / "notes.txt" / "p.jsonl")]}[case]
    proc = run_cli("--source", str(video), "--model", "tiny_w8", "--weights", str(weights), *option, fake=False)
    assert_one_line_error(proc, *fragments)


def test_a_corrupt_image_is_skipped_and_the_run_goes_on(tmp_path, image_folder, dummy_model):
    paths = sorted(image_folder.glob("*.png"))
    paths[1].write_bytes(b"not an image")
    jsonl = tmp_path / "poses.jsonl"
    proc = run_cli("--source", str(image_folder), "--onnx", str(dummy_model), "--json", str(jsonl), "--no-render")
    assert proc.returncode == 0, proc.stderr
    names = [json.loads(line)["image"] for line in jsonl.read_text().splitlines()]
    assert names == [p.name for i, p in enumerate(paths) if i != 1]
    assert "skipped 1 unreadable" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if "skipping" in line]
    assert len(warnings) == 1 and paths[1].name in warnings[0]


def test_strict_stops_and_a_failed_run_replaces_nothing(tmp_path, image_folder, dummy_model):
    paths = sorted(image_folder.glob("*.png"))
    paths[2].write_bytes(b"not an image")
    results = tmp_path / "results.json"
    results.write_text('[{"image_id": 7}]')
    proc = run_cli("--source", str(image_folder), "--onnx", str(dummy_model), "--coco-results", str(results),
                   "--no-render", "--overwrite", "--strict")
    line = assert_one_line_error(proc, "cannot read image", paths[2].name, "partial output is kept in",
                                 "results.partial.json")
    assert results.read_text() == '[{"image_id": 7}]', line
    kept = json.loads((tmp_path / "results.partial.json").read_text())
    assert sorted({r["image_id"] for r in kept}) == [1000, 1007]  # the two images before the bad one


def test_a_model_file_for_another_backend_is_an_error(tmp_path, dummy_model):
    video = write_video(tmp_path / "v.mp4", 2)
    assert_one_line_error(run_cli("--source", str(video), "--onnx", str(dummy_model), "--backend", "torch"),
                          "model.onnx", "onnxruntime", "'torch'")


@pytest.mark.parametrize("argv, fragments", [
    (["--timeout", "nan"], ["--timeout", "finite"]),
    (["--timeout", "inf"], ["--timeout", "finite"]),
    (["--timeout", "-1"], ["--timeout", "> 0"]),
    (["--reconnect-attempts", "-2"], ["--reconnect-attempts", ">= 0"]),
    (["--max-frames", "0"], ["--max-frames", ">= 1"]),
    (["--max-aspect", "0.5"], ["--max-aspect", ">= 1"]),
    (["--device", "tpu"], ["--device", "'tpu'", "auto, cpu, cuda or cuda:N"]),
    (["--batch", "0"], ["--batch", ">= 1"]),
    (["--batch-wait", "-1"], ["--batch-wait", ">= 0"]),
    (["--batch-wait", "nan"], ["--batch-wait", "finite"]),
    (["--smooth", "--smooth-beta", "-1"], ["--smooth-beta", ">= 0"]),
    (["--smooth", "--smooth-min-cutoff", "0"], ["--smooth-min-cutoff", "> 0"]),
    (["--smooth-d-cutoff", "-3"], ["--smooth-d-cutoff", "> 0"]),
    (["--track-lost", "inf"], ["--track-lost", "finite"]),
    (["--tracker", "sort"], ["--tracker", "norfair", "bytetrack"]),
])
def test_bad_numbers_and_devices_are_one_line(tmp_path, dummy_model, argv, fragments):
    proc = run_cli("--source", "demo", *argv)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pose-stream run: error: argument"), proc.stderr
    assert all(f in lines[0] for f in fragments), lines[0]


def test_smoothing_without_tracking_is_one_line(tmp_path, dummy_model):
    proc = run_cli("--source", "demo", "--smooth", "--no-track")
    assert_one_line_error(proc, "--smooth", "--no-track")


@pytest.mark.parametrize("value, fragment", [("abc", "expected PORT or HOST:PORT"), ("host:99999", "1 to 65535"),
                                             ("bad host:80", "not an IP address")])
def test_bad_serve_addresses_are_one_line(tmp_path, value, fragment):
    assert_one_line_error(run_cli("--source", "demo", "--serve", value), "--serve", fragment)


def test_serving_on_a_port_in_use_is_one_line_and_writes_nothing(tmp_path, dummy_model):
    import socket

    video = write_video(tmp_path / "v.mp4", 4)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("--source", str(video), "--onnx", str(dummy_model), "--serve", str(port),
                       "--json", str(tmp_path / "p.jsonl"))
    assert_one_line_error(proc, f"--serve 127.0.0.1:{port}", "in use")
    assert not list(tmp_path.glob("p*.jsonl"))


def test_serve_needs_drawn_frames(tmp_path):
    assert_one_line_error(run_cli("--source", "demo", "--serve", "8080", "--no-render"), "--no-render", "--serve")


def test_random_bytes_as_weights_is_one_short_line(tmp_path):
    video = write_video(tmp_path / "v.mp4", 2)
    weights = tmp_path / "w.pth"
    weights.write_bytes(os.urandom(4096))
    proc = run_cli("--source", str(video), "--model", "tiny_w8", "--weights", str(weights), "--json",
                   str(tmp_path / "p.jsonl"), fake=False, timeout=300)
    line = assert_one_line_error(proc, "not a PyTorch checkpoint")
    assert "weights_only" not in proc.stderr and len(line) < 300


def test_an_elongated_image_is_refused_unless_allowed(tmp_path):
    import torch

    from pose_stream.models import build_model

    image = tmp_path / "strip.png"
    cv2.imwrite(str(image), np.full((32, 480, 3), 128, np.uint8))  # 15:1
    weights = tmp_path / "tiny.pth"
    torch.save(build_model("tiny_w8").state_dict(), weights)
    common = ["--source", str(image), "--model", "tiny_w8", "--weights", str(weights), "--input-size", "64",
              "--no-render"]
    assert_one_line_error(run_cli(*common, fake=False, timeout=300), "480x32", "15.0:1", "--max-aspect")
    proc = run_cli(*common, "--max-aspect", "16", fake=False, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_credentials_never_reach_the_output(tmp_path, dummy_model):
    url = f"rtsp://admin:p@ss/w0rd@127.0.0.1:{free_port()}/stream?token=t0k3n&channel=1"
    proc = run_cli("--source", url, "--onnx", str(dummy_model), "--reconnect-attempts", "2", "--timeout", "0.5",
                   "-v")
    assert_one_line_error(proc, "rtsp://***@127.0.0.1", "token=***", "channel=1")
    for secret in ("p@ss", "w0rd", "t0k3n", "admin"):
        assert secret not in proc.stderr + proc.stdout, secret


def _start(tmp_path: Path, delays: dict, *outputs: str) -> subprocess.Popen:
    return subprocess.Popen(pose_stream_cmd("--source", "demo", "--every-frame", *outputs), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env({"FAKE_DELAYS": json.dumps(delays)}))


def _wait_for_lines(path: Path, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines: {proc.poll()}")


def _check_outputs(jsonl: Path, video: Path) -> int:
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]  # every line complete
    assert [r["seq"] for r in records] == list(range(len(records)))  # no frame before the stop is missing
    assert len(decode_all(video)) == len(records)  # the video was finalised and holds each of them
    return len(records)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_network_call_exits_0_not_134(tmp_path, sig):
    """The network call is in torch's native code (as a real pass is) and lasts longer than the drain time:
    the process used to exit under it and abort (status 134)."""
    jsonl, video = tmp_path / "d.jsonl", tmp_path / "d.mp4"
    proc = _start(tmp_path, {"infer_torch": 1.5}, "--json", str(jsonl), "--save", str(video))
    try:
        _wait_for_lines(partial_path(jsonl), 1, proc)
        time.sleep(0.3)  # inside the next call
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "terminate called" not in err
    assert _check_outputs(jsonl, video) >= 1
    assert f"wrote {video}" in out and f"wrote {jsonl}" in out


def test_a_second_ctrl_c_abandons_the_call_and_exits_130(tmp_path):
    jsonl, video = tmp_path / "d.jsonl", tmp_path / "d.mp4"
    proc = _start(tmp_path, {"infer_torch": 4.0}, "--json", str(jsonl), "--save", str(video))
    try:
        _wait_for_lines(partial_path(jsonl), 1, proc)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert took < 2.0, f"{took:.1f} s after the second Ctrl-C"  # did not wait for the 4 s call
    assert _check_outputs(jsonl, video) >= 1


def test_stopping_before_the_first_frame_claims_no_file(tmp_path):
    video = tmp_path / "d.mp4"
    proc = _start(tmp_path, {"infer_torch": 3.0}, "--save", str(video))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "sources: demo" not in (proc.stderr.readline() or "sources: demo"):
            pass
        time.sleep(1.0)  # the run has started; its first network call takes 3 s
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "wrote" not in out and not video.exists() and not partial_path(video).exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_starting_up_is_a_clean_stop(tmp_path, sig):
    """Before the pipeline exists (imports, checks, model options) a signal means: do not start; exit 0."""
    jsonl = tmp_path / "d.jsonl"
    proc = _start(tmp_path, {}, "--json", str(jsonl))
    try:
        time.sleep(0.4)  # the program is importing its modules
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "wrote" not in out


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_graphs_on_the_cpu_are_one_line():
    assert_one_line_error(run_cli("--source", "demo", "--cuda-graph", "--device", "cpu"), "CUDA graphs need a CUDA GPU")


def test_json_lines_to_standard_output_keep_stdout_clean(tmp_path):
    video = write_video(tmp_path / "v.mp4", 5)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\0")
    proc = run_cli("--source", str(video), "--onnx", str(model), "--json", "-", "--min-score", "0")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]  # nothing but JSON lines
    assert [r["frame_index"] for r in records] == [0, 1, 2, 3, 4] and all(r["people"] for r in records)
    assert "frames 5" in proc.stderr and not list(tmp_path.glob("*.partial*"))
