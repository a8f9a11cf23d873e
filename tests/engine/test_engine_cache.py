"""Engine cache, sidecars, shape profiles and the FP16 accuracy metrics: everything of the TensorRT path
that needs no TensorRT, so it runs on every machine."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging

import numpy as np
import pytest

from pose_stream.engine import engine_cache as ec
from pose_stream.engine.accuracy import AccuracyLimits, compare_pose_outputs, synthetic_frame
from pose_stream.engine.build_progress import BuildProgress
from pose_stream.engine.ort_providers import gpu_providers, tensorrt_provider, uses_fp16
from pose_stream.engine.profiles import ShapeProfile, onnx_input_spec, parse_batch_range, profiles_for
from pose_stream.engine.trt_runtime import describe_parser_error, parser_errors
from pose_stream.errors import PoseStreamError

SHA_A = hashlib.sha256(b"model a").hexdigest()
SHA_B = hashlib.sha256(b"model b").hexdigest()


def make_spec(**changes) -> ec.EngineSpec:
    fields = dict(
        onnx_sha256=SHA_A, tensorrt_version="10.9.0.34", gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability=(9, 0), precision="fp16",
        profiles=(ShapeProfile.for_size(512, 960, (1, 2)),),
    )
    fields.update(changes)
    return ec.EngineSpec(**fields)


def make_metadata(spec: ec.EngineSpec, plan: bytes) -> ec.EngineMetadata:
    return ec.EngineMetadata(
        spec=spec, plan_sha256=hashlib.sha256(plan).hexdigest(), onnx_path="/models/w32.onnx", input_name="input",
        output_names=("out0", "out1"), build_seconds=12.5, built_at=ec.utc_now(), pose_stream_version="0.1.0",
    )


# -- shape profiles ---------------------------------------------------------------------------------
def test_shape_profile_validates_and_describes():
    p = ShapeProfile.for_size(512, 960, (1, 8))
    assert p.min == (1, 3, 512, 960) and p.opt == (8, 3, 512, 960) and p.max == (8, 3, 512, 960)
    assert p.describe() == "1..8x3x512x960"
    assert p.contains((4, 3, 512, 960)) and not p.contains((9, 3, 512, 960)) and not p.contains((1, 3, 512, 512))
    assert ShapeProfile.from_json(json.loads(json.dumps(p.to_json()))) == p
    assert ShapeProfile.fixed((1, 3, 64, 96)).describe() == "1x3x64x96"
    with pytest.raises(ValueError, match="min <= opt <= max"):
        ShapeProfile((2, 3, 64, 64), (1, 3, 64, 64), (4, 3, 64, 64))
    with pytest.raises(ValueError, match="3 channels"):
        ShapeProfile.fixed((1, 4, 64, 64))
    with pytest.raises(ValueError, match="multiples of 32"):
        ShapeProfile.fixed((1, 3, 64, 70))


def test_parse_batch_range():
    assert parse_batch_range("1-8") == (1, 8)
    assert parse_batch_range("4") == (4, 4)
    for bad in ("0-2", "3-1", "a", "1-2-3"):
        with pytest.raises(PoseStreamError, match="batch range"):
            parse_batch_range(bad)


def test_profiles_for_static_and_dynamic_models():
    static = (1, 3, 512, 960)
    assert profiles_for(static) == (ShapeProfile.fixed(static),)
    with pytest.raises(PoseStreamError, match="fixed batch of 1"):
        profiles_for(static, batch=(1, 8))
    with pytest.raises(PoseStreamError, match="fixed input of 512x960"):
        profiles_for(static, sizes=[(512, 512)])
    dynamic = (None, 3, None, None)
    with pytest.raises(PoseStreamError, match="--input-size"):
        profiles_for(dynamic)
    got = profiles_for(dynamic, sizes=[(512, 960), (512, 512), (512, 960)], batch=(1, 2))
    assert [p.describe() for p in got] == ["1..2x3x512x960", "1..2x3x512x512"]  # one per size, no duplicate
    with pytest.raises(PoseStreamError, match="multiples of 32"):
        profiles_for(dynamic, sizes=[(500, 960)])


def test_onnx_input_spec_reads_dynamic_dims(tiny_onnx, tmp_path):
    assert onnx_input_spec(tiny_onnx) == ("input", (None, 3, None, None))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(PoseStreamError, match="cannot read ONNX model"):
        onnx_input_spec(junk)


# -- spec, sidecar, atomic writes ---------------------------------------------------------------------
def test_spec_key_is_stable_and_covers_every_field():
    base = make_spec()
    assert base.key() == make_spec().key()
    variants = [
        make_spec(onnx_sha256=SHA_B), make_spec(tensorrt_version="10.10.0"), make_spec(gpu_name="NVIDIA A10"),
        make_spec(compute_capability=(8, 6)), make_spec(precision="fp32"),
        make_spec(profiles=(ShapeProfile.for_size(512, 960, (1, 4)),)),
    ]
    keys = {v.key() for v in variants}
    assert len(keys) == len(variants) and base.key() not in keys
    assert ec.EngineSpec.from_json(json.loads(json.dumps(base.to_json()))) == base
    with pytest.raises(ValueError, match="precision"):
        make_spec(precision="int8")
    with pytest.raises(ValueError, match="64 hex"):
        make_spec(onnx_sha256="abc")


def test_sidecar_round_trip_and_errors(tmp_path):
    plan = b"\x00plan bytes\x01" * 100
    engine = tmp_path / "m.plan"
    metadata = make_metadata(make_spec(), plan)
    ec.write_engine(engine, plan, metadata)
    assert engine.read_bytes() == plan
    assert ec.sidecar_path(engine) == tmp_path / "m.plan.json"
    assert ec.read_sidecar(engine) == metadata
    fields = json.loads(ec.sidecar_path(engine).read_text())
    for key in ("tensorrt_version", "gpu_name", "compute_capability", "precision", "profiles", "onnx_sha256", "built_at"):
        assert key in fields
    assert ec.read_sidecar(tmp_path / "other.plan") is None
    ec.sidecar_path(engine).write_text("{ truncated")
    with pytest.raises(PoseStreamError, match="unreadable engine sidecar"):
        ec.read_sidecar(engine)
    with pytest.raises(ValueError, match="plan_sha256"):
        ec.write_engine(engine, plan + b"x", metadata)


def test_crash_between_plan_and_sidecar_is_a_miss(tmp_path, monkeypatch):
    engine = tmp_path / "m.plan"
    old_plan, new_plan = b"old plan", b"new plan"
    ec.write_engine(engine, old_plan, make_metadata(make_spec(), old_plan))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ec, "write_sidecar", crash)
    with pytest.raises(KeyboardInterrupt):
        ec.write_engine(engine, new_plan, make_metadata(make_spec(onnx_sha256=SHA_B), new_plan))
    monkeypatch.undo()
    # The old sidecar must not vouch for the new plan.
    decision = ec.decide(engine, make_spec())
    assert not decision.reuse and "no sidecar" in decision.reason


# -- the rebuild decision ---------------------------------------------------------------------------
@pytest.mark.parametrize("change, expected", [
    (dict(onnx_sha256=SHA_B), "ONNX model changed"),
    (dict(gpu_name="NVIDIA GeForce RTX 4090", compute_capability=(8, 9)), "GPU changed"),
    (dict(tensorrt_version="10.10.0.31"), "TensorRT changed"),
    (dict(precision="fp32"), "precision changed"),
    (dict(profiles=(ShapeProfile.for_size(512, 512),)), "input shapes changed"),
])
def test_changed_inputs_force_a_rebuild(tmp_path, change, expected):
    engine = tmp_path / "m.plan"
    plan = b"plan"
    ec.write_engine(engine, plan, make_metadata(make_spec(), plan))
    assert ec.decide(engine, make_spec()).reuse
    decision = ec.decide(engine, make_spec(**change))
    assert not decision.reuse
    assert expected in decision.reason
    assert "\n" not in decision.reason


def test_cache_hit_miss_and_corrupt_plans(tmp_path):
    cache = ec.EngineCache(tmp_path)
    spec = make_spec()
    path = cache.path_for(spec, "w32 model")
    assert path.parent == tmp_path and path.name.startswith("w32_model-fp16-") and path.suffix == ".plan"
    assert cache.path_for(make_spec(onnx_sha256=SHA_B), "w32 model") != path
    first = cache.decide(spec, "w32 model")
    assert not first.reuse and "no engine" in first.reason

    plan = b"serialized engine"
    ec.write_engine(path, plan, make_metadata(spec, plan))
    loaded = []
    hit = cache.decide(spec, "w32 model", load_check=loaded.append)
    assert hit.reuse and loaded == [plan] and hit.metadata.spec == spec

    def refuse(blob: bytes) -> None:
        raise PoseStreamError("Serialization assertion magicTagRead == kMAGIC_TAG failed.\nmore detail")

    miss = cache.decide(spec, "w32 model", load_check=refuse)
    assert not miss.reuse
    assert "failed to deserialize" in miss.reason and "magicTagRead" in miss.reason and "\n" not in miss.reason

    path.write_bytes(b"serialized engine, truncated or edited")
    changed = cache.decide(spec, "w32 model", load_check=loaded.append)
    assert not changed.reuse and "hash" in changed.reason

    ec.sidecar_path(path).write_text("[]")
    assert "unreadable" in cache.decide(spec, "w32 model").reason


def test_timing_cache_is_per_tensorrt_and_gpu(tmp_path):
    cache = ec.EngineCache(tmp_path)
    a = cache.timing_cache_path("10.9.0", "NVIDIA H100 80GB HBM3", (9, 0))
    assert a.name == "trt10.9.0-nvidia-h100-80gb-hbm3-sm90.cache"
    assert a != cache.timing_cache_path("10.9.0", "NVIDIA A10", (8, 6))
    assert a != cache.timing_cache_path("10.10.0", "NVIDIA H100 80GB HBM3", (9, 0))


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("POSE_STREAM_CACHE", str(tmp_path / "explicit"))
    assert ec.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("POSE_STREAM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ec.default_cache_dir() == tmp_path / "xdg" / "pose-stream"
    assert ec.EngineCache().root == tmp_path / "xdg" / "pose-stream" / "engines"


def test_engine_compatibility_check(tmp_path, caplog):
    metadata = make_metadata(make_spec(), b"plan")
    ec.check_engine_compatibility(metadata, "m.plan", "10.9.0.34", "NVIDIA H100 80GB HBM3", (9, 0))
    with pytest.raises(PoseStreamError) as err:
        ec.check_engine_compatibility(metadata, "m.plan", "10.10.0.31", "NVIDIA H100 80GB HBM3", (9, 0))
    message = str(err.value)
    assert "TensorRT 10.9.0.34" in message and "10.10.0.31" in message and "build-engine --onnx /models/w32.onnx" in message
    with pytest.raises(PoseStreamError, match=r"sm_90 \(this GPU is NVIDIA A10 sm_86\)"):
        ec.check_engine_compatibility(metadata, "m.plan", "10.9.0.34", "NVIDIA A10", (8, 6))
    with caplog.at_level(logging.WARNING):
        ec.check_engine_compatibility(metadata, "m.plan", "10.9.0.34", "NVIDIA H100 PCIe", (9, 0))
        ec.check_engine_compatibility(None, "m.plan", "10.9.0.34", "NVIDIA H100 PCIe", (9, 0))
    assert "same compute capability" in caplog.text and "no sidecar" in caplog.text


# -- accuracy metrics -------------------------------------------------------------------------------
def fake_outputs(rng: np.random.Generator, n: int = 2, k: int = 5, h: int = 16, w: int = 24) -> list[np.ndarray]:
    """Heatmaps with one clear Gaussian peak per joint (at random places) on low noise; random tags."""
    yy, xx = np.mgrid[0:h, 0:w]
    heat = rng.normal(0, 0.01, size=(n, k, h, w))
    for i in range(n):
        for j in range(k):
            cy, cx = rng.integers(2, h - 2), rng.integers(2, w - 2)
            heat[i, j] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
    tags = rng.normal(0, 1, size=(n, k, h, w))
    out0 = np.concatenate([heat, tags], axis=1).astype(np.float32)
    up = np.repeat(np.repeat(heat, 2, axis=2), 2, axis=3)
    out1 = (up + rng.normal(0, 0.01, size=up.shape)).astype(np.float32)
    return [out0, out1]


def test_identical_and_slightly_noisy_outputs_pass():
    rng = np.random.default_rng(1)
    ref = fake_outputs(rng)
    same = compare_pose_outputs([r.copy() for r in ref], ref, num_joints=5)
    assert same.passed and same.heatmap_max_error == 0 and same.peak_agreement == 1.0 and same.tag_drift == 0
    noisy = [r + rng.normal(0, 1e-4, r.shape).astype(np.float32) for r in ref]
    report = compare_pose_outputs(noisy, ref, num_joints=5)
    assert report.passed, report.summary()
    assert 0 < report.heatmap_max_error < 1e-3 and report.peak_agreement == 1.0
    strict = compare_pose_outputs(noisy, ref, num_joints=5, limits=AccuracyLimits(heatmap_relative=1e-6))
    assert not strict.passed and "limit 1e-06" in strict.summary()
    with pytest.raises(ValueError, match="min_peak_agreement"):
        AccuracyLimits(min_peak_agreement=1.5)


def test_drift_in_one_output_is_named():
    rng = np.random.default_rng(2)
    ref = fake_outputs(rng)
    got = [r.copy() for r in ref]
    got[1] = got[1] + rng.normal(0, 0.05, got[1].shape).astype(np.float32)
    report = compare_pose_outputs(got, ref, num_joints=5)
    assert not report.passed
    assert any("out1 heatmaps" in f for f in report.failures) and report.drifted == ("out1 heatmaps",)
    assert not any("out0" in f for f in report.failures)
    assert "DRIFT" in report.summary() and "out1 heatmaps" in report.summary()
    assert report.to_json()["passed"] is False


def test_moved_peaks_and_tag_drift_are_detected():
    rng = np.random.default_rng(3)
    ref = fake_outputs(rng, n=1, k=4)
    moved = [r.copy() for r in ref]
    moved[0][:, :4] = np.roll(moved[0][:, :4], 3, axis=3)  # every out0 peak 3 px to the right
    report = compare_pose_outputs(moved, ref, num_joints=4)
    assert report.peak_agreement == 0.0
    assert any("keep their top peak" in f and "out0 heatmaps" in f for f in report.failures)

    drifted = [r.copy() for r in ref]
    drifted[0][:, 4:] += 0.5  # tags shifted by half a unit everywhere, heatmaps untouched
    report = compare_pose_outputs(drifted, ref, num_joints=4)
    assert report.tag_drift == pytest.approx(0.5, rel=1e-5)
    assert [f for f in report.failures if "tags" in f] and not [f for f in report.failures if "heatmaps" in f]
    assert report.drifted == ("out0 tags",)


def test_near_tied_peaks_are_not_disagreements():
    ref = np.zeros((1, 1, 8, 8), dtype=np.float32)
    ref[0, 0, 2, 2], ref[0, 0, 6, 6] = 1.0, 0.9995  # two peaks equal at FP16 precision
    got = ref.copy()
    got[0, 0, 6, 6] = 1.0005
    out0 = np.concatenate([ref, np.zeros_like(ref)], axis=1)
    out0_got = np.concatenate([got, np.zeros_like(got)], axis=1)
    up, up_got = (np.repeat(np.repeat(x, 2, axis=2), 2, axis=3) for x in (ref, got))
    report = compare_pose_outputs([out0_got, up_got], [out0, up], num_joints=1)
    assert report.peak_agreement == 1.0 and report.passed


def test_compare_rejects_mismatched_shapes():
    ref = fake_outputs(np.random.default_rng(4))
    with pytest.raises(ValueError, match="shape"):
        compare_pose_outputs([ref[0][:1], ref[1]], ref, num_joints=5)
    with pytest.raises(ValueError, match="2K and K"):
        compare_pose_outputs(ref, ref, num_joints=4)


def test_synthetic_frame_is_normalised_and_deterministic():
    a = synthetic_frame(64, 96, seed=0)
    assert a.shape == (1, 3, 64, 96) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, synthetic_frame(64, 96, seed=0))
    assert not np.array_equal(a, synthetic_frame(64, 96, seed=1))
    assert -2.2 <= a.min() and a.max() <= 2.7  # inside the range of normalised 8-bit pixels
    assert a.std() > 0.3  # structure, not a flat image


# -- parser errors, progress, ORT provider options ----------------------------------------------------
def test_parser_errors_name_the_node():
    assert describe_parser_error("Unsupported op", 12, "Resize_7", "Resize") == "node #12 'Resize_7' (Resize): Unsupported op"
    assert describe_parser_error("bad graph\n  input", -1) == "(graph) bad graph input"

    class Error:
        def __init__(self, desc, node, name):
            self._desc, self._node, self._name = desc, node, name

        def desc(self):
            return self._desc

        def node(self):
            return self._node

        def node_name(self):
            return self._name

        def node_operator(self):
            return "Conv"

    class Parser:
        errors = [Error("weights missing", 3, "Conv_3"), Error("shape", 4, "")]
        num_errors = 2

        def get_error(self, i):
            return self.errors[i]

    assert parser_errors(Parser()) == ["node #3 'Conv_3' (Conv): weights missing", "node #4 (Conv): shape"]


def test_build_progress_tracks_nested_phases_and_cancels():
    out = io.StringIO()
    progress = BuildProgress(enabled=True, file=out)
    progress.phase_start("Building engine", None, 3)
    progress.phase_start("Tactic selection", "Building engine", 2)
    assert progress._bars["Tactic selection"][1] == 1  # nested one level deeper
    assert progress.step_complete("Tactic selection", 0) and progress.step_complete("Tactic selection", 1)
    assert progress._bars["Tactic selection"][0].n == 2
    progress.phase_finish("Tactic selection")
    progress.cancel()
    assert progress.step_complete("Building engine", 0) is False
    progress.phase_finish("Building engine")
    progress.close()
    assert "Building engine" in out.getvalue() and progress.phases_seen == ["Building engine", "Tactic selection"]


def test_tensorrt_provider_options(tmp_path):
    name, options = tensorrt_provider(fp16=True, cache_dir=tmp_path / "ort", workspace_gb=2)
    assert name == "TensorrtExecutionProvider"
    assert options["trt_fp16_enable"] is True and options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(tmp_path / "ort") and (tmp_path / "ort").is_dir()
    assert options["trt_timing_cache_enable"] is True and options["trt_max_workspace_size"] == 2 << 30
    assert gpu_providers({"CPUExecutionProvider"}) == ["CPUExecutionProvider"]
    full = gpu_providers({"TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"},
                         cache_dir=tmp_path / "ort")
    assert [p if isinstance(p, str) else p[0] for p in full] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert uses_fp16({"TensorrtExecutionProvider": {"trt_fp16_enable": "1"}})
    assert not uses_fp16({"TensorrtExecutionProvider": {"trt_fp16_enable": "0"}, "CPUExecutionProvider": {}})
    assert not uses_fp16({})


# -- the command line, where TensorRT is absent -------------------------------------------------------
def test_build_engine_cli_errors_are_one_line(tiny_onnx, tmp_path, capsys):
    from pose_stream._optional import available
    from pose_stream.cli.main import main

    assert main(["build-engine", "--onnx", str(tmp_path / "missing.onnx")]) == 1
    assert capsys.readouterr().err.strip() == f"pose-stream: error: ONNX model not found: {tmp_path / 'missing.onnx'}"
    assert main(["build-engine", "--onnx", str(tiny_onnx), "--batch", "1-2"]) == 1
    assert "--input-size" in capsys.readouterr().err
    if available("tensorrt"):
        pytest.skip("tensorrt is installed: the missing-extra message cannot be shown")
    assert main(["build-engine", "--onnx", str(tiny_onnx), "--input-size", "64x96", "-o", str(tmp_path / "m.plan")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("pose-stream: error: building a TensorRT engine needs the 'tensorrt' package, which is not "
                       "installed: pip install 'pose-stream[gpu]'")
    assert not (tmp_path / "m.plan").exists()


def test_build_engine_help_has_examples(capsys):
    from pose_stream.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["build-engine", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--input-size 512x960" in text and "--batch 1-2" in text


def test_metadata_records_accuracy_without_changing_identity():
    metadata = make_metadata(make_spec(), b"plan")
    with_accuracy = dataclasses.replace(metadata, accuracy={"1x3x512x960": {"passed": True}})
    assert with_accuracy == metadata  # accuracy is a note, not part of what the plan is
    assert ec.EngineMetadata.from_json(with_accuracy.to_json()).accuracy == {"1x3x512x960": {"passed": True}}
