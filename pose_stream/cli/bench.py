"""`pose-stream bench`: FPS and per-stage latency by backend, input size, batch, flip and people, with a baseline."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pose_stream.cli.arguments import device_name, non_negative_float, positive_float, positive_int
from pose_stream.cli.model_args import add_model_arguments, triton_options
from pose_stream.devices import DEVICE_CHOICES
from pose_stream.engine.registry import BACKEND_NAMES
from pose_stream.input_size import parse_input_sizes
from pose_stream.errors import PoseStreamError
from pose_stream.redact import mask_credentials

EXAMPLES = """\
examples:
  pose-stream bench --backend onnxruntime --people 10 --frames 200
  pose-stream bench --backend torch-fp16,tensorrt --engine w32.engine --weights pose_higher_hrnet_w32_512.pth \\
      --input-size 512x960,512x512 --batch 1,8 --people 1,10,30
  pose-stream bench --backend torch --video street.mp4 --weights pose_higher_hrnet_w32_512.pth --flip both

Writes a Markdown table to stdout, pose-stream-bench.json and pose-stream-bench.png (see --output-dir).
Backends: torch (FP32), torch-fp16 (CUDA), onnxruntime, tensorrt (needs --engine), or all present here.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="measure FPS and per-stage latency (engine-only, end-to-end, pipeline, reference-style baseline)",
        description="Time the network alone (engine-only), pose-stream's stages end to end (serially, and in the threaded "
        "pipeline), and a baseline organised "
        "like the reference test script, over backends, input sizes, batch sizes, flip and people per frame. "
        "Warm-up frames are excluded.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backend", default="all", help=f"comma-separated: {', '.join(BACKEND_NAMES)}, or all "
                   "(every one present here; default)")
    p.add_argument("--input-size", default="512x960", help="comma-separated network input sizes HxW, or S for S x S "
                   "(multiples of 32), e.g. 512x960,512x512,640 (default: %(default)s)")
    p.add_argument("--batch", default="1", help="comma-separated batch sizes (default: %(default)s)")
    p.add_argument("--flip", choices=("on", "off", "both"), default="on", help="flip test (default: %(default)s)")
    p.add_argument("--people", default=None, help="comma-separated people per generated frame (default: 10)")
    p.add_argument("--frames", type=int, default=200, help="timed frames per configuration (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames before each configuration (default: %(default)s)")
    p.add_argument("--baseline-frames", type=int, default=20, help="timed frames of the slow baseline (default: %(default)s)")
    p.add_argument("--no-baseline", action="store_true", help="skip the reference-style baseline")
    add_model_arguments(p, one_file=False, backend=None, device=False, triton=True, file_help={
        "weights": "checkpoint (.pth); omitted: random weights, seeded",
        "onnx": "ONNX model for the onnxruntime backend (default: exported from the model)",
        "engine": "TensorRT engine for the tensorrt backend"})
    p.add_argument("--video", help="a video file instead of a generated clip (frames resized to the input size)")
    p.add_argument("--decode-input", choices=("auto", "network", "synthetic"), default="auto",
                   help="decode the network's outputs, or outputs rendered from the generated people (a load that "
                   "follows --people even with random weights); auto: network with trained weights (default)")
    p.add_argument("--device", type=device_name, default="auto", help=f"{DEVICE_CHOICES} (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (the torch backend and the baseline) "
                   "and the Numba decoding (0: their default); ONNX Runtime keeps its default, as in PoseEstimator")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated clip and random weights")
    g = p.add_argument_group("many cameras (--streams)", "N paced camera-like sources at once through the pipeline, "
                             "batch 1 and batched; replaces the sweep above")
    g.add_argument("--streams", metavar="N,N,...", help="comma-separated stream counts, e.g. 1,4,16")
    g.add_argument("--stream-fps", type=positive_float, default=25.0, help="frame rate of each stream (default: %(default)g)")
    g.add_argument("--seconds", type=positive_float, default=20.0, help="timed seconds per run (default: %(default)g)")
    g.add_argument("--stream-warmup", type=non_negative_float, default=5.0,
                   help="seconds left out at the start of each run (default: %(default)g)")
    g.add_argument("--max-batch", type=positive_int, default=16,
                   help="largest batch of the batched runs (default: %(default)s)")
    g.add_argument("--batch-wait", type=non_negative_float, default=10.0, metavar="MS",
                   help="how long a partial batch waits for its oldest frame (default: %(default)g)")
    p.add_argument("--output-dir", default=".", help="where the JSON and PNG go (default: the current folder)")
    p.add_argument("--name", default="pose-stream-bench", help="file name stem of the JSON and PNG (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise PoseStreamError(f"{option} takes comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise PoseStreamError(f"{option} needs at least one value")
    return values


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """The one input-size rule over a list: each HxW, or S for S x S (a generated clip has no aspect to follow)."""
    return tuple(size.hw for size in parse_input_sizes(text))


def build_config(args: argparse.Namespace):
    from pose_stream.benchmarking import BenchConfig, parse_backends

    people = parse_int_list(args.people, "--people") if args.people is not None else (None if args.video else (10,))
    return BenchConfig(
        backends=parse_backends(args.backend), input_sizes=parse_sizes(args.input_size),
        batches=parse_int_list(args.batch, "--batch"), flips={"on": (True,), "off": (False,), "both": (False, True)}[args.flip],
        people=people, frames=args.frames, warmup=args.warmup, baseline_frames=args.baseline_frames,
        decode_input=args.decode_input, model=args.model, weights=args.weights, onnx=args.onnx, engine=args.engine,
        video=args.video, baseline=not args.no_baseline, device=args.device, threads=args.threads, seed=args.seed,
        triton=triton_options(args),
    )


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.output_dir)
    if not out_dir.is_dir():
        raise PoseStreamError(f"--output-dir {out_dir} is not a folder")
    if args.streams:
        return run_streams_command(args, out_dir)
    if args.video and not Path(args.video).is_file():
        raise PoseStreamError(f"video not found: {args.video}")
    config = build_config(args)
    from pose_stream.benchmarking import run_benchmark

    command = "pose-stream " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "pose-stream bench"
    command = mask_credentials(command)
    report = run_benchmark(config, command=command, progress=not args.no_progress)
    print(report.markdown())
    json_path = report.write_json(out_dir / f"{args.name}.json")
    png_path = report.plot(out_dir / f"{args.name}.png")
    print(f"wrote {json_path} and {png_path}", file=sys.stderr)
    return 0


