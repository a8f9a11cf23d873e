"""`pose-stream bench`: report format, refusals, the reference-style baseline, a tiny end-to-end run with the
real PoseEstimator, the pipeline measurement (warm-up left out, rendered outputs substituted), the torch FP16
option it takes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pose_stream.benchmarking.baseline import BaselineConfig, ReferenceStyleBaseline
from pose_stream.benchmarking.hungarian import munkres_assignment
from pose_stream.benchmarking.report import STAGE_COLUMNS, SUMMARY_COLUMNS
from pose_stream.benchmarking.synthetic import make_scenes
from pose_stream.cli.main import main
from pose_stream.errors import PoseStreamError
from pose_stream.estimator import PoseEstimator
from pose_stream.joints import COCO, CROWDPOSE
from pose_stream.synthetic.outputs import random_people, render_flipped_outputs, render_outputs
from pose_stream.models import build_model

TINY = ["--model", "tiny_w8", "--input-size", "128x192", "--frames", "3", "--warmup", "1", "--baseline-frames", "2",
        "--threads", "1", "--no-progress"]


def test_munkres_matches_scipy_on_random_matrices(rng):
    from scipy.optimize import linear_sum_assignment

    for _ in range(60):
        rows, cols = rng.integers(1, 10, 2)
        cost = rng.normal(size=(rows, cols)) * rng.choice([1.0, 100.0])
        if rng.random() < 0.5:  # the reference's integer-plus-fraction costs, with ties in the rounded part
            cost = np.round(cost) * 100 - rng.random((rows, cols))
        pairs = munkres_assignment(cost.tolist())
        r, c = linear_sum_assignment(cost)
        assert len(pairs) == min(rows, cols) and len({j for _, j in pairs}) == len(pairs)
        assert sum(cost[i, j] for i, j in pairs) == pytest.approx(cost[r, c].sum(), rel=1e-9, abs=1e-9)


def test_munkres_breaks_ties_like_the_munkres_package(rng):
    # The baseline stands for the reference, which uses the `munkres` package: same pairs, ties included.
    package = pytest.importorskip("munkres")
    if not package.__version__.startswith("1."):
        pytest.skip(f"munkres {package.__version__} breaks ties unlike the 1.x the reference used (test extra: <2)")
    for _ in range(40):
        n = int(rng.integers(1, 8))
        cost = np.round(rng.normal(size=(n, n))) * 100 - rng.integers(0, 3, (n, n)) * 0.25
        assert munkres_assignment(cost.tolist()) == sorted(package.Munkres().compute(cost.tolist()))


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("joint_set", [COCO, CROWDPOSE], ids=["coco", "crowdpose"])
def test_baseline_decodes_rendered_people(rng, flip, joint_set):
    size = (384, 256)
    people = random_people(rng, 3, size, joint_set)
    outputs = render_outputs(people, size, joint_set.num_joints)
    flipped = render_flipped_outputs(people, size, joint_set) if flip else None
    baseline = ReferenceStyleBaseline(build_model("tiny_w8"), BaselineConfig(256, flip, joint_set))
    poses = baseline.decode_outputs(outputs, flipped, size)
    assert len(poses) == 3 and poses.num_joints == joint_set.num_joints
    for person in people.keypoints:
        error = np.abs(poses.keypoints[:, :, :2] - person).max(axis=(1, 2)).min()
        assert error <= 0.75
    assert np.all(poses.scores > 0.5)


def test_generated_scenes_show_the_people_asked_for():
    scenes = make_scenes(4, (192, 128), COCO, count=2, seed=3)
    assert len(scenes) == 2
    for scene in scenes:
        assert scene.frame.shape == (128, 192, 3) and scene.frame.dtype == np.uint8 and len(scene.people) == 4
        inside = (scene.people.keypoints >= 0) & (scene.people.keypoints < (192, 128))
        assert inside.all()
    assert make_scenes(0, (192, 128), CROWDPOSE, count=1, seed=0)[0].people.keypoints.shape == (0, 14, 2)


def test_generated_scenes_come_from_the_demo_world_where_it_is_installed():
    from pose_stream.synthetic import scenes as world

    scenes = make_scenes(2, (320, 256), COCO, count=2, seed=0, demo_world=True)
    expected = [s for s in (world.synthetic_image(0, i, world.SceneConfig(sizes=((320, 256),), max_people=2))
                            for i in range(24)) if len(s.people) == 2][:2]
    assert len(expected) == 2, "the demo world should make two-person scenes within the tries"
    for scene, drawn in zip(scenes, expected):
        np.testing.assert_array_equal(scene.frame, drawn.image)
        labelled = np.stack([p.keypoints[:, 2] > 0 for p in drawn.people])
        np.testing.assert_array_equal(scene.people.visible, labelled)


def _bench_config():
    from pose_stream.benchmarking import BenchConfig, parse_backends

    return BenchConfig(backends=parse_backends("torch"), model="tiny_w8", input_sizes=((128, 192),), people=(3,))


def test_end_to_end_steps_decode_the_rendered_people():
    """With random weights the bench decodes the outputs its generated people would give: the real estimator's
    aggregate and group stages must find exactly those people again."""
    from pose_stream.benchmarking.runner import _make_clip, _product_steps

    size = (128, 192)
    clip = _make_clip(_bench_config(), size, 3, True, COCO, "synthetic")
    with PoseEstimator("tiny_w8", input_size=128, device="cpu") as estimator:
        steps, grouped_early = _product_steps(estimator, clip, 1, "synthetic")
        value = None
        for name, step in steps:
            value = step(value, 0)
    assert [name for name, _ in steps] == ["read", "prepare", "infer", "aggregate", "group"]
    assert len(value) == 3 and grouped_early == [False]


def test_bench_reports_table_json_and_png(tmp_path, capsys):
    code = main(["bench", "--backend", "torch,onnxruntime", "--people", "0,2", "--batch", "1,2",
                 "--output-dir", str(tmp_path), *TINY])
    out = capsys.readouterr().out
    assert code == 0
    assert "| " + " | ".join(SUMMARY_COLUMNS) + " |" in out and "| " + " | ".join(STAGE_COLUMNS) + " |" in out
    report = json.loads((tmp_path / "pose-stream-bench.json").read_text())
    assert set(report) == {"environment", "settings", "summary", "rows"}
    env = report["environment"]
    assert {"date", "cpu", "gpu", "versions"} <= set(env)
    assert {"python", "torch", "onnxruntime", "numpy", "numba", "opencv"} <= set(env["versions"])
    assert report["settings"]["decode_input"] == "synthetic"  # random weights: decode rendered people
    rows = report["rows"]
    assert {r["kind"] for r in rows} == {"engine-only", "end-to-end", "pipeline", "baseline"}
    for row in rows:
        assert {"backend", "precision", "device", "input_hw", "batch", "flip", "people", "fps", "stages"} <= set(row)
    e2e = [r for r in rows if r["kind"] == "end-to-end" and r["batch"] == 1]
    assert len(e2e) == 4 and all(r["fps"] > 0 and r["device"] == "cpu" for r in e2e)
    assert {r["backend"] for r in e2e} == {"torch", "onnxruntime"}
    assert set(e2e[0]["stages"]) == {"read", "prepare", "infer", "aggregate", "group"}
    for stage in e2e[0]["stages"].values():
        assert stage["count"] == 3 and stage["p99_ms"] >= stage["median_ms"] > 0
    split = e2e[0]["decode_split"]  # Numba aggregation: all decoding on the CPU
    assert split["gpu_ms"] == 0 and split["cpu_ms"] == pytest.approx(
        e2e[0]["stages"]["aggregate"]["median_ms"] + e2e[0]["stages"]["group"]["median_ms"], abs=1e-3)
    piped = [r for r in rows if r["kind"] == "pipeline"]
    assert len(piped) == 4 and all(r["batch"] == 1 and r["fps"] > 0 and r["decode_input"] == "synthetic" for r in piped)
    assert {(r["backend"], r["people"]) for r in piped} == {(b, p) for b in ("torch", "onnxruntime") for p in (0, 2)}
    for row in piped:
        assert row["frames"] == 3  # the warm-up frame is run but not counted
        assert set(row["stages"]) == {"prepare", "infer", "aggregate", "group"}
        assert all(s["count"] == 3 and s["p99_ms"] >= s["median_ms"] > 0 for s in row["stages"].values())
        lat = row["latency_ms"]
        assert set(lat) == {"p50", "p95", "p99"} and 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert all(r["latency_ms"] is None for r in rows if r["kind"] != "pipeline")
    batched = [r for r in rows if r["kind"] == "end-to-end" and r["batch"] == 2]
    assert batched and all(r["fps"] is None and "network outputs only" in r["note"] for r in batched)
    baseline = [r for r in rows if r["kind"] == "baseline"]
    assert [r["people"] for r in baseline] == [0, 2]
    assert set(baseline[0]["stages"]) == {"read", "prepare", "infer", "aggregate", "group"}
    summary = report["summary"]
    assert len(summary) == 2 * 2 * 2  # backends x batches x people
    first = next(s for s in summary if s["batch"] == 1)
    assert first["speedup_vs_baseline"] == pytest.approx(first["e2e_fps"] / first["baseline_fps"])
    assert first["e2e_over_engine"] == pytest.approx(first["e2e_fps"] / first["engine_fps"])
    assert first["pipeline_over_engine"] == pytest.approx(first["pipeline_fps"] / first["engine_fps"])
    assert first["pipeline_latency_ms"]["p99"] > 0
    assert all(s["pipeline_fps"] is None for s in summary if s["batch"] == 2)  # the pipeline runs batch 1
    assert (tmp_path / "pose-stream-bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_decodes_network_outputs_with_a_video(tmp_path, capsys):
    import cv2

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(3):
        writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
    writer.release()
    code = main(["bench", "--backend", "onnxruntime", "--video", str(video), "--flip", "off", "--no-baseline",
                 "--output-dir", str(tmp_path), *TINY])
    assert code == 0
    rows = json.loads((tmp_path / "pose-stream-bench.json").read_text())["rows"]
    e2e = next(r for r in rows if r["kind"] == "end-to-end")
    assert e2e["decode_input"] == "network" and e2e["people"] is None and e2e["fps"] > 0
    piped = next(r for r in rows if r["kind"] == "pipeline")
    assert piped["decode_input"] == "network" and piped["people"] is None and piped["fps"] > 0
    assert "| video |" in capsys.readouterr().out


class _CountingEstimator:
    """Stage estimator stand-in: each stage tags its payload, aggregate records what it was given."""

    def __init__(self):
        self.aggregated = []
        self.closed = False

    def prepare(self, image):
        return int(image[0, 0, 0])

    def infer(self, prepared):
        return ("raw", prepared)

    def aggregate(self, raw):
        self.aggregated.append(raw)
        return raw

    def group(self, aggregated):
        from pose_stream.poses import Poses

        return Poses.empty()

    def close(self):
        self.closed = True


def test_pipeline_measurement_leaves_out_warmup_and_substitutes_rendered_outputs():
    from pose_stream.benchmarking.pipelined import RenderedOutputsEstimator, latency_ms, run_pipeline, stage_stats

    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(7)]
    inner = _CountingEstimator()
    staged = RenderedOutputsEstimator(inner, lambda raw, number: ("rendered", number, raw))
    ticks = []
    stats, _ = run_pipeline(staged, lambda i: frames[i], frames=5, warmup=2, size_wh=(8, 8),
                            on_timed=lambda: ticks.append(1))
    assert stats.frames == 5 and len(ticks) == 5 and inner.closed
    # every frame ran, in order, each aggregated on the rendered outputs of its own number
    assert inner.aggregated == [("rendered", i, ("raw", i)) for i in range(7)]
    stages = stage_stats(stats)
    assert set(stages) == {"prepare", "infer", "aggregate", "group"} and all(s.count == 5 for s in stages.values())
    lat = latency_ms(stats)
    assert set(lat) == {"p50", "p95", "p99"} and lat["p50"] <= lat["p99"]


def test_torch_fp16_is_a_cuda_option_of_the_estimator(monkeypatch):
    import torch

    from pose_stream.benchmarking.backends import BACKEND_SPECS, build_estimator

    with pytest.raises(PoseStreamError, match="precision fp16 needs a CUDA GPU"):
        PoseEstimator("tiny_w8", device="cpu", precision="fp16")
    with pytest.raises(PoseStreamError, match="applies to the torch backend"):
        PoseEstimator("tiny_w8", onnx="x.onnx", precision="fp16")
    with pytest.raises(PoseStreamError, match="precision must be fp32 or fp16"):
        PoseEstimator("tiny_w8", precision="int8")
    built = []

    class RecordingBackend:  # stands in for TorchBackend: no GPU here to run FP16 on
        def __init__(self, model, device="auto", fp16=False, cuda_graph=False):
            built.append(fp16)
            raise PoseStreamError("recorded")

    import pose_stream.engine

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(pose_stream.engine, "TorchBackend", RecordingBackend, raising=False)
    for name in ("torch", "torch-fp16"):
        with pytest.raises(PoseStreamError, match="recorded"):
            build_estimator(BACKEND_SPECS[name], model="tiny_w8", eager=True)
    assert built == [False, True]


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


@pytest.mark.parametrize("argv, message", [
    (["--backend", "caffe"], "unknown backend 'caffe'"),
    pytest.param(["--backend", "torch-fp16"], "backend torch-fp16 is not available here",
                 marks=pytest.mark.skipif(not _no_cuda(), reason="this machine has a GPU")),
    (["--input-size", "100x96"], "bad --input-size 100x96: height and width must be multiples of 32"),
    (["--input-size", "500x960"], "bad --input-size 500x960"),
    (["--people", "-1"], "--people must be 0 or more"),
    (["--people", "ten"], "--people takes comma-separated whole numbers"),
    (["--frames", "0"], "--frames must be at least 1"),
    (["--batch", "0"], "batch sizes must be at least 1"),
    (["--video", "missing.mp4", "--backend", "torch"], "video not found"),
    (["--output-dir", "nowhere"], "--output-dir nowhere is not a folder"),
])
def test_bench_refuses_bad_options(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--model", "tiny_w8", "--no-progress", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pose-stream: error: ") and message in err[0]


def test_bench_refuses_tensorrt_where_it_does_not_import(tmp_path, monkeypatch, capsys):
    from pose_stream._optional import available

    if available("tensorrt"):
        pytest.skip("tensorrt imports here")
    assert main(["bench", "--backend", "tensorrt", "--no-progress"]) == 1
    assert "backend tensorrt is not available here" in capsys.readouterr().err


@pytest.mark.parametrize("attributes, expected", [
    ({"__version__": "1.2.3"}, "1.2.3"),
    ({"VERSION_TEXT": "2026.1"}, "2026.1"),  # pycuda has no __version__
    ({}, "unknown"),
])
def test_library_versions_are_read_from_version_attributes(attributes, expected):
    import types

    from pose_stream.benchmarking.environment import _version_of

    module = types.SimpleNamespace(**attributes)
    assert _version_of(module, "no-such-distribution-pose-stream") == expected


def test_library_version_falls_back_to_the_distribution_metadata():
    import importlib.metadata
    import types

    from pose_stream.benchmarking.environment import _version_of

    assert _version_of(types.SimpleNamespace(), "numpy") == importlib.metadata.version("numpy")
