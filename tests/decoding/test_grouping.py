"""Hungarian solver and associative-embedding grouping: the Numba path equals the NumPy reference."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pose_stream.joints import COCO, CROWDPOSE
from pose_stream.decoding import group_numba, group_ref
from pose_stream.synthetic import outputs as synthetic
from pose_stream.decoding.aggregate_ref import refine_peaks
from pose_stream.decoding.grouping_types import GroupingParams
from pose_stream.decoding.hungarian import munkres
from pose_stream.decoding.types import AggregatedMaps, Candidates


# ---------------------------------------------------------------------------------------------- Hungarian
def _random_cost(rng: np.random.Generator, kind: int) -> np.ndarray:
    rows, cols = int(rng.integers(1, 14)), int(rng.integers(1, 14))
    if kind == 0:  # generic
        return rng.normal(0, 10, (rows, cols))
    if kind == 1:  # heavy ties: small integers
        return rng.integers(0, 3, (rows, cols)).astype(float)
    # grouping-shaped: round(distance) * 100 - value, padded with 1e10 columns when rows outnumber columns
    cost = np.round(rng.random((rows, cols)) * 3) * 100 - rng.choice([0.2, 0.5, 0.9], (rows, 1))
    if rows > cols:
        cost = np.concatenate([cost, np.full((rows, rows - cols), 1e10)], axis=1)
    return cost


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_munkres_reaches_scipy_minimum(kind):
    rng = np.random.default_rng(100 + kind)
    for _ in range(300):
        cost = _random_cost(rng, kind)
        col_of_row = munkres(cost)
        rows, cols = linear_sum_assignment(cost)
        assigned = col_of_row >= 0
        assert assigned.sum() == min(cost.shape)
        assert len(set(col_of_row[assigned].tolist())) == assigned.sum()  # a column at most once
        ours = cost[np.flatnonzero(assigned), col_of_row[assigned]].sum()
        assert ours == pytest.approx(cost[rows, cols].sum(), rel=1e-12, abs=1e-9)


def test_munkres_breaks_ties_like_the_reference_solver():
    # The reference uses the `munkres` package; where it is installed, assignments must be identical.
    munkres_package = pytest.importorskip("munkres")
    rng = np.random.default_rng(7)
    for i in range(600):
        cost = _random_cost(rng, i % 3)
        expected = np.full(cost.shape[0], -1)
        for row, col in munkres_package.Munkres().compute(cost.tolist()):
            expected[row] = col
        np.testing.assert_array_equal(munkres(cost), expected)


def test_munkres_edge_cases():
    assert munkres(np.zeros((0, 3))).shape == (0,)
    np.testing.assert_array_equal(munkres(np.array([[5.0]])), [0])
    np.testing.assert_array_equal(munkres(np.array([[1.0, 0.0, 3.0]])), [1])
    np.testing.assert_array_equal(munkres(np.array([[1.0], [0.0], [3.0]])), [-1, 0, -1])
    with pytest.raises(ValueError):
        munkres(np.array([[np.nan]]))


# ------------------------------------------------------------------------------------ random grouping input
def random_grouping_input(
    rng: np.random.Generator, people: int, *, num_joints: int = 17, m: int = 30, hw=(24, 32), tag_dim: int = 2,
    ties: bool = False,
) -> tuple[Candidates, AggregatedMaps]:
    """Random maps with `people` tag clusters; candidates are the top-m pixels per joint (value order)."""
    h, w = hw
    heat = (rng.random((num_joints, h, w)) * 0.15 - 0.03).astype(np.float32)
    tags = rng.normal(0, 2, (num_joints, h, w, tag_dim)).astype(np.float32)
    centres = rng.normal(0, 3, (max(people, 1), tag_dim))
    xs = np.zeros((num_joints, m), np.int32)
    ys = np.zeros((num_joints, m), np.int32)
    for j in range(num_joints):
        flat = rng.choice(h * w, size=m, replace=False)
        ys[j], xs[j] = np.divmod(flat, w)
        for p in range(min(people, m)):
            if rng.random() < 0.85:
                heat[j, ys[j, p], xs[j, p]] = rng.uniform(0.1, 1.0)
                tags[j, ys[j, p], xs[j, p]] = centres[p] + rng.normal(0, 0.4, tag_dim)
    if ties:  # coarse grids: equal values and equal rounded distances everywhere
        heat = (np.round(heat * 20) / 20).astype(np.float32)
        tags = (np.round(tags * 4) / 4).astype(np.float32)
    value = heat[np.arange(num_joints)[:, None], ys, xs]
    order = np.argsort(-value, axis=1, kind="stable")
    xs, ys = np.take_along_axis(xs, order, 1), np.take_along_axis(ys, order, 1)
    value = np.take_along_axis(value, order, 1).astype(np.float32)
    cand_tags = tags[np.arange(num_joints)[:, None], ys, xs]
    return Candidates(xs, ys, value, np.ascontiguousarray(cand_tags)), AggregatedMaps(heat, tags)


def assert_same_grouping(a, b) -> None:
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("people", [0, 1, 30, 45])
@pytest.mark.parametrize("tag_dim", [1, 2, 4])
def test_numba_grouping_equals_reference(people, tag_dim):
    rng = np.random.default_rng(1000 * people + tag_dim)
    for seed in range(6):
        cands, maps = random_grouping_input(rng, people, tag_dim=tag_dim, ties=seed % 2 == 1)
        assert_same_grouping(group_numba.group(cands, maps, COCO.visit_order),
                             group_ref.group(cands, maps, COCO.visit_order))


@pytest.mark.parametrize(
    "params",
    [
        GroupingParams(adjust=False, refine=False),
        GroupingParams(max_people=5, refine=False),
        GroupingParams(use_detection_value=False, tag_threshold=0.7),
        GroupingParams(detection_threshold=0.0, max_people=12),
    ],
)
def test_numba_grouping_equals_reference_for_other_settings(params):
    rng = np.random.default_rng(5)
    for seed in range(4):
        cands, maps = random_grouping_input(rng, 20, m=params.max_people if params.max_people > 12 else 30,
                                            ties=seed % 2 == 0)
        assert_same_grouping(group_numba.group(cands, maps, COCO.visit_order, params),
                             group_ref.group(cands, maps, COCO.visit_order, params))


@pytest.mark.parametrize("reach", [0.04, 0.1, 0.3])
@pytest.mark.parametrize("people", [3, 20])
def test_numba_grouping_equals_reference_with_max_reach(reach, people):
    rng = np.random.default_rng(int(reach * 100) + people)
    params = GroupingParams(max_reach=reach)
    for seed in range(6):
        cands, maps = random_grouping_input(rng, people, ties=seed % 2 == 0)
        assert_same_grouping(group_numba.group(cands, maps, COCO.visit_order, params),
                             group_ref.group(cands, maps, COCO.visit_order, params))


def _two_people_with_alike_tags() -> Candidates:
    """Two people 55 px apart on a 64x64 input whose tags are 0.3 apart (round to the same cost). Each joint's
    stronger candidate alternates between them, so the reference, which cannot tell them apart, gives a
    person's joint to whoever comes first."""
    k = 17
    x = np.zeros((k, 2), np.int32)
    for j in range(k):
        x[j] = (60, 5) if j % 2 else (5, 60)  # first column: the stronger candidate
    y = np.tile(np.array([[10, 10]], np.int32), (k, 1)) + np.arange(k, dtype=np.int32)[:, None] * 3
    tags = np.where(x == 5, 0.0, 0.3).astype(np.float32)[:, :, None]
    value = np.tile(np.array([[0.9, 0.8]], np.float32), (k, 1))
    return Candidates(x, y, value, tags)


