"""`pose-stream triton-repo`: a Triton Inference Server model repository from a checkpoint, ONNX model or plan."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from pose_stream.cli.arguments import non_negative_int, positive_int
from pose_stream.cli.model_args import add_model_arguments, parse_input_size
from pose_stream.errors import PoseStreamError

EPILOG = """\
examples:
  pose-stream triton-repo --onnx w32.onnx -o models
  pose-stream triton-repo --weights pose_higher_hrnet_w32_512.pth --model w32_512 --input-size 512x960 -o models
  pose-stream triton-repo --engine w32_fp16.plan -o models --name w32 --max-batch 32

Then serve it with NVIDIA's container (the repository mounted at /models):
  docker run --gpus all --rm -p 8001:8001 -v $PWD/models:/models nvcr.io/nvidia/tritonserver:24.08-py3 \\
      tritonserver --model-repository=/models
and point pose-stream at it: pose-stream --source rtsp://cam/live --backend triton --triton-url SERVER:8001
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "triton-repo", help="write a Triton Inference Server model repository (config.pbtxt and the model)",
        description="Write <DIR>/<NAME>/1/model.onnx (or model.plan) and <DIR>/<NAME>/config.pbtxt: platform, "
        "max_batch_size, tensor names, types and dims read from the model, dynamic batching and an instance group.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p, backend=None, device=False, input_size="512x960", file_help={
        "weights": "checkpoint (.pth): exported to ONNX first, with a dynamic batch",
        "onnx": "ONNX model (pose-stream export)", "engine": "TensorRT plan (pose-stream build-engine)"})
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the model repository folder")
    p.add_argument("--name", default="pose", help="the model's name on the server (default: %(default)s)")
    p.add_argument("--max-batch", type=positive_int, default=16, help="max_batch_size (default: %(default)s)")
    p.add_argument("--preferred-batch", default="4,8,16", help="preferred batch sizes (default: %(default)s)")
    p.add_argument("--queue-delay-us", type=non_negative_int, default=2000,
                   help="longest wait for a batch to fill, microseconds (default: %(default)s)")
    p.add_argument("--instances", type=positive_int, default=1, help="model instances (default: %(default)s)")
    p.add_argument("--cpu", action="store_true", help="instances on the CPU (KIND_CPU) instead of the GPU")
    p.add_argument("--overwrite", action="store_true", help="replace the model's folder if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pose_stream.export.triton_repo import RepositoryOptions, write_repository

    try:
        preferred = tuple(int(v) for v in args.preferred_batch.split(",") if v.strip())
    except ValueError:
        raise PoseStreamError(f"--preferred-batch takes whole numbers such as 4,8,16, got {args.preferred_batch!r}") from None
    preferred = tuple(b for b in preferred if b <= args.max_batch) or (args.max_batch,)
    options = RepositoryOptions(name=args.name, max_batch_size=args.max_batch, preferred_batch_sizes=preferred,
                                max_queue_delay_us=args.queue_delay_us, instances=args.instances,
                                kind="KIND_CPU" if args.cpu else "KIND_GPU")
    given = [path for path in (args.weights, args.onnx, args.engine) if path]
    if len(given) != 1:
        raise PoseStreamError("give one model: --weights X.pth (with --model), --onnx X.onnx or --engine X.plan")
    if not Path(given[0]).is_file():
        raise PoseStreamError(f"model file not found: {given[0]}")
    if args.weights:
        from pose_stream.export import export_onnx
        from pose_stream.models import build_model, load_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            onnx = Path(tmp) / "model.onnx"
            print(f"exporting {args.weights} ({args.model}) to ONNX ...", file=sys.stderr, flush=True)
            export_onnx(load_checkpoint(build_model(args.model), args.weights), onnx,
                        input_hw=parse_input_size(args).hw, dynamic=True)
            folder = write_repository(args.output, onnx, options, overwrite=args.overwrite)
    else:
        folder = write_repository(args.output, given[0], options, overwrite=args.overwrite)
    print(f"wrote {folder}/config.pbtxt and the model in {folder}/1")
    return 0
