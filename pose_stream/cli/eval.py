"""`pose-stream eval`: COCO keypoint AP/AR of a model on a COCO-format set (and a backend comparison)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pose_stream.cli.arguments import positive_int
from pose_stream.cli.model_args import (
    add_grouping_arguments, add_model_arguments, grouping_params, parse_input_size, triton_options,
)
from pose_stream.errors import PoseStreamError

EXAMPLES = """\
examples:
  pose-stream eval --images val2017 --annotations person_keypoints_val2017.json \\
      --weights pose_higher_hrnet_w32_512.pth --model w32_512 --results w32_results.json
  pose-stream eval --images val2017 --annotations person_keypoints_val2017.json --onnx w32.onnx --no-flip
  pose-stream eval --images val2017 --annotations person_keypoints_val2017.json \\
      --weights pose_higher_hrnet_w32_512.pth --scales 2,1,0.5
  pose-stream eval --images crowdpose/images --annotations crowdpose_test.json \\
      --weights pose_higher_hrnet_w32_512_crowdpose.pth --model crowdpose_w32_512
  pose-stream eval ... --weights w32.pth --backend torch --compare-backend torch-fp16   (FP16 vs FP32 AP)
  pose-stream eval ... --breakdown   (AP with each kind of error removed, and each joint's mean offset)

The joint layout (COCO 17, CrowdPose 14) and its OKS sigmas follow the annotations file.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="COCO keypoint AP/AR on a COCO-format set (pycocotools)",
        description="Run the estimator on every annotated image, score it with pycocotools (the ten COCO keypoint "
        "numbers) and write the results json in COCO format (one result per person, no OKS-NMS, no rescoring).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--images", required=True, help="folder holding the images named in the annotations")
    p.add_argument("--annotations", required=True, help="COCO person_keypoints json")
    # Several model files may be given: --compare-backend runs a second backend on its own file.
    add_model_arguments(p, one_file=False, input_size="")
    p.add_argument("--compare-backend", metavar="BACKEND",
                   help="also run this backend on the same set and report the AP difference")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="flip test (default: on)")
    add_grouping_arguments(p)
    p.add_argument("--scales", default="1", help="test scales, e.g. 2,1,0.5 (default: %(default)s)")
    p.add_argument("--max-images", type=positive_int, help="evaluate only the first N images")
    p.add_argument("--results", help="write the COCO results json here")
    p.add_argument("--breakdown", action="store_true",
                   help="also show where the AP goes: the AP again with the matched people's head, arm, leg, "
                   "hidden or small/medium/large-person joints replaced by the labels, and every joint's mean "
                   "offset from its label")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise PoseStreamError(f"--scales takes comma-separated numbers such as 2,1,0.5, got {text!r}") from None
    if not scales or any(s <= 0 for s in scales):
        raise PoseStreamError(f"--scales must be positive numbers, got {text!r}")
    return scales


def _spec(name: str, args: argparse.Namespace):
    """The backend `name` names; "auto": the one the first given model file is for (engine, onnx, weights)."""
    from pose_stream.engine.registry import BACKENDS, get_backend

    if name == "auto":
        return BACKENDS["tensorrt" if args.engine else "onnxruntime" if args.onnx else "torch"]
    spec = get_backend(name)
    if spec.framework != "triton" and not getattr(args, spec.option.lstrip("-")):
        raise PoseStreamError(f"backend {spec.name} needs {spec.option}")
    return spec


def _label(spec) -> str:
    return f"{spec.name} ({spec.precision})"


