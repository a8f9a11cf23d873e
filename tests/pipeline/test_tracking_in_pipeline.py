"""Tracking and smoothing inside the pipeline: per source, on videos only, in every output, and from the CLI."""
from __future__ import annotations

import json
import numpy as np
import pytest

from pipeline_fakes import CollectSink
from pose_stream.pipeline import GeneratedSource, ImageSequenceSource, Pipeline, PipelineConfig
from pose_stream.poses import Poses
from pose_stream.tracking import SmoothingConfig, TrackingConfig
from tracking_people import WalkerEstimator, numbered_frames as _numbered_frames, walkers_at as _walkers_at

def _run(sources, **config) -> CollectSink:
    sink = CollectSink()
    Pipeline(WalkerEstimator(), sources, [sink], PipelineConfig(**config)).run()
    return sink


def _walker_of(poses: Poses, n: int, t: int) -> int:
    centre = poses.keypoints[n, :, 0].mean()
    return int(np.argmin([abs(w[:, 0].mean() - centre) for w in _walkers_at(t)]))


def test_each_walker_keeps_one_track_id_in_each_source():
    sources = [GeneratedSource(40, (64, 48), source_id=f"cam{i}", frames=_numbered_frames) for i in range(2)]
    sink = _run(sources, tracking=TrackingConfig())
    assert len(sink.results) == 80
    ids: dict[tuple[int, int], set[int]] = {}
    for result in sink.results:
        t = result.frame.index
        assert result.poses.track_ids is not None
        for n, track in enumerate(result.poses.track_ids.tolist()):
            if t >= TrackingConfig().confirm_frames - 1:  # confirmed from then on
                assert track >= 1
            if track >= 1:
                ids.setdefault((result.frame.source_index, _walker_of(result.poses, n, t)), set()).add(track)
    assert all(len(v) == 1 for v in ids.values()) and len(ids) == 6
    for source in (0, 1):  # each source numbers its people 1, 2, 3
        assert set().union(*(v for (s, _), v in ids.items() if s == source)) == {1, 2, 3}


def test_without_tracking_there_are_no_track_ids_and_the_json_says_so():
    sink = _run([GeneratedSource(5, (64, 48), frames=_numbered_frames)])
    assert all(r.poses.track_ids is None for r in sink.results)
    assert "track_id" not in json.dumps(sink.results[-1].poses.to_dict())


def test_images_are_not_tracked(tmp_path):
    import cv2

    paths = []
    for t in range(3):
        paths.append(tmp_path / f"{t}.png")
        cv2.imwrite(str(paths[-1]), np.full((48, 64, 3), t, np.uint8))
    sink = _run([ImageSequenceSource(paths)], tracking=TrackingConfig())
    assert len(sink.results) == 3 and all(r.poses.track_ids is None for r in sink.results)


def test_smoothing_changes_positions_but_not_people_or_ids():
    raw = _run([GeneratedSource(30, (64, 48), frames=_numbered_frames)], tracking=TrackingConfig())
    smooth = _run([GeneratedSource(30, (64, 48), frames=_numbered_frames)], tracking=TrackingConfig(),
                  smoothing=SmoothingConfig(min_cutoff=0.5))
    for a, b in zip(raw.results, smooth.results):
        np.testing.assert_array_equal(a.poses.track_ids, b.poses.track_ids)
        np.testing.assert_array_equal(a.poses.scores, b.poses.scores)
    moved = np.abs(raw.results[-1].poses.keypoints[:, :, :2] - smooth.results[-1].poses.keypoints[:, :, :2])
    assert moved.max() > 0.1 and moved.max() < 20


def test_smoothing_without_tracking_is_refused():
    with pytest.raises(ValueError, match="needs tracking"):
        PipelineConfig(smoothing=SmoothingConfig())
