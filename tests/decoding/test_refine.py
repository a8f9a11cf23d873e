"""The CPU refine search (tile bounds on heat and tag ranges, missing joints only) equals the NumPy reference.

Inputs are fresh per run; the seed is in every assertion message, so a failure can be replayed with
SEED=<seed>. Cases: the aggregation's own data (tags as their quarter-resolution sources, plain and flipped,
one and three scales, COCO and CrowdPose), full tag maps (identity tables), L = 1 and 2, plateaus and
quantised tags (equal scores everywhere, distances exactly on .5 rounding ties), partial tiles.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from pose_stream.joints import COCO, CROWDPOSE
from pose_stream.decoding.aggregate_numba import aggregate_numba
from pose_stream.decoding.aggregate_ref import ScaleOutputs, aggregate_reference, refine_peaks
from pose_stream.decoding.refine_numba import TILE, refine_maps_from_full, refine_search
from pose_stream.decoding.tag_source import TagSource, fill_tile, full_maps, tile_tag_ranges
from pose_stream.decoding.types import AggregatedMaps

FIELDS = ("x", "y", "value", "neighbours")


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("SEED", np.random.SeedSequence().entropy % 2**32))


def random_outputs(rng, k, hw, factor=1.0, blocky=False):
    """Raw outputs (out0, out1) of one pass for a network input hw; blocky: constant 4x4 blocks of quarter
    values (flat maps: plateaus and equal tags)."""
    h, w = hw

    def maps(c, mh, mw):
        if blocky:
            cells = rng.integers(-1, 4, (c, mh // 4 + 1, mw // 4 + 1)) / 4
            return np.kron(cells, np.ones((1, 4, 4)))[:, :mh, :mw].astype(np.float32)
        return (rng.standard_normal((c, mh, mw)) * 0.5).astype(np.float32)

    return maps(2 * k, h // 4, w // 4), maps(k, h // 2, w // 2)


def aggregation_case(rng, joint_set, flip, n_scales, base=(64, 96), blocky=False):
    k = joint_set.num_joints
    factors = (2.0, 1.0, 0.5) if n_scales == 3 else (1.0,)
    scales = []
    for f in factors:
        hw = (int(base[0] * f), int(base[1] * f))
        scales.append(ScaleOutputs(random_outputs(rng, k, hw, blocky=blocky),
                                   random_outputs(rng, k, hw, blocky=blocky) if flip else None, f))
    flip_index = joint_set.flip_index if flip else None
    return aggregate_numba(scales, flip_index, base), aggregate_reference(scales, flip_index, base)[1]


def mean_tags_for(rng, maps: AggregatedMaps, n: int, quantum: float | None = None) -> np.ndarray:
    """Mean tags near the maps' own tags (where scores are decided by heat), exact tags of pixels, and far
    ones; quantum: round them to multiples of it (with quantised maps: distances on rounding ties)."""
    k, h, w, tag_dim = maps.tags.shape
    near = maps.tags[rng.integers(0, k, n), rng.integers(0, h, n), rng.integers(0, w, n)]
    jitter = rng.standard_normal((n, tag_dim)) * rng.choice([0.0, 0.3, 3.0], (n, 1))
    means = (near + jitter).astype(np.float32)
    if quantum is not None:
        means = (np.round(means / quantum) * quantum).astype(np.float32)
    return means


def assert_peaks_equal(got, expected, pending, message):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=f"{name}: {message}")
    assert not np.any(got.value[~pending]) and not np.any(got.x[~pending]), f"unsearched entries: {message}"


# ---------------------------------------------------------------------------------- aggregation's data


@pytest.mark.parametrize("flip", [True, False], ids=["L2", "L1"])
@pytest.mark.parametrize("joint_set", [COCO, CROWDPOSE], ids=["coco", "crowdpose"])
@pytest.mark.parametrize("n_scales", [1, 3])
def test_aggregation_refine_equals_reference(seed, flip, joint_set, n_scales):
    rng = np.random.default_rng(seed)
    result, ref_maps = aggregation_case(rng, joint_set, flip, n_scales)
    message = f"{joint_set.name}, flip {flip}, {n_scales} scale(s), seed {seed}"
    mean_tags = mean_tags_for(rng, ref_maps, 12)
    pending = rng.random((12, joint_set.num_joints)) < 0.4
    pending[0] = True  # one person searches every joint
    expected = refine_peaks(ref_maps, mean_tags, pending)
    assert_peaks_equal(result.refine(mean_tags, pending), expected, pending, message)


def test_aggregation_refine_on_plateaus_and_rounding_ties(seed):
    # Quarter-resolution blocks of quarters: the aggregated maps are exact multiples of 1/64 with wide flat
    # areas, so many pixels tie on the score and the first in row-major order must win; mean tags on the
    # same grid put distances exactly on .5, where rint rounds to even.
    rng = np.random.default_rng(seed)
    result, ref_maps = aggregation_case(rng, COCO, True, 1, base=(80, 112), blocky=True)
    mean_tags = mean_tags_for(rng, ref_maps, 16, quantum=0.25)
    pending = rng.random((16, 17)) < 0.5
    expected = refine_peaks(ref_maps, mean_tags, pending)
    ties = 0
    for person, joint in zip(*np.nonzero(pending)):
        distance = np.sqrt(((ref_maps.tags[joint] - mean_tags[person]) ** 2).sum(-1))
        scores = ref_maps.heatmaps[joint] - np.rint(distance)
        ties += (scores == scores.max()).sum() > 1
    assert ties > 0, f"the test needs ties (seed {seed})"
    assert_peaks_equal(result.refine(mean_tags, pending), expected, pending, f"seed {seed}")


# ------------------------------------------------------------------------------------------ full maps


@pytest.mark.parametrize("tag_dim", [1, 2])
@pytest.mark.parametrize("quantised", [False, True])
def test_full_map_refine_equals_reference(seed, tag_dim, quantised):
    # Partial tiles (sizes no multiple of TILE), smooth-ish tags with clusters, seeds from random pixels.
    rng = np.random.default_rng(seed)
    k, h, w = 14, 3 * TILE + 5, 4 * TILE + 9
    heat = (rng.random((k, h, w)) * 0.3 - 0.05).astype(np.float32)
    tags = np.repeat(np.repeat(rng.normal(0, 2, (k, h // 4 + 1, w // 4 + 1, tag_dim)), 4, 1), 4, 2)[:, :h, :w]
    tags = (tags + rng.normal(0, 0.2, tags.shape)).astype(np.float32)
    if quantised:
        heat = (np.round(heat * 10) / 10).astype(np.float32)
        tags = (np.round(tags * 2) / 2).astype(np.float32)
    maps = AggregatedMaps(heat, tags)
    mean_tags = mean_tags_for(rng, maps, 20, quantum=0.5 if quantised else None)
    pending = rng.random((20, k)) < 0.5
    seeds = rng.integers(0, h * w, (k, 7))
    expected = refine_peaks(maps, mean_tags, pending)
    got = refine_search(refine_maps_from_full(maps, seeds), mean_tags, pending)
    assert_peaks_equal(got, expected, pending, f"L {tag_dim}, quantised {quantised}, seed {seed}")


def test_refine_without_pending_searches_every_joint(seed):
    rng = np.random.default_rng(seed)
    result, ref_maps = aggregation_case(rng, COCO, True, 1)
    mean_tags = mean_tags_for(rng, ref_maps, 3)
    expected = refine_peaks(ref_maps, mean_tags)
    assert_peaks_equal(result.refine(mean_tags), expected, np.ones((3, 17), bool), f"seed {seed}")
    assert result.refine(np.zeros((0, 2), np.float32)).x.shape == (0, 17)


# ----------------------------------------------------------------------------------------- tag source


@pytest.mark.parametrize("flip, n_scales", [(True, 1), (False, 1), (True, 3)])
def test_tag_source_tiles_and_ranges(seed, flip, n_scales):
    # Every tile computed separably equals the reference tag maps, and lies within its tile's range (up to
    # the few float32 roundings the refine bound allows for).
    rng = np.random.default_rng(seed)
    result, ref_maps = aggregation_case(rng, COCO, flip, n_scales, base=(72, 104))
    source: TagSource = result.refine_maps.tags
    np.testing.assert_array_equal(full_maps(source), ref_maps.tags, err_msg=f"seed {seed}")
    lo, hi = tile_tag_ranges(source, TILE)
    n_q, n_h, n_c = source.scratch_shape(TILE)
    quarter, half = np.empty((n_q, n_c), np.float32), np.empty((n_h, n_c), np.float32)
    across, out = np.empty((n_h, TILE), np.float32), np.empty((source.tag_dim, TILE * TILE), np.float32)
    k, h, w, tag_dim = ref_maps.tags.shape
    for joint in range(k):
        for ty in range(lo.shape[2]):
            for tx in range(lo.shape[3]):
                fill_tile(source.planes, source.channel, source.mirrored, source.stages, joint, ty, tx, TILE,
                          quarter, half, across, out)
                block = ref_maps.tags[joint, ty * TILE:(ty + 1) * TILE, tx * TILE:(tx + 1) * TILE]
                got = out.reshape(tag_dim, TILE, TILE)[:, :block.shape[0], :block.shape[1]]
                np.testing.assert_array_equal(got, np.moveaxis(block, -1, 0), err_msg=f"tile {ty, tx}, seed {seed}")
                slack = 2.0**-20 * np.maximum(np.abs(lo[joint, :, ty, tx]), np.abs(hi[joint, :, ty, tx]))
                assert np.all(got >= (lo[joint, :, ty, tx] - slack)[:, None, None]), f"seed {seed}"
                assert np.all(got <= (hi[joint, :, ty, tx] + slack)[:, None, None]), f"seed {seed}"


def test_refine_finds_a_dim_peak_with_the_right_tag():
    # One joint, one bright far-tag region and one dim region with the person's tag: the answer is in the
    # dim region (the bright tile's bound, 0.9 - 49, rules it out).
    k, h, w = 1, 4 * TILE, 4 * TILE
    heat = np.zeros((k, h, w), np.float32)
    tags = np.full((k, h, w, 1), 50.0, np.float32)
    heat[0, 5, 5] = 0.9  # bright, tag 50: score 0.9 - 50
    heat[0, 40, 50] = 0.2
    tags[0, 36:44, 46:54] = 1.0  # dim, tag 1: score 0.2 - 0 wins
    maps = AggregatedMaps(heat, tags)
    peaks = refine_search(refine_maps_from_full(maps), np.array([[1.2]], np.float32))
    assert (peaks.y[0, 0], peaks.x[0, 0], peaks.value[0, 0]) == (40, 50, np.float32(0.2))