@pytest.mark.parametrize("grouping", ["reference", "numba"])
def test_max_reach_keeps_a_person_s_joints_near_each_other(grouping):
    cands = _two_people_with_alike_tags()

    def match(params):
        if grouping == "reference":
            return group_ref.match(cands, COCO.visit_order, params, size=(64, 64)).joints
        return group_numba.NumbaGrouper(COCO.visit_order, params).match(cands, size=(64, 64)).joints

    def spread(joints):  # the widest x range of a person's joints
        return max(np.ptp(cands.x[np.flatnonzero(row >= 0), row[row >= 0]]) for row in joints)

    assert spread(match(GroupingParams())) == 55  # the reference joins joints of both people
    kept_apart = match(GroupingParams(max_reach=0.25))
    assert len(kept_apart) == 2 and spread(kept_apart) == 0


def test_max_reach_is_checked_and_needs_the_input_size():
    for bad in (0, -0.1, 2.5, float("nan")):
        with pytest.raises(ValueError, match="max_reach"):
            GroupingParams(max_reach=bad)
    cands = _two_people_with_alike_tags()
    with pytest.raises(ValueError, match="size"):
        group_ref.match(cands, COCO.visit_order, GroupingParams(max_reach=0.2))
    assert GroupingParams(max_reach=0.5).reach_squared((64, 32)) == 32.0 ** 2
    assert GroupingParams().reach_squared(None) == -1.0


