"""`pose-stream export`: PyTorch checkpoint -> verified ONNX model."""
from __future__ import annotations

import argparse
import sys

from pose_stream.cli.arguments import positive_int
from pose_stream.cli.model_args import add_model_arguments, parse_input_size
from pose_stream.errors import PoseStreamError


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
    add_model_arguments(p, files=("weights",), backend=None, device=False, input_size="512x960",
                        file_help={"weights": "checkpoint (.pth); omitted: random weights (for testing the toolchain)"})
    p.add_argument("--batch", type=positive_int, default=1, help="batch size of the example input (default: %(default)s)")
    p.add_argument("--dynamic", action="store_true",
                   help="make height and width dynamic too (the batch always is; --static for none)")
    p.add_argument("--static", action="store_true", help="a fully static model (batch, height and width fixed)")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (>= 17, default: %(default)s)")
    p.add_argument("-o", "--output", required=True, help="where to write the .onnx file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    input_hw = parse_input_size(args).hw
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
    report = export_onnx(model, args.output, input_hw=input_hw, batch=args.batch, dynamic=False if args.static else True if args.dynamic else "batch",
                         opset=args.opset, progress=progress)
    print(report.summary())
    return 0
