"""`pose-stream export`: PyTorch checkpoint -> verified ONNX model."""
from __future__ import annotations

import argparse
import sys

from pose_stream.cli.arguments import positive_int
from pose_stream.errors import PoseStreamError


def parse_size(text: str) -> tuple[int, int]:
    """'512x960' -> (512, 960) as (height, width); '512' -> (512, 512). Multiples of 32 only."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise PoseStreamError(f"bad input size {text!r}: expected HEIGHTxWIDTH such as 512x960") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or any(p <= 0 or p % 32 for p in parts):
        raise PoseStreamError(f"bad input size {text!r}: height and width must be positive multiples of 32")
    return parts[0], parts[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a HigherHRNet checkpoint to a verified ONNX model",
        description="Export a HigherHRNet checkpoint to ONNX (opset 17), check the graph, and verify "
        "ONNX Runtime against PyTorch on a random input (fails above 1e-4 relative error).",
        epilog="example:\n  pose-stream export --weights pose_higher_hrnet_w32_512.pth --model w32_512 "
        "--input-size 512x960 -o w32_512x960.onnx\n  pose-stream export --model w32_512 --dynamic -o w32_dynamic.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--weights", help="checkpoint (.pth); omitted: random weights (for testing the toolchain)")
    p.add_argument("--model", default="w32_512", help="model config (default: %(default)s)")
    p.add_argument("--input-size", default="512x960", type=str, help="HEIGHTxWIDTH of the input (default: %(default)s)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size of the example input (default: %(default)s)")
    p.add_argument("--dynamic", action="store_true", help="make batch, height and width dynamic")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (>= 17, default: %(default)s)")
    p.add_argument("-o", "--output", required=True, help="where to write the .onnx file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    input_hw = parse_size(args.input_size)
    if args.batch < 1:
        raise PoseStreamError("--batch must be at least 1")
    from pose_stream.export import export_onnx
    from pose_stream.models import build_model, get_config, load_checkpoint

    try:
        get_config(args.model)
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    steps = iter(range(1, 5))

    def progress(message: str) -> None:
        print(f"[{next(steps)}/4] {message} ...", file=sys.stderr, flush=True)

    progress(f"building {args.model}" + (f" from {args.weights}" if args.weights else " (random weights)"))
    model = build_model(args.model)
    if args.weights:
        load_checkpoint(model, args.weights)
    report = export_onnx(model, args.output, input_hw=input_hw, batch=args.batch, dynamic=args.dynamic,
                         opset=args.opset, progress=progress)
    print(report.summary())
    return 0