def run_streams_command(args: argparse.Namespace, out_dir: Path) -> int:
    """`bench --streams`: many paced cameras through the pipeline, batch 1 and batched."""
    from pose_stream.benchmarking import streams
    from pose_stream.benchmarking.environment import collect_environment
    from pose_stream.estimator import EstimatorConfig, PoseEstimator
    from pose_stream.pipeline.sources.demo import demo_frames

    counts = parse_int_list(args.streams, "--streams")
    config = streams.StreamsConfig(streams=counts, fps=args.stream_fps, seconds=args.seconds,
                                   warmup=args.stream_warmup, max_batch=args.max_batch,
                                   batch_wait=args.batch_wait / 1000.0)
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    backend = "auto" if backends in ([], ["all"]) else backends[0]
    if len(backends) > 1:
        raise PoseStreamError("--streams measures one backend at a time: give one --backend")
    size = parse_input_sizes(args.input_size)[0]
    base = EstimatorConfig(model=args.model, weights=args.weights, onnx=args.onnx, engine=args.engine,
                           backend=backend, input_size=size, flip=args.flip != "off", device=args.device)
    frames = list(demo_frames(8, config.size))

    def make(batch: int) -> PoseEstimator:
        return PoseEstimator(base, batch=batch)

    command = mask_credentials("pose-stream " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    report = (lambda message: print(f"bench: {message}", file=sys.stderr, flush=True)) if not args.no_progress \
        else None
    rows = streams.run_streams(make, frames, config, progress=report)
    title = (f"{args.model} ({base.backend_spec.name}), input {size}, flip {'on' if base.flip else 'off'}, "
             f"{config.fps:g} fps a stream")
    print(streams.markdown(rows, title))
    json_path = streams.write_json(rows, config, collect_environment(), command, out_dir / f"{args.name}.json")
    png_path = streams.plot(rows, out_dir / f"{args.name}.png", title)
    print(f"wrote {json_path}" + (f" and {png_path}" if png_path else ""), file=sys.stderr)
    return 0
