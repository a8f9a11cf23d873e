"""How right the demo looks: the demo model on clips of the animated scene, scored against their ground truth.

    python benchmarks/demo_quality.py                          # the demo clip (seed 0), its first 120 frames
    python benchmarks/demo_quality.py --seeds 0,1,2 --frames 200 --name demo-quality-3seeds

Per seed and in total: recall and precision at OKS 0.5 of the people the video draws (score >= --min-score),
the share of drawn limbs that join two different people (a drawn joint belongs to the person whose same joint,
labelled or not, is nearest), the frames with such a limb, and the joint error of the matched people
(pose_stream.evaluation.clip_quality). Every frame is estimated (no pipeline, no drops).
Prints a table; writes JSON under benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from pose_stream.cli.model_args import add_grouping_arguments, grouping_params
    from pose_stream.estimator import PoseEstimator
    from pose_stream.evaluation.clip_quality import ClipQuality, score_frame
    from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_path
    from pose_stream.pipeline.sources.demo import DEMO_FPS, DEMO_SIZE
    from pose_stream.synthetic.animation import demo_frames

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the animated scene (default: 0)")
    parser.add_argument("--frames", type=int, default=120, help="frames per seed (default: %(default)s)")
    parser.add_argument("--model", default=DEMO_MODEL_NAME)
    parser.add_argument("--weights", default=str(demo_model_path()))
    parser.add_argument("--input-size", default=str(DEMO_INPUT_SIZE))
    parser.add_argument("--min-score", type=float, default=0.15, help="people drawn (default: %(default)s)")
    parser.add_argument("--no-flip", action="store_true")
    add_grouping_arguments(parser)
    parser.add_argument("--name", default=None, help="JSON file stem (default: demo-quality-DATE)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    total = ClipQuality()
    per_seed = {}
    started = time.monotonic()
    params = grouping_params(args)
    print(f"grouping max_reach: {params.max_reach}", flush=True)
    with PoseEstimator(args.model, weights=args.weights, input_size=args.input_size, flip=not args.no_flip,
                       device="cpu", params=params) as estimator:
        joint_set = estimator.joint_set
        for seed in seeds:
            quality = ClipQuality()
            width, height = DEMO_SIZE
            for frame in demo_frames(width, height, DEMO_FPS, seed=seed, num_frames=args.frames):
                poses = estimator.predict(frame.image)
                for q in (quality, total):
                    score_frame(q, poses.keypoints, poses.scores, frame.keypoints, joint_set, args.min_score,
                                positions=frame.positions)
            per_seed[seed] = quality.to_dict()
            print(f"seed {seed}: {_line(per_seed[seed])}", flush=True)
    result = {"date": datetime.date.today().isoformat(), "command": " ".join(["python", *sys.argv]),
              "settings": {k: str(v) for k, v in vars(args).items()}, "seconds": round(time.monotonic() - started, 1),
              "total": total.to_dict(), "per_seed": per_seed}
    print(f"all:    {_line(result['total'])}")
    name = args.name or f"demo-quality-{result['date']}"
    out = args.out_dir / f"{name}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _line(d: dict) -> str:
    return (f"recall {d['recall']:.3f}  precision {d['precision']:.3f}  cross limbs {d['cross_limbs']}/{d['limbs']} "
            f"({100 * d['cross_limb_rate']:.1f}%) in {d['frames_with_cross']}/{d['frames']} frames "
            f"({100 * d['cross_frame_rate']:.1f}%)  joint error mean {d['joint_error_px']['mean']} px, median "
            f"{d['joint_error_px']['median']} px")


if __name__ == "__main__":
    sys.exit(main())