def test_crowdpose_joint_order():
    rng = np.random.default_rng(9)
    cands, maps = random_grouping_input(rng, 12, num_joints=14)
    assert_same_grouping(group_numba.group(cands, maps, CROWDPOSE.visit_order),
                         group_ref.group(cands, maps, CROWDPOSE.visit_order))


def test_people_beyond_the_first_30_are_kept_and_take_no_part_in_matching():
    # 40 people with well separated tags, each a candidate of every joint: only the 30 first-created
    # people are matched, the other 10 people's joints become one-joint people of their own.
    k, m, n = 17, 40, 40
    value = np.tile(np.linspace(0.9, 0.5, n, dtype=np.float32), (k, 1))
    tags = np.tile((np.arange(n, dtype=np.float32) * 5)[None, :, None], (k, 1, 1))
    x = np.tile(np.arange(n, dtype=np.int32), (k, 1))
    cands = Candidates(x, np.zeros((k, m), np.int32), value, tags)
    matching = group_ref.match(cands, COCO.visit_order)
    assert matching.num_people == 30 + 10 * k
    assert np.all(matching.joints[:30] == np.arange(30)[:, None])
    assert np.all((matching.joints[30:] >= 0).sum(axis=1) == 1)
    np.testing.assert_array_equal(group_numba.NumbaGrouper(COCO.visit_order).match(cands).joints, matching.joints)


def test_equal_tags_do_not_collapse_people():
    # The reference keys people by their first tag value: two new people with the same tag would merge.
    k = 17
    cands = Candidates(
        np.array([[3, 9]] * k, np.int32), np.array([[4, 4]] * k, np.int32),
        np.full((k, 2), 0.8, np.float32), np.full((k, 2, 1), 0.25, np.float32),
    )
    matching = group_numba.NumbaGrouper(COCO.visit_order).match(cands)
    assert matching.num_people == 2
    assert np.array_equal(matching.joints, group_ref.match(cands, COCO.visit_order).joints)


# ----------------------------------------------------------------------------------------------- refine
@pytest.mark.parametrize("ties", [False, True])
def test_refine_search_equals_reference(ties):
    rng = np.random.default_rng(11 + ties)
    grouper = group_numba.NumbaGrouper(COCO.visit_order)
    for people in (1, 8, 30):
        cands, maps = random_grouping_input(rng, people, hw=(20, 27), ties=ties)
        matching = grouper.match(cands)
        request = group_ref.refine_request(cands, matching, maps)
        fast_request = grouper.refine_request(cands, matching)
        np.testing.assert_array_equal(fast_request.mean_tags, request.mean_tags)
        expected = refine_peaks(maps, request.mean_tags, request.pending)
        got = grouper.refine_search(maps, cands, request)
        pending = request.pending
        for name in ("x", "y", "value", "neighbours"):
            np.testing.assert_array_equal(getattr(got, name)[pending], getattr(expected, name)[pending], err_msg=name)


