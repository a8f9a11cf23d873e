"""`pose-stream run` (also `pose-stream --source X`): pose estimation on cameras, streams, files and the demo."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from pose_stream.cli.arguments import at_least, non_negative_float, non_negative_int, positive_float, positive_int
from pose_stream.cli.model_args import (
    DEFAULT_MODEL, add_grouping_arguments, add_model_arguments, grouping_params, parse_input_size, triton_options,
)
from pose_stream.cli.progress import ProgressSink
from pose_stream.cli.signals import STOP_SIGNALS
from pose_stream.cli.tracking_args import add_tracking_arguments, tracking_configs
from pose_stream.errors import PoseStreamError
from pose_stream.pipeline.render import MIN_PERSON_SCORE

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  pose-stream --source demo
      the synthetic demo (no camera, no weights needed; runs on a CPU)
  pose-stream --source webcam --weights pose_higher_hrnet_w32_512.pth --show
  pose-stream --source rtsp://user:pass@10.0.0.7:554/stream1 --engine w32_512_fp16.plan --json poses.jsonl
  pose-stream --source rtsp://cam1/live --source rtsp://cam2/live --onnx w32.onnx --no-render --stats
  pose-stream --source walk.mp4 --weights w32_512.pth --save walk_poses.mp4 --json walk.jsonl
  pose-stream --source 'val2017/*.jpg' --weights w32_512.pth --coco-results results.json --no-render

Live sources keep only the newest frame (stale frames are dropped and counted), reconnect forever with
backoff (--reconnect-attempts N to give up), and use RTSP over TCP (--rtsp-transport udp to change).
Files, folders and globs: every frame, in order; an unreadable image is skipped (--strict stops instead).
Outputs are written as NAME.partial.EXT and renamed when the run ends; an existing file is only replaced
with --overwrite, and an input never. Ctrl-C (or SIGTERM) stops capture, finishes the frames in flight,
finalises the outputs and exits 0; a second Ctrl-C abandons the frames in flight and exits 130.
"""



def register(subparsers: argparse._SubParsersAction) -> None:
    from pose_stream.pipeline.sources import SOURCE_HELP

    p = subparsers.add_parser(
        "run", help="estimate poses on a camera, RTSP/HTTP stream, video, images or the demo",
        description="Multi-person pose estimation on live video: capture -> infer -> aggregate -> group -> "
        "outputs, one thread per stage.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("input")
    g.add_argument("--source", action="append", required=True, metavar="SOURCE",
                   help=f"{SOURCE_HELP}; repeat for several sources")
    g.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames in total")
    g.add_argument("--every-frame", action="store_true",
                   help="play the demo like a file: every frame, as fast as they are processed (default: like a "
                        "camera, at 25 fps, the newest frame kept and the others dropped and counted)")
    g.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image of a folder or glob (default: skip it with a warning)")

    g = p.add_argument_group("model")
    add_model_arguments(g, model_default=None, input_size="",
                        model_help=f"model config (default: {DEFAULT_MODEL}; the demo model for --source demo)",
                        file_help={"weights": "PyTorch checkpoint", "onnx": "ONNX model (pose-stream export)",
                                   "engine": "TensorRT engine (pose-stream build-engine); its heatmaps stay on the "
                                             "GPU for the CUDA aggregation"})
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="average with the horizontally flipped image (default: on)")
    add_grouping_arguments(g)
    g.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="frames of any sources run through the network in one call (with their flipped copies); "
                        "gathered round robin across sources (default: %(default)s)")
    g.add_argument("--batch-wait", type=non_negative_float, default=10.0, metavar="MS",
                   help="run a partial batch this long after its oldest frame was captured (default: %(default)g)")
    g.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="replay the torch network from CUDA graphs (default: on with a CUDA GPU)")
    g.add_argument("--torch-compile", action="store_true",
                   help="run the torch network through torch.compile instead (first calls compile)")
    g.add_argument("--max-aspect", type=at_least(1.0), default=4.0, metavar="RATIO",
                   help="refuse images whose long side exceeds RATIO times the short side (each costs the "
                        "network input of a RATIO:1 panorama; default: %(default)g)")

    g = p.add_argument_group("outputs")
    g.add_argument("--show", action="store_true", help="show a window with skeletons, FPS and latency")
    g.add_argument("--save", metavar="OUT.mp4", help="write the annotated video (at the source frame rate)")
    g.add_argument("--json", metavar="OUT.jsonl", help="write one JSON line per frame (flushed per frame); - for "
                                                     "standard output (the summary then goes to standard error)")
    g.add_argument("--coco-results", metavar="OUT.json", help="write COCO keypoint results (image sources)")
    g.add_argument("--serve", metavar="[HOST:]PORT",
                   help="live view in a browser at http://HOST:PORT/ (each source's video and numbers; /api/poses, "
                        "/metrics for Prometheus); HOST defaults to 127.0.0.1, 0.0.0.0 serves every network")
    g.add_argument("--min-score", type=non_negative_float, default=MIN_PERSON_SCORE, metavar="S",
                   help="leave out people scoring below S from every output: what the video draws is what the "
                        "JSON lines and COCO results hold (default: %(default)g; 0 keeps every fragment)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace output files that exist (inputs are never overwritten)")
    g.add_argument("--no-render", action="store_true", help="draw nothing (headless throughput)")
    g.add_argument("--stats", action="store_true", help="print live statistics and per-stage timings")

    add_tracking_arguments(p.add_argument_group("tracking and smoothing"))

    g = p.add_argument_group("live sources")
    g.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp", help="default: %(default)s")
    g.add_argument("--timeout", type=positive_float, default=2.0, metavar="SECONDS",
                   help="open/read timeout; a stream without frames this long is stalled (default: %(default)s)")
    g.add_argument("--reconnect-attempts", type=non_negative_int, default=0, metavar="N",
                   help="give up after N failed connection attempts in a row (default: 0, retry forever)")
    # Also accepted after the subcommand, since `pose-stream -v --source X` becomes `pose-stream run -v --source X`.
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output (-vv: debug)")
    p.set_defaults(func=run)


