"""Aggregation and candidates: the NumPy reference against torch, and every fast path against the reference.

Random inputs are fresh per run; the seed is in every assertion message, so a failure can be replayed.
GPU tests (marked `gpu`) run the CUDA kernels through pycuda and/or CuPy where a GPU is present.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emulated_cuda import EmulatedDriver
from pose_stream.errors import PoseStreamError
from pose_stream.joints import COCO, CROWDPOSE
from pose_stream.decoding.aggregate_numba import aggregate_numba
from pose_stream.decoding.nms_numba import top_k_numba
from pose_stream.decoding.bilinear_numba import fma as _fma
from pose_stream.decoding.aggregate_ref import (
    ScaleOutputs,
    aggregate_maps,
    aggregate_reference,
    axis_weights,
    fma32,
    refine_peaks,
    resize_bilinear,
    suppress_non_maxima,
    top_candidates,
)
from pose_stream.decoding.types import AggregatedMaps

FIELDS = ("x", "y", "value", "tags", "neighbours")


class SeededRng:
    """A numpy Generator that remembers its seed (for the assertion messages)."""

    def __init__(self) -> None:
        self.seed = int(np.random.SeedSequence().entropy % 2**32)
        self._generator = np.random.default_rng(self.seed)

    def __getattr__(self, name):
        return getattr(self._generator, name)


@pytest.fixture
def rng():
    return SeededRng()


def random_scale(rng, k, hw, flip, factor=1.0, scale=1.0):
    h, w = hw

    def outputs():
        return (
            (rng.standard_normal((2 * k, h // 4, w // 4)) * scale).astype(np.float32),
            (rng.standard_normal((k, h // 2, w // 2)) * scale).astype(np.float32),
        )

    return ScaleOutputs(outputs(), outputs() if flip else None, factor)


def multi_scale(rng, k, base_hw, flip, factors=(2.0, 1.0, 0.5)):
    return [random_scale(rng, k, (int(base_hw[0] * f), int(base_hw[1] * f)), flip, f) for f in factors]


def assert_candidates_equal(a, b, message):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{name}: {message}")


# ------------------------------------------------------------------------------------------ arithmetic


def test_fma32_is_a_single_rounding(rng):
    @__import__("numba").njit
    def hardware_fma(a, b, c, out):
        for i in range(a.size):
            out[i] = _fma(a[i], b[i], c[i])

    n = 200_000
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    cases = {
        "random": rng.standard_normal(n).astype(np.float32),
        "tiny addend": (rng.standard_normal(n) * 1e-9).astype(np.float32),
        "cancellation": (-(a.astype(np.float64) * b)).astype(np.float32),
    }
    # halfway products: a * 1.5 with 25 significant bits, nudged by an addend far below float32 precision
    halfway_a = (rng.integers(1 << 23, 1 << 24, n) * 2.0**-23).astype(np.float32)
    for name, (x, y, z) in {
        **{key: (a, b, c) for key, c in cases.items()},
        "halfway": (halfway_a, np.full(n, 1.5, np.float32), (rng.choice([-1, 1], n) * 2.0**-60).astype(np.float32)),
    }.items():
        expected = np.empty(n, np.float32)
        hardware_fma(x, y, z, expected)
        np.testing.assert_array_equal(fma32(x, y, z), expected, err_msg=f"{name}, seed {rng.seed}")


@pytest.mark.parametrize(
    "shape, out_hw",
    [
        ((17, 64, 120), (128, 240)),  # 2x, the network's upsampling
        ((34, 32, 48), (64, 96)),  # out0 of a 128x192 input
        ((17, 32, 48), (128, 192)),  # 4x (scale 0.5 projected)
        ((17, 40, 70), (128, 192)),  # non-integer ratios
        ((17, 300, 200), (128, 100)),  # downsampling
        ((17, 64, 96), (64, 96)),  # identity (scale 2 projected)
    ],
)
def test_resize_bilinear_equals_torch(rng, shape, out_hw):
    maps = rng.standard_normal(shape).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(maps)[None], size=out_hw, mode="bilinear", align_corners=False)[0]
    np.testing.assert_array_equal(resize_bilinear(maps, out_hw), expected.numpy(), err_msg=f"seed {rng.seed}")


def test_resize_bilinear_small_outputs_within_rounding_of_torch(rng):
    # torch's CPU build switches to a differently ordered kernel when out_h + out_w <= 128; the reference
    # (a GPU run) never does. The difference is rounding only.
    maps = rng.standard_normal((17, 16, 24)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(maps)[None], size=(32, 48), mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(resize_bilinear(maps, (32, 48)), expected.numpy(), rtol=0, atol=1e-6)


def test_axis_weights_sample_torch_positions():
    w = axis_weights(4, 8)
    np.testing.assert_array_equal(w.i0, [0, 0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(w.i1, [1, 1, 1, 2, 2, 3, 3, 3])
    # past the last source pixel torch keeps the fractional weight and clamps the index: 0.75 x3 + 0.25 x3
    np.testing.assert_array_equal(w.l1, [0, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25])


# ------------------------------------------------------------------------- reference vs torch pipeline


def torch_aggregate(scales, flip_index, base_hw):
    """The published test pipeline (get_multi_stage_outputs + aggregate_results, PROJECT2IMAGE on), in torch."""
    k = scales[0].num_joints
    size = tuple(base_hw)
    final, tags_list = None, []
    ordered = sorted(scales, key=lambda s: -s.factor)
    for scale in ordered:
        heatmaps, tags = [], []
        for outputs, flipped in ((scale.outputs, False), (scale.flipped, True)):
            if outputs is None:
                continue
            out0, out1 = (torch.from_numpy(o)[None] for o in outputs)
            out0 = F.interpolate(out0, size=out1.shape[2:], mode="bilinear", align_corners=False)
            if flipped:
                out0, out1 = torch.flip(out0, [3]), torch.flip(out1, [3])
                out0 = torch.cat([out0[:, :k][:, flip_index], out0[:, k:][:, flip_index]], 1)
                out1 = out1[:, flip_index]
            heat = 0
            heat += out0[:, :k]
            heat += out1
            heatmaps.append(heat / 2)
            tags.append(out0[:, k:])
        heatmaps = [F.interpolate(h, size=size, mode="bilinear", align_corners=False) for h in heatmaps]
        tags = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in tags]
        if scale.factor == 1 or len(scales) == 1:
            tags_list += [torch.unsqueeze(t, dim=4) for t in tags]
        average = (heatmaps[0] + heatmaps[1]) / 2.0 if len(heatmaps) == 2 else heatmaps[0]
        final = average if final is None else final + average
    final = final / float(len(scales))
    return final[0].numpy(), torch.cat(tags_list, dim=4)[0].numpy()


@pytest.mark.parametrize("flip", [False, True])
def test_aggregate_maps_equal_torch_single_scale(rng, flip):
    scales = [random_scale(rng, 17, (128, 192), flip)]
    heat, tags = torch_aggregate(scales, COCO.flip_index, (128, 192))
    maps = aggregate_maps(scales, COCO.flip_index, (128, 192))
    np.testing.assert_array_equal(maps.heatmaps, heat, err_msg=f"seed {rng.seed}")
    np.testing.assert_array_equal(maps.tags, tags, err_msg=f"seed {rng.seed}")
    assert maps.tags.shape[-1] == (2 if flip else 1)


def test_aggregate_maps_equal_torch_multi_scale(rng):
    # every resize here has out_h + out_w > 128 (torch's generic kernel, see above); scale-1 tags only
    scales = multi_scale(rng, 14, (256, 320), True)
    heat, tags = torch_aggregate(scales, CROWDPOSE.flip_index, (256, 320))
    maps = aggregate_maps(scales[::-1], CROWDPOSE.flip_index, (256, 320))  # any order in, reference order used
    np.testing.assert_array_equal(maps.heatmaps, heat, err_msg=f"seed {rng.seed}")
    np.testing.assert_array_equal(maps.tags, tags, err_msg=f"seed {rng.seed}")
    assert maps.tags.shape[-1] == 2


def test_top_candidates_equal_torch_topk_on_distinct_values(rng):
    maps = aggregate_maps([random_scale(rng, 17, (64, 96), True)], COCO.flip_index, (64, 96))
    det = torch.from_numpy(maps.heatmaps)[None]
    kept = det * torch.eq(F.max_pool2d(det, 5, 1, 2), det).float()
    values, index = kept.view(1, 17, -1).topk(30, dim=2)
    candidates = top_candidates(maps)
    np.testing.assert_array_equal(candidates.value, values[0].numpy())
    positive = values[0].numpy() > 0  # ties exist only among suppressed zeros, whose order torch leaves open
    np.testing.assert_array_equal((candidates.y * 96 + candidates.x)[positive], index[0].numpy()[positive])


# ------------------------------------------------------------------------------------- NMS and ties


def test_nms_keeps_every_pixel_of_a_plateau():
    heat = np.zeros((1, 12, 12), np.float32)
    heat[0, 3:6, 4:7] = 0.75  # a 3x3 plateau
    heat[0, 9, 9] = 0.5
    heat[0, 9, 10] = 0.25  # suppressed by its neighbour
    maps = AggregatedMaps(heat, np.zeros((1, 12, 12, 1), np.float32))
    expected = [(y, x) for y in range(3, 6) for x in range(4, 7)] + [(9, 9)]
    for flat, value in zip(*top_k_numba(heat, 30)):
        got = [divmod(int(i), 12) for i in flat[:10]]
        assert got == expected and value[9] == 0.5 and not value[10:].any()
    candidates = top_candidates(maps, 30)
    assert list(zip(candidates.y[0, :10], candidates.x[0, :10])) == expected
    # the rest are zeros in flat-index order: suppressed pixels count as 0, ties by lower index
    zeros = [i for i in range(144) if i not in {y * 12 + x for y, x in expected}][:20]
    assert (candidates.y[0, 10:] * 12 + candidates.x[0, 10:]).tolist() == zeros


def test_nms_and_ties_numba_equal_reference_on_quantised_maps(rng):
    # values on a coarse grid make plateaus, equal peaks and runs of zeros everywhere
    heat = (rng.integers(-2, 5, (17, 40, 56)) / 4).astype(np.float32)
    heat[3] = 0.0
    heat[4] = -1.0
    heat[5, ::7, ::5] = 2.0
    maps = AggregatedMaps(heat, np.zeros((17, 40, 56, 1), np.float32))
    for kernel in (1, 3, 5, 7):
        for people in (1, 30):
            ref = top_candidates(maps, people, kernel)
            index, value = top_k_numba(heat, people, kernel)
            message = f"kernel {kernel}, people {people}, seed {rng.seed}"
            np.testing.assert_array_equal(value, ref.value, err_msg=message)
            np.testing.assert_array_equal(index, ref.y * 56 + ref.x, err_msg=message)


def test_suppressed_values_are_positive_zero():
    heat = np.array([[[-0.0, -1.0, -2.0], [-3.0, -0.5, -4.0]]], np.float32)
    kept = suppress_non_maxima(heat, 3)
    assert not np.signbit(kept[kept == 0]).any()


# --------------------------------------------------------------------------------- numba == reference


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("joint_set", [COCO, CROWDPOSE], ids=["coco", "crowdpose"])
@pytest.mark.parametrize("n_scales", [1, 3])
def test_numba_equals_reference(rng, flip, joint_set, n_scales):
    k, base = joint_set.num_joints, (64, 96)
    if n_scales == 1:
        scales = [random_scale(rng, k, base, flip, scale=0.3)]
    else:
        scales = multi_scale(rng, k, base, flip)
    ref_candidates, ref_maps = aggregate_reference(scales, joint_set.flip_index, base)
    result = aggregate_numba(scales, joint_set.flip_index, base)
    message = f"flip {flip}, {n_scales} scale(s), seed {rng.seed}"
    assert_candidates_equal(result.candidates, ref_candidates, message)
    maps = result.maps()
    np.testing.assert_array_equal(maps.heatmaps, ref_maps.heatmaps, err_msg=message)
    np.testing.assert_array_equal(maps.tags, ref_maps.tags, err_msg=message)


def test_numba_equals_reference_on_plateaus(rng):
    # inputs on a grid of quarters: every bilinear weight is a quarter, so aggregated maps are exact and flat
    def blocky(c, h, w):
        return np.kron(rng.integers(-1, 4, (c, h // 4, w // 4)), np.ones((1, 4, 4))).astype(np.float32) / 4

    outputs = (blocky(34, 16, 24), blocky(17, 32, 48))
    flipped = (blocky(34, 16, 24), blocky(17, 32, 48))
    scales = [ScaleOutputs(outputs, flipped)]
    ref_candidates, ref_maps = aggregate_reference(scales, COCO.flip_index, (64, 96))
    assert (ref_candidates.value[:, :-1] == ref_candidates.value[:, 1:]).any(), "the test needs ties"
    result = aggregate_numba(scales, COCO.flip_index, (64, 96))
    assert_candidates_equal(result.candidates, ref_candidates, f"seed {rng.seed}")


@pytest.mark.slow
def test_numba_equals_reference_at_512x960(rng):
    scales = [random_scale(rng, 17, (512, 960), True, scale=0.1)]
    ref_candidates, ref_maps = aggregate_reference(scales, COCO.flip_index, (512, 960))
    buffer = np.empty((17, 512, 960), np.float32)
    result = aggregate_numba(scales, COCO.flip_index, (512, 960), heatmaps_out=buffer)
    assert result.heatmaps is buffer
    assert_candidates_equal(result.candidates, ref_candidates, f"seed {rng.seed}")
    np.testing.assert_array_equal(result.heatmaps, ref_maps.heatmaps, err_msg=f"seed {rng.seed}")


# -------------------------------------------------------------------------------------------- refine


def test_refine_numba_equals_reference(rng):
    scales = [random_scale(rng, 17, (64, 96), True)]
    _, maps = aggregate_reference(scales, COCO.flip_index, (64, 96))
    result = aggregate_numba(scales, COCO.flip_index, (64, 96))
    candidates = result.candidates
    # persons near real tags (score dominated by the heatmap), far ones, and a tie-prone exact tag
    mean_tags = np.concatenate(
        [candidates.tags[:, 0], rng.standard_normal((5, 2)).astype(np.float32) * 3, maps.tags[2, 7, 9][None]]
    )
    expected = refine_peaks(maps, mean_tags)
    got = result.refine(mean_tags)
    for name in ("x", "y", "value", "neighbours"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=f"seed {rng.seed}")
    assert result.refine(np.zeros((0, 2), np.float32)).x.shape == (0, 17)


def test_refine_takes_the_first_maximum(rng):
    heat = np.zeros((1, 6, 8), np.float32)
    heat[0, 2, 5] = heat[0, 4, 1] = heat[0, 1, 7] = 1.0  # equal peaks; (1, 7) comes first in row-major order
    maps = AggregatedMaps(heat, np.zeros((1, 6, 8, 1), np.float32))
    peaks = refine_peaks(maps, np.zeros((1, 1), np.float32))
    assert (peaks.y[0, 0], peaks.x[0, 0], peaks.value[0, 0]) == (1, 7, 1.0)
    np.testing.assert_array_equal(peaks.neighbours[0, 0], [heat[0, 1, 7], heat[0, 1, 6], heat[0, 2, 7], heat[0, 0, 7]])


# -------------------------------------------------------------------------------------------- errors


def test_bad_inputs_raise_one_line_errors(rng):
    good = random_scale(rng, 17, (64, 96), True)
    with pytest.raises(PoseStreamError, match="2K channels"):
        ScaleOutputs((good.outputs[0][:33], good.outputs[1]))
    with pytest.raises(PoseStreamError, match="differ in shape"):
        ScaleOutputs(good.outputs, (good.outputs[0][:, :8], good.outputs[1]))
    with pytest.raises(PoseStreamError, match="flip_index"):
        aggregate_maps([good], None, (64, 96))
    with pytest.raises(PoseStreamError, match="scale 1.0"):
        aggregate_maps([random_scale(rng, 17, (64, 96), True, 2.0), good.__class__(good.outputs, good.flipped, 0.5)],
                       COCO.flip_index, (64, 96))
    with pytest.raises(PoseStreamError, match="nms_kernel"):
        aggregate_numba([good], COCO.flip_index, (64, 96), nms_kernel=4)
    with pytest.raises(PoseStreamError, match="heatmaps_out"):
        aggregate_numba([good], COCO.flip_index, (64, 96), heatmaps_out=np.empty((17, 64, 95), np.float32))
    with pytest.raises(PoseStreamError, match="mean tags"):
        aggregate_numba([good], COCO.flip_index, (64, 96)).refine(np.zeros((3, 1), np.float32))
    batched = ScaleOutputs(tuple(o[None] for o in good.outputs))  # a leading batch of 1 is accepted
    assert batched.outputs[0].shape == good.outputs[0].shape


# -------------------------------------------------------------------------------------------- CUDA


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_cuda_source_compiles_to_ptx(tmp_path):
    from pose_stream.decoding.aggregate_cuda import COMPILE_OPTIONS, kernel_source

    source = tmp_path / "aggregate.cu"
    source.write_text(kernel_source())
    result = subprocess.run(
        ["nvcc", "-ptx", "-arch=compute_80", *COMPILE_OPTIONS, "-o", str(tmp_path / "aggregate.ptx"), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "aggregate.ptx").read_text()
    for kernel in ("half_res_pass", "project_heat", "nms_block_topk", "merge_candidates", "fill_u64",
                   "refine_argmax", "refine_finish"):
        assert f".entry {kernel}(" in ptx
    assert "fma.rn.f32" in ptx and "mad.f32" not in ptx


def run_cuda_aggregator(driver, upload, scales, flip_index, base_hw, mean_tags):
    """CudaAggregator on `scales` (ScaleOutputs whose arrays `upload(aggregator, array)` puts on the device,
    returning a pointer): candidates, refine peaks for `mean_tags`, heatmaps."""
    from pose_stream.decoding.aggregate_cuda import CudaAggregator, ScalePointers, ScaleShape

    shapes = [ScaleShape(s.quarter_hw, s.half_hw, s.factor) for s in scales]
    with CudaAggregator(scales[0].num_joints, base_hw, shapes, flip_index, driver=driver) as aggregator:
        device = []
        for scale in scales:
            pointers = [upload(aggregator, array) for array in (*scale.outputs, *(scale.flipped or ()))]
            device.append(ScalePointers(*pointers))
        candidates = aggregator.aggregate(device)
        peaks = aggregator.refine(mean_tags)
        return candidates, peaks, aggregator.heatmaps(), aggregator


def check_cuda_against_reference(rng, driver, upload, flip, n_scales):
    base = (64, 96)
    flip_index = COCO.flip_index if flip else None
    scales = multi_scale(rng, 17, base, flip) if n_scales == 3 else [random_scale(rng, 17, base, flip)]
    ref_candidates, ref_maps = aggregate_reference(scales, flip_index, base)
    tag_dim = ref_maps.tags.shape[-1]
    mean_tags = np.concatenate([ref_candidates.tags[:3, 0], rng.standard_normal((40, tag_dim))]).astype(np.float32)
    candidates, peaks, heatmaps, aggregator = run_cuda_aggregator(driver, upload, scales, flip_index, base, mean_tags)
    message = f"{driver}, flip {flip}, {n_scales} scale(s), seed {rng.seed}"
    assert_candidates_equal(candidates, ref_candidates, message)
    np.testing.assert_array_equal(heatmaps, ref_maps.heatmaps, err_msg=message)
    expected = refine_peaks(ref_maps, mean_tags)
    for name in ("x", "y", "value", "neighbours"):
        np.testing.assert_array_equal(getattr(peaks, name), getattr(expected, name), err_msg=f"{name}: {message}")
    return aggregator


CUDA_CASES = [(True, 1), (False, 1), (True, 3)]


@pytest.mark.parametrize("flip, n_scales", CUDA_CASES)
def test_cuda_host_side_with_emulated_kernels(rng, monkeypatch, flip, n_scales):
    from pose_stream.decoding import aggregate_cuda

    monkeypatch.setitem(aggregate_cuda._DRIVERS, "emulated", EmulatedDriver)
    inputs = []

    def upload(aggregator, array):
        ptr = aggregator._driver.alloc(array.nbytes)
        aggregator._driver.to_device(ptr, array, None)
        inputs.append(ptr)
        return ptr

    aggregator = check_cuda_against_reference(rng, "emulated", upload, flip, n_scales)
    assert sorted(aggregator._driver.memory) == sorted(inputs), "close() must free every buffer it allocated"
    with pytest.raises(PoseStreamError, match="closed"):
        aggregator.aggregate([])


def gpu_drivers():
    """(driver name, upload) for each way to run aggregate.cu on this machine's GPU, or a skip reason."""
    from pose_stream._optional import available

    drivers = []
    if available("cupy"):
        import cupy

        try:
            if cupy.cuda.runtime.getDeviceCount() > 0:
                keep = []

                def upload(aggregator, array):
                    keep.append(cupy.asarray(array))
                    return keep[-1].data.ptr

                drivers.append(("cupy", upload))
        except cupy.cuda.runtime.CUDARuntimeError:
            pass
    return drivers


