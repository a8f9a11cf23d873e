"""`pose-stream bench`: report format, refusals, the reference-style baseline, a tiny end-to-end run."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from pose_stream.benchmarking.baseline import BaselineConfig, ReferenceStyleBaseline
from pose_stream.benchmarking.hungarian import munkres_assignment
from pose_stream.benchmarking.report import STAGE_COLUMNS, SUMMARY_COLUMNS
from pose_stream.benchmarking.synthetic import make_people, render_outputs
from pose_stream.cli.main import main
from pose_stream.joints import COCO, CROWDPOSE
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


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("joint_set", [COCO, CROWDPOSE], ids=["coco", "crowdpose"])
def test_baseline_decodes_rendered_people(rng, flip, joint_set):
    size = (384, 256)
    people = np.concatenate([make_people(1, (110, 230), joint_set, rng) + (10 + 125 * i, 10) for i in range(3)])
    outputs = render_outputs(people, size, joint_set)
    flipped = render_outputs(people, size, joint_set, flipped=True) if flip else None
    baseline = ReferenceStyleBaseline(build_model("tiny_w8"), BaselineConfig(256, flip, joint_set))
    poses = baseline.decode_outputs(outputs, flipped, size)
    assert len(poses) == 3 and poses.num_joints == joint_set.num_joints
    for person in people:
        error = np.abs(poses.keypoints[:, :, :2] - person).max(axis=(1, 2)).min()
        assert error <= 0.5
    assert np.all(poses.scores > 0.9)


def test_bench_reports_table_json_and_png(tmp_path, monkeypatch, capsys):
    import fake_estimator

    fake_estimator.install(monkeypatch)
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
    assert {r["kind"] for r in rows} == {"engine-only", "end-to-end", "baseline"}
    for row in rows:
        assert {"backend", "precision", "device", "input_hw", "batch", "flip", "people", "fps", "stages"} <= set(row)
    e2e = [r for r in rows if r["kind"] == "end-to-end" and r["batch"] == 1]
    assert len(e2e) == 4 and all(r["fps"] > 0 for r in e2e)
    assert set(e2e[0]["stages"]) == {"read", "prepare", "infer", "decode"}
    for stage in e2e[0]["stages"].values():
        assert stage["count"] == 3 and stage["p99_ms"] >= stage["median_ms"] > 0
    baseline = [r for r in rows if r["kind"] == "baseline"]
    assert [r["people"] for r in baseline] == [0, 2]
    assert set(baseline[0]["stages"]) == {"read", "prepare", "infer", "aggregate", "group"}
    summary = report["summary"]
    assert len(summary) == 2 * 2 * 2  # backends x batches x people
    first = next(s for s in summary if s["batch"] == 1)
    assert first["speedup_vs_baseline"] == pytest.approx(first["e2e_fps"] / first["baseline_fps"])
    assert first["e2e_over_engine"] == pytest.approx(first["e2e_fps"] / first["engine_fps"])
    assert (tmp_path / "pose-stream-bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_without_the_estimator_still_times_engine_and_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pose_stream.estimator", None)  # import fails as if the module were absent
    code = main(["bench", "--backend", "onnxruntime", "--people", "1", "--flip", "off", "--decode-input", "network",
                 "--output-dir", str(tmp_path), *TINY])
    assert code == 0
    rows = json.loads((tmp_path / "pose-stream-bench.json").read_text())["rows"]
    by_kind = {r["kind"]: r for r in rows}
    assert by_kind["engine-only"]["fps"] > 0 and by_kind["baseline"]["fps"] > 0
    assert by_kind["end-to-end"]["fps"] is None and "pose_stream.estimator" in by_kind["end-to-end"]["note"]
    assert "pose_stream.estimator is not available" in capsys.readouterr().out


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


@pytest.mark.parametrize("argv, message", [
    (["--backend", "caffe"], "unknown backend 'caffe'"),
    pytest.param(["--backend", "torch-fp16"], "backend torch-fp16 is not available here",
                 marks=pytest.mark.skipif(not _no_cuda(), reason="this machine has a GPU")),
    (["--input-size", "100x96"], "bad input size '100x96'"),
    (["--input-size", "480x960"], "bad input size 480x960"),
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