def run(args: argparse.Namespace) -> int:
    from pose_stream.evaluation import evaluate, load_keypoint_annotations, write_results
    from pose_stream.evaluation.runner import Comparison, image_files
    from pose_stream.models import get_config

    if not (args.weights or args.onnx or args.engine or "triton" in (args.backend, args.compare_backend)):
        raise PoseStreamError("give the network: --weights (with --model), --onnx or --engine")
    for option, path in (("--weights", args.weights), ("--onnx", args.onnx), ("--engine", args.engine)):
        if path and not Path(path).is_file():
            raise PoseStreamError(f"{option} file not found: {path}")
    if args.max_images is not None and args.max_images < 1:
        raise PoseStreamError("--max-images must be at least 1")
    if args.results and not Path(args.results).resolve().parent.is_dir():
        raise PoseStreamError(f"cannot write --results: folder {Path(args.results).parent} does not exist")
    try:
        model_config = get_config(args.model)
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    scales = parse_scales(args.scales)
    specs = [_spec(args.backend, args)]
    if args.compare_backend:
        specs.append(_spec(args.compare_backend, args))
    annotations = load_keypoint_annotations(args.annotations)
    if annotations.joint_set.name != model_config.joint_set.name:
        raise PoseStreamError(f"{args.annotations} uses the {annotations.joint_set.name} layout, but model "
                              f"{args.model} predicts {model_config.joint_set.name}")
    items = image_files(annotations, args.images, args.max_images)
    ids = [image_id for image_id, _ in items]
    input_size = parse_input_size(args) or model_config.input_size
    reports, predictions_per_backend = [], []
    for index, spec in enumerate(specs):
        predictions = _predict(spec, args, input_size, scales, items)
        predictions_per_backend.append(predictions)
        report = evaluate(predictions, annotations, image_ids=ids)
        reports.append(report)
        if args.results:
            path = Path(args.results)
            out = path if index == 0 else path.with_name(f"{path.stem}.{spec.name}{path.suffix}")
            print(f"wrote {write_results(predictions, out)}", file=sys.stderr)
    settings = (f"{args.model}, input {input_size}, scales {','.join(f'{s:g}' for s in scales)}, "
                f"flip {'on' if args.flip else 'off'}, {len(items)} images, {annotations.joint_set.name} sigmas")
    if len(reports) == 1:
        print(f"COCO keypoint evaluation: {_label(specs[0])}; {settings}\n\n{reports[0].table()}")
    else:
        comparison = Comparison(_label(specs[0]), reports[0], _label(specs[1]), reports[1])
        print(f"COCO keypoint evaluation, two backends on the same set; {settings}\n\n{comparison.table()}\n\n"
              f"AP difference ({comparison.second_label} - {comparison.first_label}): {comparison.ap_difference:+.4f}")
    if args.breakdown:
        _print_breakdown(predictions_per_backend[0], annotations, ids, _label(specs[0]))
    return 0


def _print_breakdown(predictions, annotations, ids, label: str) -> None:
    from pose_stream.evaluation.breakdown import ap_breakdown, breakdown_table, joint_offsets
    from pose_stream.evaluation.coco import as_results

    results = as_results(predictions)  # converted once for both
    rows = ap_breakdown(results, annotations, image_ids=ids)
    offsets = joint_offsets(results, annotations)
    print(f"\nWhere the AP goes ({label}): the matched people's joints named in the first column are replaced by "
          f"their labels and the set is scored again; offsets are of visible joints within 0.1 sqrt(area) of "
          f"their label, in image pixels\n\n{breakdown_table(rows, offsets, annotations.joint_set)}")


def _predict(spec, args: argparse.Namespace, input_size, scales: tuple[float, ...], items):
    from pose_stream.benchmarking.backends import build_estimator, unavailable_reason
    from pose_stream.evaluation.runner import predict_images

    if unavailable_reason(spec):
        raise PoseStreamError(f"backend {spec.name} is not available here: {unavailable_reason(spec)}")
    if spec.framework == "triton":
        source = {"triton": triton_options(args)}
    else:
        attr = spec.option.lstrip("-")
        source = {attr: getattr(args, attr)}
    # max_aspect=None: a benchmark set is scored on every image, as the reference test does.
    estimator = build_estimator(spec, model=args.model, **source, input_size=input_size, flip=args.flip,
                                scales=scales, device=args.device, max_aspect=None, params=grouping_params(args))
    with estimator:
        return predict_images(estimator, items, progress=not args.no_progress, description=_label(spec))