@pytest.mark.gpu
@pytest.mark.parametrize("flip, n_scales", CUDA_CASES)
def test_cuda_kernels_equal_reference_through_cupy(rng, flip, n_scales):
    drivers = dict(gpu_drivers())
    if "cupy" not in drivers:
        pytest.skip("needs CuPy and a CUDA GPU")
    check_cuda_against_reference(rng, "cupy", drivers["cupy"], flip, n_scales)


@pytest.mark.gpu
@pytest.mark.parametrize("flip, n_scales", CUDA_CASES)
def test_cuda_kernels_equal_reference_through_pycuda(rng, flip, n_scales):
    pytest.importorskip("pycuda.driver", reason="needs pycuda")
    import pycuda.driver as cuda

    cuda.init()
    if cuda.Device.count() == 0:
        pytest.skip("needs a CUDA GPU")
    context = cuda.Device(0).retain_primary_context()
    context.push()
    keep = []
    try:

        def upload(aggregator, array):
            keep.append(cuda.mem_alloc(array.nbytes))
            cuda.memcpy_htod(keep[-1], np.ascontiguousarray(array))
            return int(keep[-1])

        check_cuda_against_reference(rng, "pycuda", upload, flip, n_scales)
    finally:
        for allocation in keep:
            allocation.free()
        context.pop()