DEMO_VIDEO = "pose-stream-demo.mp4"


def demo_model() -> tuple[str, str, int]:
    """(model config, weights, input size) of the bundled demo model, used for `--source demo` when no model is
    given; the input size is the one it was trained at, which need not be its config's default."""
    from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, DEMO_NOTICE, demo_model_path

    print(f"pose-stream: note: {DEMO_NOTICE}", file=sys.stderr)
    return DEMO_MODEL_NAME, str(demo_model_path()), DEMO_INPUT_SIZE


def _demo_only(args: argparse.Namespace) -> bool:
    """Every --source is the demo (demo or demo:SEED)."""
    return all(spec.strip() == "demo" or spec.strip().startswith("demo:") for spec in args.source)


def estimator_config(args: argparse.Namespace) -> Any:
    """The EstimatorConfig the options describe (validated: model, model file and backend, sizes, device)."""
    from pose_stream.estimator import EstimatorConfig

    return EstimatorConfig(model=args.model, weights=args.weights, onnx=args.onnx, engine=args.engine,
                           backend=args.backend, input_size=args.input_size, flip=args.flip, device=args.device,
                           max_aspect=args.max_aspect, batch=args.batch, cuda_graph=args.cuda_graph,
                           torch_compile=args.torch_compile, triton=triton_options(args),
                           params=grouping_params(args))


def make_estimator(args: argparse.Namespace) -> Any:
    """The PoseEstimator the options describe (backend created later, in the pipeline's inference thread)."""
    from pose_stream.estimator import PoseEstimator

    return PoseEstimator(estimator_config(args))


