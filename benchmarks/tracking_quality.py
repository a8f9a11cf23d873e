"""Tracking and smoothing on demo clips with ground-truth identities: IDF1, MOTA, ID switches, jitter, lag, cost.

    python benchmarks/tracking_quality.py                              # seeds 0,1,2 x 500 frames, both trackers
    python benchmarks/tracking_quality.py --seeds 3 --frames 200 --trackers norfair --name quick

The demo model's people on every frame (score >= --min-score, as the pipeline outputs them) are computed once
per clip and cached under --cache-dir (the model is the slow part; the trackers then run on the same people).
Per tracker: identity metrics from motmetrics (pose_stream.evaluation.tracking_quality) and the tracker's time
per frame. With the chosen tracker, smoothing (One-Euro with --min-cutoff/--beta/--d-cutoff): jitter and lag
with and without. Then the cost of tracking + smoothing at 10 people per frame. Prints tables; writes JSON under
benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from pose_stream.cli.model_args import add_grouping_arguments
    from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_path
    from pose_stream.tracking import TRACKERS, SmoothingConfig, TrackingConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds of the animated scene")
    parser.add_argument("--frames", type=int, default=500, help="frames per clip (default: %(default)s)")
    parser.add_argument("--trackers", default=",".join(TRACKERS))
    parser.add_argument("--model", default=DEMO_MODEL_NAME)
    parser.add_argument("--weights", default=str(demo_model_path()))
    parser.add_argument("--input-size", default=str(DEMO_INPUT_SIZE))
    parser.add_argument("--min-score", type=float, default=0.15)
    add_grouping_arguments(parser)
    defaults = SmoothingConfig()
    parser.add_argument("--min-cutoff", type=float, default=defaults.min_cutoff)
    parser.add_argument("--beta", type=float, default=defaults.beta)
    parser.add_argument("--d-cutoff", type=float, default=defaults.d_cutoff)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "tracking")
    parser.add_argument("--name", default=None, help="JSON file stem (default: tracking-DATE)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    trackers = [t.strip() for t in args.trackers.split(",") if t.strip()]
    smoothing = SmoothingConfig(args.min_cutoff, args.beta, args.d_cutoff)
    started = time.monotonic()

    clips = {seed: _clip(args, seed) for seed in seeds}
    result: dict = {"date": datetime.date.today().isoformat(), "command": " ".join(["python", *sys.argv]),
                    "settings": {k: str(v) for k, v in vars(args).items()}, "trackers": {}}
    print(f"{'tracker':<10} {'seed':>4} {'IDF1':>6} {'MOTA':>6} {'ID sw':>5} {'sw/100f':>7} {'FP':>5} {'miss':>5} "
          f"{'ms/frame':>8}")
    for name in trackers:
        per_seed = {}
        for seed, clip in clips.items():
            metrics, _ = _track(clip, TrackingConfig(tracker=name), None)
            per_seed[seed] = metrics
            _row(name, seed, metrics)
        total = _totals(per_seed)
        _row(name, "all", total)
        result["trackers"][name] = {"total": total, "per_seed": per_seed}
    # The same trackers on the labelled people themselves (2 px noise, 5% of people missed per frame): what the
    # association does when detections are right, to separate the tracker's share of errors from the model's.
    result["on_labelled_people"] = {}
    for name in trackers:
        per_seed = {seed: _track(_labelled_as_detections(clip, seed), TrackingConfig(tracker=name), None)[0]
                    for seed, clip in clips.items()}
        total = _totals(per_seed)
        _row(name + "*", "all", total)
        result["on_labelled_people"][name] = {"total": total, "per_seed": per_seed}
    print("* on the labelled people (2 px noise, 5% missed per frame) instead of the model's")
    best = max(trackers, key=lambda t: (result["trackers"][t]["total"]["idf1"],
                                        -result["trackers"][t]["total"]["id_switches"]))
    result["chosen"] = best
    print(f"\nsmoothing with {best} ({smoothing}):")
    print(f"{'seed':>4} {'jitter raw':>10} {'smoothed':>8} {'change':>7} {'lag raw':>7} {'smoothed':>8} {'added':>6}")
    smoothing_rows = {}
    for seed, clip in clips.items():
        _, raw = _track(clip, TrackingConfig(tracker=best), None)
        _, smooth = _track(clip, TrackingConfig(tracker=best), smoothing)
        smoothing_rows[seed] = _smoothing_row(seed, raw, smooth, clip["sigmas"])
    result["smoothing"] = {"config": vars(smoothing), "per_seed": smoothing_rows,
                           "total": _smoothing_totals(smoothing_rows)}
    t = result["smoothing"]["total"]
    print(f"{'all':>4} {t['jitter_raw_px']:>10.2f} {t['jitter_smoothed_px']:>8.2f} {t['jitter_change_pct']:>6.1f}% "
          f"{'':>7} {'':>8} {t['lag_added_frames']:>6.2f}")
    result["cost_10_people"] = _cost(clips, best, smoothing)
    c = result["cost_10_people"]
    print(f"\ncost at 10 people per frame ({c['frames']} frames): tracking {c['tracking_ms_median']:.3f} ms, "
          f"tracking + smoothing {c['tracking_smoothing_ms_median']:.3f} ms (medians)")
    result["seconds"] = round(time.monotonic() - started, 1)
    name = args.name or f"tracking-{result['date']}"
    out = args.out_dir / f"{name}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _clip(args, seed: int) -> dict:
    """The demo clip's ground truth and the model's people on each frame, computed once and cached."""
    from pose_stream.pipeline.sources.demo import DEMO_FPS, DEMO_SIZE
    from pose_stream.synthetic.animation import demo_frames

    from pose_stream.cli.model_args import grouping_params

    params = grouping_params(args)
    weights = Path(args.weights)
    first = next(demo_frames(*DEMO_SIZE, DEMO_FPS, seed=seed, num_frames=1))  # the clip as rendered today
    key = hashlib.sha256(f"{args.model}|{weights.read_bytes().hex()[:4096]}|{weights.stat().st_size}|"
                         f"{args.input_size}|{seed}|{args.frames}|{args.min_score}|{params}|"
                         f"{hashlib.sha256(first.image.tobytes()).hexdigest()}".encode()).hexdigest()[:16]
    cache = args.cache_dir / f"demo-{seed}-{args.frames}-{key}.pkl"
    if cache.exists():
        with cache.open("rb") as f:
            return pickle.load(f)
    from pose_stream.estimator import PoseEstimator

    clip: dict = {"fps": DEMO_FPS, "truth": [], "truth_ids": [], "poses": []}
    began = time.monotonic()
    with PoseEstimator(args.model, weights=args.weights, input_size=args.input_size, device="cpu",
                       params=params) as estimator:
        clip["sigmas"] = np.asarray(estimator.joint_set.sigmas, np.float64)
        for i, frame in enumerate(demo_frames(*DEMO_SIZE, DEMO_FPS, seed=seed, num_frames=args.frames)):
            clip["truth"].append(frame.keypoints)
            clip["truth_ids"].append(frame.ids)
            clip["poses"].append(estimator.predict(frame.image).with_min_score(args.min_score))
            if i % 100 == 99:
                print(f"seed {seed}: {i + 1}/{args.frames} frames estimated ({time.monotonic() - began:.0f} s)",
                      file=sys.stderr, flush=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with cache.open("wb") as f:
        pickle.dump(clip, f)
    return clip


def _track(clip: dict, tracking, smoothing) -> tuple[dict, list]:
    from pose_stream.evaluation.tracking_quality import ClipFrame, identity_metrics
    from pose_stream.tracking import Follower

    follower = Follower(tracking, smoothing, clip["sigmas"], clip["fps"])
    frames, times = [], []
    for index, (truth, ids, poses) in enumerate(zip(clip["truth"], clip["truth_ids"], clip["poses"])):
        t0 = time.perf_counter()
        followed = follower(poses, index / clip["fps"])
        times.append(time.perf_counter() - t0)
        frames.append(ClipFrame(truth, ids, followed.keypoints, followed.track_ids))
    metrics = identity_metrics(frames, clip["sigmas"])
    metrics["ms_per_frame_median"] = round(1000 * float(np.median(times)), 4)
    return metrics, frames


def _labelled_as_detections(clip: dict, seed: int) -> dict:
    from pose_stream.poses import Poses

    rng = np.random.default_rng(seed)
    poses = []
    for truth in clip["truth"]:
        keep = (truth[:, :, 2] > 0).any(axis=1) & (rng.random(len(truth)) > 0.05)
        keypoints = truth[keep].astype(np.float32)
        keypoints[:, :, :2] += rng.normal(0, 2.0, keypoints[:, :, :2].shape)
        keypoints[:, :, 2] = np.where(keypoints[:, :, 2] > 0, 0.8, 0.0)
        poses.append(Poses(keypoints, np.full(len(keypoints), 0.8, np.float32)))
    return {**clip, "poses": poses}


def _totals(per_seed: dict) -> dict:
    frames = sum(m["frames"] for m in per_seed.values())
    switches = sum(m["id_switches"] for m in per_seed.values())
    return {"frames": frames,
            # IDF1 and MOTA of the clips pooled, weighted by labelled people (as one long sequence would be)
            "idf1": round(_weighted(per_seed, "idf1"), 4), "mota": round(_weighted(per_seed, "mota"), 4),
            "id_switches": switches, "id_switches_per_100_frames": round(100 * switches / max(frames, 1), 4),
            "false_positives": sum(m["false_positives"] for m in per_seed.values()),
            "misses": sum(m["misses"] for m in per_seed.values()),
            "ms_per_frame_median": round(float(np.median([m["ms_per_frame_median"] for m in per_seed.values()])), 4)}


def _weighted(per_seed: dict, key: str) -> float:
    weights = np.array([m["labelled_people"] for m in per_seed.values()], np.float64)
    return float(np.average([m[key] for m in per_seed.values()], weights=weights))


def _row(name: str, seed, m: dict) -> None:
    print(f"{name:<10} {seed!s:>4} {m['idf1']:>6.3f} {m['mota']:>6.3f} {m['id_switches']:>5} "
          f"{m['id_switches_per_100_frames']:>7.2f} {m['false_positives']:>5} {m['misses']:>5} "
          f"{m['ms_per_frame_median']:>8.3f}")


def _smoothing_row(seed: int, raw: list, smooth: list, sigmas: np.ndarray) -> dict:
    from pose_stream.evaluation.tracking_quality import steadiness

    before, after = steadiness(raw, sigmas), steadiness(smooth, sigmas)
    row = {"jitter_raw_px": before["jitter_px"], "jitter_smoothed_px": after["jitter_px"],
           "jitter_change_pct": round(100 * (after["jitter_px"] / before["jitter_px"] - 1), 2),
           "lag_raw_frames": before["lag_frames"], "lag_smoothed_frames": after["lag_frames"],
           "lag_added_frames": round(after["lag_frames"] - before["lag_frames"], 3),
           "joint_samples": before["joint_samples"]}
    print(f"{seed:>4} {row['jitter_raw_px']:>10.2f} {row['jitter_smoothed_px']:>8.2f} {row['jitter_change_pct']:>6.1f}% "
          f"{row['lag_raw_frames']:>7.2f} {row['lag_smoothed_frames']:>8.2f} {row['lag_added_frames']:>6.2f}")
    return row


def _smoothing_totals(rows: dict) -> dict:
    weights = np.array([r["joint_samples"] for r in rows.values()], np.float64)
    # RMS pooled over every joint sample of every clip
    raw = float(np.sqrt(np.average([r["jitter_raw_px"] ** 2 for r in rows.values()], weights=weights)))
    smoothed = float(np.sqrt(np.average([r["jitter_smoothed_px"] ** 2 for r in rows.values()], weights=weights)))
    return {"jitter_raw_px": round(raw, 3), "jitter_smoothed_px": round(smoothed, 3),
            "jitter_change_pct": round(100 * (smoothed / raw - 1), 2),
            "lag_added_frames": round(float(np.average([r["lag_added_frames"] for r in rows.values()],
                                                       weights=weights)), 3)}


def _cost(clips: dict, tracker: str, smoothing) -> dict:
    """Tracking (+ smoothing) time per frame with 10 people: each frame's labelled people of the clips side by side
    (copies shifted sideways to reach 10), with a little noise, as the detector would give them."""
    from pose_stream.poses import Poses
    from pose_stream.tracking import Follower, TrackingConfig

    rng = np.random.default_rng(0)
    clip_list = list(clips.values())
    length = min(len(c["truth"]) for c in clip_list)
    frames = []
    for t in range(length):
        people = [p for c in clip_list for p in c["truth"][t]]
        people = [p.copy() for p in people if (p[:, 2] > 0).any()]
        copies = [p + np.array([1280.0 * (k // max(len(people), 1) + 1), 0, 0], np.float32)
                  for k, p in enumerate(people * 4)]
        people = (people + copies)[:10]
        keypoints = np.stack(people).astype(np.float32)
        keypoints[:, :, :2] += rng.normal(0, 1.0, keypoints[:, :, :2].shape)
        keypoints[:, :, 2] = np.where(keypoints[:, :, 2] > 0, 0.8, 0.05)
        frames.append(Poses(keypoints, np.full(len(keypoints), 0.8, np.float32)))
    result = {"frames": length, "people": int(min(len(f) for f in frames))}
    sigmas, fps = clip_list[0]["sigmas"], clip_list[0]["fps"]
    for label, smooth in (("tracking", None), ("tracking_smoothing", smoothing)):
        follower = Follower(TrackingConfig(tracker=tracker), smooth, sigmas, fps)
        times = []
        for index, poses in enumerate(frames):
            t0 = time.perf_counter()
            follower(poses, index / fps)
            times.append(time.perf_counter() - t0)
        result[f"{label}_ms_median"] = round(1000 * float(np.median(times)), 4)
        result[f"{label}_ms_p90"] = round(1000 * float(np.percentile(times, 90)), 4)
    return result


if __name__ == "__main__":
    sys.exit(main())