@pytest.mark.parametrize("tag_dim, quantised", [(1, False), (2, False), (2, True)])
def test_refine_search_equals_reference_on_rendered_maps(tag_dim, quantised):
    # Smooth maps with many hidden joints, partial tiles (150 x 90 is no multiple of the tile size), and
    # with coarse values: equal scores everywhere, so the first-maximum rule decides.
    rng = np.random.default_rng(21 + tag_dim + quantised)
    size = (150, 90)
    people = synthetic.random_people(rng, 9, size, border_gap=3.0, hidden_fraction=0.4, tag_spacing=1.3)
    cands, maps = synthetic.render_maps(people, size, 17, tag_dim=tag_dim, noise=0.02, rng=rng)
    if quantised:
        maps = AggregatedMaps((np.round(maps.heatmaps * 10) / 10).astype(np.float32),
                              (np.round(maps.tags * 2) / 2).astype(np.float32))
        cands = Candidates(cands.x, cands.y, maps.heatmaps[np.arange(17)[:, None], cands.y, cands.x],
                           np.ascontiguousarray(maps.tags[np.arange(17)[:, None], cands.y, cands.x]))
    grouper = group_numba.NumbaGrouper(COCO.visit_order)
    matching = grouper.match(cands)
    request = grouper.refine_request(cands, matching)
    assert request.pending.sum() > 20
    expected = refine_peaks(maps, request.mean_tags, request.pending)
    got = grouper.refine_search(maps, cands, request)
    for name in ("x", "y", "value", "neighbours"):
        np.testing.assert_array_equal(getattr(got, name)[request.pending], getattr(expected, name)[request.pending])


def test_refine_search_takes_the_first_of_equal_maxima():
    # A flat heatmap and one tag everywhere: every pixel scores the same; the first (0, 0) must win.
    k, h, w = 17, 6, 7
    maps = AggregatedMaps(np.full((k, h, w), 0.3, np.float32), np.zeros((k, h, w, 1), np.float32))
    value = np.full((k, 3), 0.3, np.float32)
    value[5:] = 0.05  # below the detection threshold: these joints stay unassigned and are searched for
    cands = Candidates(np.full((k, 3), 4, np.int32), np.full((k, 3), 5, np.int32), value,
                       np.zeros((k, 3, 1), np.float32))
    grouper = group_numba.NumbaGrouper(COCO.visit_order)
    matching = grouper.match(cands)
    request = grouper.refine_request(cands, matching)
    result = grouper.refine_search(maps, cands, request)
    assert request.pending.any()
    assert np.all(result.x[request.pending] == 0) and np.all(result.y[request.pending] == 0)


def test_group_accepts_an_external_refine_search():
    # The GPU path: no maps on the host, candidate neighbours and the refine result come from elsewhere.
    rng = np.random.default_rng(13)
    cands, maps = random_grouping_input(rng, 10)
    grouper = group_numba.NumbaGrouper(COCO.visit_order)
    calls = []

    def search(request):
        calls.append(request)
        return refine_peaks(maps, request.mean_tags, request.pending)

    neighbours = group_numba.candidate_neighbours(maps.heatmaps, cands)
    external = grouper.group(cands, None, neighbours=neighbours, refine_search=search)
    assert len(calls) == 1
    assert_same_grouping(external, group_ref.group(cands, maps, COCO.visit_order))


def test_grouping_recovers_rendered_people():
    # Synthetic full-resolution maps: people come back at their rendered positions (network pixels).
    rng = np.random.default_rng(17)
    size = (320, 256)
    people = synthetic.random_people(rng, 12, size, border_gap=3.0, hidden_fraction=0.1)
    cands, maps = synthetic.render_maps(people, size, 17, noise=0.005, rng=rng)
    grouped = group_numba.group(cands, maps, COCO.visit_order)
    assert_same_grouping(grouped, group_ref.group(cands, maps, COCO.visit_order))
    assert grouped.num_people == 12
    for p in range(12):
        error = np.linalg.norm(grouped.keypoints[:, :, :2] - people.keypoints[p], axis=2)
        error = np.where(people.visible[p], error, 0).max(axis=1)
        assert error.min() <= 1.0