def _check_options(args: argparse.Namespace) -> None:
    """Resolve defaults and reject bad combinations (one PoseStreamError each)."""
    from pose_stream.pipeline.render import gui_available
    from pose_stream.pipeline.sinks import HEADLESS_HINT

    size = parse_input_size(args)
    # S stays a number (as --input-size has always given it); HxW is an InputSize.
    args.input_size = None if size is None else size.short if size.short is not None else size
    if args.no_render and (args.show or args.save or args.serve):
        raise PoseStreamError("--no-render cannot be combined with --show, --save or --serve (they need drawn frames)")
    if args.serve:
        from pose_stream.web.address import parse_address

        args.serve_address = parse_address(args.serve)
    if args.show and not gui_available():
        raise PoseStreamError(f"--show: {HEADLESS_HINT}")
    has_model = args.weights or args.onnx or args.engine or args.backend == "triton"
    if not has_model:
        if not _demo_only(args):
            raise PoseStreamError("no model given: pass --weights X.pth, --onnx X.onnx or --engine X.plan "
                                  "(only --source demo runs without one)")
        if args.model is None:
            args.model, args.weights, demo_size = demo_model()
            args.input_size = args.input_size or demo_size
    args.model = args.model or DEFAULT_MODEL
    from pose_stream.models.config import get_config  # imports torch: after the cheap checks

    try:
        config = get_config(args.model)
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    if args.input_size is None:
        args.input_size = config.input_size
    for path in (args.weights, args.onnx, args.engine):
        if path and not os.path.isfile(path):
            raise PoseStreamError(f"model file not found: {path}")
    estimator_config(args)  # every model option checked before any input is opened
    args.tracking, args.smoothing = tracking_configs(args)


def _build_sinks(args: argparse.Namespace, sources: list) -> list:
    from pose_stream.pipeline.render import gui_available
    from pose_stream.pipeline.sinks import CocoResultsSink, JsonLinesSink, VideoSink, WindowSink

    show = args.show
    overwrite_video = args.overwrite
    if not (args.show or args.save or args.json or args.coco_results or args.no_render or args.serve):
        show = gui_available() and (sys.platform != "linux" or bool(os.environ.get("DISPLAY")))
        if not show and _demo_only(args):
            # The demo is for looking at: without a window, write the annotated video where it can be found.
            # The name is ours, so the previous demo's video is replaced.
            args.save, overwrite_video = os.path.abspath(DEMO_VIDEO), True
            print(f"pose-stream: no window available: writing the annotated demo to {args.save}", file=sys.stderr)
        elif not show:
            print("pose-stream: no output chosen (--show, --save, --json, --coco-results): printing statistics only",
                  file=sys.stderr)
    sinks: list = []
    if show:
        sinks.append(WindowSink())
    if args.save:
        sinks.append(VideoSink(args.save, overwrite=overwrite_video))
    if args.json:
        sinks.append(JsonLinesSink(args.json, overwrite=args.overwrite))
    if args.coco_results:
        sinks.append(CocoResultsSink(args.coco_results, overwrite=args.overwrite))
    if args.serve:
        from pose_stream.web import LiveView

        sinks.append(LiveView(sources))
    return sinks


class _RunStopper:
    """What SIGINT/SIGTERM do during `run`: before the pipeline exists, a request to stop before starting;
    then the first one stops the pipeline (finish the frames in flight, finalise), the second abandons them;
    once the pipeline has returned, nothing."""

    def __init__(self) -> None:
        self.requested = False
        self.pipeline: Any = None
        self.done = False

    def __call__(self, count: int) -> None:
        # os.write: print() is not safe inside a signal handler (re-entrant buffered I/O).
        if self.done or (self.pipeline is not None and self.pipeline.abandoned):
            return
        if self.pipeline is None:
            if not self.requested:
                os.write(2, b"pose-stream: stopping before the run starts\n")
            self.requested = True
        elif self.pipeline.stopping and count > 1:
            self.pipeline.abandon()
            os.write(2, b"pose-stream: abandoning the frames in flight\n")
        else:
            self.pipeline.stop()
            os.write(2, b"pose-stream: stopping (finishing the frames in flight; again to abandon them)\n")

    def attach(self, pipeline: Any) -> None:
        """From now on signals go to `pipeline`; a request that came while it was being built applies now."""
        self.pipeline = pipeline
        if self.requested:
            pipeline.stop()


def _quiet_opencv(verbosity: int) -> None:
    """Keep OpenCV's and FFmpeg's own console messages (refused connections, timeouts) out of the output:
    the source states and errors say the same in one line. -vv shows them again."""
    if verbosity >= 2:
        return
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when FFmpeg is first used
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def run(args: argparse.Namespace) -> int:
    stopper = _RunStopper()
    with STOP_SIGNALS.listening(stopper):
        try:
            return _run(args, stopper)
        finally:
            stopper.done = True


