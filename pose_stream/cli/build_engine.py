"""`pose-stream build-engine`: ONNX model -> cached FP16 TensorRT engine, checked against ONNX Runtime."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pose_stream.cli.arguments import non_negative_int, positive_float
from pose_stream.input_size import InputSize
from pose_stream.errors import PoseStreamError

EPILOG = """\
examples:
  pose-stream build-engine --onnx w32_512x960.onnx
      FP16 engine for the model's own fixed input, kept in the engine cache
  pose-stream build-engine --onnx w32_dynamic.onnx --input-size 512x960 --input-size 512x512 --batch 1-2 -o w32.plan
      one optimization profile per input size, batch 1 to 2 (a frame and its flipped copy)
  pose-stream build-engine --onnx w32_512x960.onnx --fp32 --no-check

A second run with the same model, GPU, TensorRT version, precision and shapes reuses the engine at once;
changing any of them rebuilds it. Every plan has a sidecar <plan>.json saying what it was built for.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-engine",
        help="build (or reuse) a TensorRT engine from an ONNX model",
        description="Build a TensorRT engine from an exported ONNX model: FP16 by default, one optimization "
        "profile per input size, a persistent timing cache, the plan written atomically with a sidecar JSON, "
        "and an accuracy check against ONNX Runtime FP32 after building.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--onnx", required=True, help="the model written by `pose-stream export`")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", dest="fp16", action="store_true", default=True,
                           help="allow FP16 kernels (default)")
    precision.add_argument("--fp32", dest="fp16", action="store_false", help="FP32 only")
    p.add_argument("--input-size", action="append", metavar="S|HxW",
                   help="network input HxW (S: S x S), multiples of 32, repeatable: one profile each (default: the "
                        "model's fixed size)")
    p.add_argument("--batch", metavar="MIN-MAX", help="batch range such as 1-8, or one batch size (default: 1)")
    p.add_argument("-o", "--output", help="where to write the plan (default: the engine cache, named by its key)")
    p.add_argument("--cache-dir", help="engine and timing cache directory (default: ~/.cache/pose-stream/engines)")
    p.add_argument("--workspace-gb", type=positive_float, default=4.0, help="builder scratch memory (default: %(default)s)")
    p.add_argument("--device", type=non_negative_int, default=0, help="CUDA device index (default: %(default)s)")
    p.add_argument("--no-timing-cache", action="store_true", help="neither read nor write the timing cache")
    p.add_argument("--no-check", action="store_true", help="skip the accuracy check after building")
    p.add_argument("--force", action="store_true", help="rebuild even if a matching engine exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pose_stream.engine.profiles import onnx_input_spec, parse_batch_range, profiles_for

    onnx_path = Path(args.onnx)
    if not onnx_path.is_file():
        raise PoseStreamError(f"ONNX model not found: {onnx_path}")
    sizes = [InputSize.parse(s).hw for s in args.input_size] if args.input_size else None
    batch = parse_batch_range(args.batch) if args.batch else None
    _, dims = onnx_input_spec(onnx_path)
    shapes = profiles_for(dims, sizes, batch, source=onnx_path)

    from pose_stream.engine.builder import build_engine

    print(f"TensorRT engine for {onnx_path}: {'fp16' if args.fp16 else 'fp32'}, inputs "
          f"{', '.join(s.describe() for s in shapes)}", file=sys.stderr, flush=True)
    result = build_engine(
        onnx_path, args.output, fp16=args.fp16, shapes=shapes, workspace_gb=args.workspace_gb,
        timing_cache=not args.no_timing_cache, cache_dir=args.cache_dir, device=args.device,
        check_accuracy=not args.no_check, force=args.force, progress=sys.stderr.isatty(),
    )
    print(result.summary())
    if not result.passed:
        print(f"pose-stream: error: the engine drifted from ONNX Runtime FP32 in {', '.join(result.drifted)} "
              f"(see DRIFT above); it was kept at {result.path}", file=sys.stderr)
        return 1
    return 0
