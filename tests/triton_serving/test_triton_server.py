"""--backend triton against a real Triton Inference Server (tests/triton_serving/conftest.py starts it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pose_stream.engine.registry import TritonOptions
from pose_stream.errors import PoseStreamError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _images(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (96, 144, 3), dtype=np.uint8) for _ in range(count)]


def test_results_through_triton_equal_the_local_onnxruntime_backend(triton_server, served_onnx):
    from pose_stream.estimator import PoseEstimator

    common = dict(input_size="64x96", device="cpu", batch=3)
    triton = TritonOptions(url=triton_server.url, model=triton_server.name)
    with PoseEstimator("tiny_w8", backend="triton", triton=triton, **common) as remote, \
            PoseEstimator("tiny_w8", onnx=served_onnx, **common) as local:
        images = _images(3, seed=1)
        prepared_remote = [remote.prepare(i) for i in images]
        prepared_local = [local.prepare(i) for i in images]
        for a, b in zip(remote.infer_batch(prepared_remote), local.infer_batch(prepared_local)):
            for x, y in zip((*a.scales[0].outputs, *a.scales[0].flipped), (*b.scales[0].outputs, *b.scales[0].flipped)):
                assert np.abs(x).max() > 0
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-5)
        for image in images:
            p, q = remote.predict(image), local.predict(image)
            np.testing.assert_allclose(p.keypoints, q.keypoints, rtol=0, atol=1e-4)
        assert remote.backend_info.name == "triton"


def test_four_client_processes_are_batched_together_and_each_gets_its_own_answers(triton_server, served_onnx):
    from pose_stream.engine.triton_backend import TritonBackend

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    before = TritonBackend(triton_server.url, triton_server.name).statistics()
    clients = [subprocess.Popen([sys.executable, str(HERE / "client_worker.py"), triton_server.url, triton_server.name,
                                 str(served_onnx), str(seed), "15"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env) for seed in range(4)]
    outputs = [client.communicate(timeout=180) for client in clients]
    assert all(client.returncode == 0 for client in clients), outputs
    after = TritonBackend(triton_server.url, triton_server.name).statistics()
    calls = after.since(before)
    assert calls["inputs"] == 4 * 15 * 2  # every row of every client's batches
    assert calls["executions"] < 4 * 15, calls  # the dynamic batcher put clients' requests together
    assert calls["queue_ms"] is not None and calls["compute_infer_ms"] > 0, calls


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else 0


def test_a_server_restart_costs_frames_not_the_run(triton_server):
    """The server is killed mid-run and started again (twice): the pipeline keeps reading its source, counts the
    frames it could not send, and resumes within 2 s of the server's return; nothing leaks."""
    from pose_stream.estimator import PoseEstimator
    from pose_stream.pipeline import GeneratedSource, Pipeline, PipelineConfig, Sink
    from pose_stream.pipeline.sources.demo import pattern_frames

    class Times(Sink):
        def __init__(self) -> None:
            self.times: list[float] = []

        def write(self, result) -> None:
            self.times.append(time.monotonic())

    triton = TritonOptions(url=triton_server.url, model=triton_server.name, timeout=1.0)
    estimator = PoseEstimator("tiny_w8", backend="triton", triton=triton, input_size="64x96", device="cpu")
    source = GeneratedSource(num_frames=10_000, size=(96, 64), frames=pattern_frames, fps=20.0, paced=True)
    times = Times()
    pipeline = Pipeline(estimator, [source], [times], PipelineConfig())
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while len(times.times) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        threads, descriptors = threading.active_count(), _open_descriptors()
        for _ in range(2):
            triton_server.kill()
            time.sleep(1.5)
            assert runner.is_alive()
            seen = len(times.times)
            triton_server.start()
            back = time.monotonic()
            while len(times.times) == seen and time.monotonic() < back + 10:
                time.sleep(0.05)
            assert len(times.times) > seen, "no frame after the server came back"
            assert times.times[seen] - back <= 2.0, f"resumed {times.times[seen] - back:.2f} s after the return"
        assert threading.active_count() <= threads + 1, "threads leaked across restarts"
        assert _open_descriptors() <= descriptors + 8, "sockets leaked across restarts"
    finally:
        pipeline.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert pipeline.stats.backend_drops > 0 and pipeline.stats.frames > 10


@pytest.mark.parametrize("case", ["unreachable", "unknown model", "wrong input size"])
def test_bad_servers_and_models_fail_in_one_line(triton_server, case):
    from pose_stream.engine.triton_backend import TritonBackend
    from server import free_port

    started = time.monotonic()
    with pytest.raises(PoseStreamError) as err:
        if case == "unreachable":
            TritonBackend(f"127.0.0.1:{free_port()}", "pose", timeout=1.0)
        elif case == "unknown model":
            TritonBackend(triton_server.url, "nope", timeout=1.0)
        else:
            backend = TritonBackend(triton_server.url, triton_server.name, timeout=5.0)
            backend.infer(np.zeros((2, 3, 128, 192), np.float32))
    message = str(err.value)
    assert "\n" not in message and time.monotonic() - started < 10, message
    fragment = {"unreachable": "cannot reach the Triton server", "unknown model": "has no model 'nope'",
                "wrong input size": "refused a batch of 2x3x128x192"}[case]
    assert fragment in message, message


def test_the_command_line_finds_the_same_people_through_triton(triton_server, served_onnx, tmp_path):
    """`pose-stream run --backend triton` and `--onnx` on the same video: the same people, frame by frame."""
    import json

    import cv2

    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (144, 96))
    for image in _images(8, seed=4):
        writer.write(image)
    writer.release()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    common = ["--source", str(video), "--model", "tiny_w8", "--input-size", "64x96", "--min-score", "0", "--no-render"]
    runs = {}
    for label, extra in (("triton", ["--backend", "triton", "--triton-url", triton_server.url]),
                         ("onnx", ["--onnx", str(served_onnx)])):
        out = tmp_path / f"{label}.jsonl"
        proc = subprocess.run([sys.executable, "-m", "pose_stream", *common, *extra, "--json", str(out)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs[label] = [json.loads(line)["people"] for line in out.read_text().splitlines()]
    assert len(runs["triton"]) == len(runs["onnx"]) == 8
    for a, b in zip(runs["triton"], runs["onnx"]):
        assert len(a) == len(b)
        for p, q in zip(a, b):
            np.testing.assert_allclose(np.array(p["keypoints"]), np.array(q["keypoints"]), rtol=0, atol=1e-3)


def test_bench_reports_the_server_s_own_figures(triton_server, tmp_path):
    """`pose-stream bench --backend triton`: client-side timings, and Triton's statistics of the timed calls."""
    from pose_stream.cli.main import main

    assert main(["bench", "--backend", "triton", "--triton-url", triton_server.url, "--triton-model",
                 triton_server.name, "--model", "tiny_w8", "--input-size", "64x96", "--frames", "6", "--warmup", "1",
                 "--no-baseline", "--people", "2", "--output-dir", str(tmp_path), "--name", "triton",
                 "--no-progress"]) == 0
    rows = json.loads((tmp_path / "triton.json").read_text())["rows"]
    engine = next(r for r in rows if r["kind"] == "engine-only")
    assert engine["fps"] > 0 and engine["stages"]["infer"]["median_ms"] > 0
    # 6 timed calls of a frame and its flipped copy: 12 inputs (the warm-up call is not counted)
    assert "server: 12 inputs in" in engine["note"] and "compute" in engine["note"], engine["note"]