def _run(args: argparse.Namespace, stopper: _RunStopper) -> int:
    from pose_stream.pipeline import LiveOptions, ReconnectPolicy, open_source
    from pose_stream.pipeline.outputs import check_outputs

    _quiet_opencv(getattr(args, "verbose", 0))
    live = LiveOptions(transport=args.rtsp_transport, timeout=args.timeout,
                       reconnect=ReconnectPolicy(max_attempts=args.reconnect_attempts or None))
    sources = [open_source(spec, live, strict=args.strict, pace_demo=not args.every_frame) for spec in args.source]
    _check_options(args)
    sinks = _build_sinks(args, sources)
    # Before any input is opened or a model loaded: no output may destroy an input or an existing file.
    check_outputs(sinks, sources, other_inputs=(args.weights, args.onnx, args.engine))
    for source in sources:
        source.check()
    if stopper.requested:
        return 0
    server = _start_server(args, sinks)
    try:
        return _run_pipeline(args, stopper, sources, sinks)
    finally:
        if server is not None:
            server.stop()


def _start_server(args: argparse.Namespace, sinks: list) -> Any:
    """The live view's web server, listening (PoseStreamError when it cannot), or None without --serve."""
    if not args.serve:
        return None
    from pose_stream.web import LiveView, WebServer

    view = next(sink for sink in sinks if isinstance(sink, LiveView))
    server = WebServer(view, *args.serve_address)
    server.start()
    print(f"pose-stream: live view on {server.url}", file=sys.stderr, flush=True)
    return server


def _run_pipeline(args: argparse.Namespace, stopper: _RunStopper, sources: list, sinks: list) -> int:
    from pose_stream.pipeline import Pipeline, PipelineConfig

    totals = [s.expected_frames for s in sources]
    total = None if None in totals or any(s.live for s in sources) else sum(totals)
    if total is not None and args.max_frames:
        total = min(total, args.max_frames)
    progress = ProgressSink(total, args.stats)

    weights = args.weights or args.onnx or args.engine or "random weights"
    print(f"pose-stream: model {args.model} ({weights}), input {args.input_size}, flip {'on' if args.flip else 'off'}; "
          f"sources: {', '.join(s.source_id for s in sources)}", file=sys.stderr)
    estimator = make_estimator(args)

    def announce(info: Any) -> None:
        print(f"pose-stream: backend {info if info is not None else 'unknown'}", file=sys.stderr, flush=True)

    # After Ctrl-C, frames in flight get 1 s to finish; the frame being inferred always completes (the run waits
    # for every thread: the interpreter must not exit under a running network call).
    config = PipelineConfig(max_frames=args.max_frames, drain_timeout=1.0, join_timeout=None, batch=args.batch,
                            batch_wait=args.batch_wait / 1000.0, min_score=args.min_score,
                            tracking=args.tracking, smoothing=args.smoothing)
    pipeline = Pipeline(estimator, sources, [*sinks, progress], config, on_backend_ready=announce)
    progress.pipeline = pipeline
    if total is None and not args.stats:
        print("pose-stream: running (Ctrl-C to stop)", file=sys.stderr)
    stopper.attach(pipeline)
    try:
        stats = pipeline.run()
    except PoseStreamError as exc:
        kept = [str(path) for sink in sinks for path in getattr(sink, "kept", ())]
        if kept:
            raise PoseStreamError(f"{exc} (the partial output is kept in {', '.join(kept)})") from None
        raise
    finally:
        stopper.done = True
    report = sys.stderr if args.json == "-" else sys.stdout  # standard output carries only the JSON lines then
    print(stats.format_summary(stages=args.stats), file=report)
    for sink in sinks:
        for path in getattr(sink, "written", ()):
            print(f"wrote {path}", file=report)
    if pipeline.abandoned:
        return _abandoned_exit(pipeline)
    return 0


ABANDONED_EXIT = 130  # as for a shell command ended by Ctrl-C


def _abandoned_exit(pipeline: Any) -> int:
    """After a second Ctrl-C: the outputs are finalised; threads may still be inside a network call, under
    which the interpreter must not shut down (torch aborts the process), so leave without shutting it down."""
    busy = pipeline.alive_threads
    if not busy:
        return ABANDONED_EXIT
    log.info("leaving %s running", ", ".join(busy))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(ABANDONED_EXIT)
