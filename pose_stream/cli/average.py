"""`pose-stream average`: average the weights of fine-tuned runs of one model into one checkpoint."""
from __future__ import annotations

import argparse
from pathlib import Path

from pose_stream.cli.arguments import finite_float
from pose_stream.errors import PoseStreamError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "average",
        help="average the weights of several fine-tuned runs of one model (a model soup)",
        description="Write the element-wise mean of several checkpoints of one model config. Runs fine-tuned "
        "from the same weights (for example two `pose-stream train --init base.pth` runs with other data, "
        "seeds or input sizes) often average into a better network than either; runs trained from scratch "
        "separately do not. Every checkpoint is checked against --model first. Evaluate the result with "
        "`pose-stream eval` before using it.",
        epilog="examples:\n"
        "  pose-stream average --model small_w32 run_a.pth run_b.pth --out soup.pth\n"
        "  pose-stream average --model small_w32 run_a.pth run_b.pth run_c.pth --factors 2 1 1 --out soup.pth\n"
        "  pose-stream average --model small_w32 run_a.pth run_b.pth --half --out soup.pth   (float16 file)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="the .pth files to average (two or more)")
    p.add_argument("--model", required=True, help="model config that every checkpoint must fit, e.g. small_w32")
    p.add_argument("--out", required=True, help="checkpoint to write (.pth)")
    p.add_argument("--factors", type=finite_float, nargs="+", metavar="F",
                   help="relative weight of each checkpoint, in order (default: all equal)")
    p.add_argument("--half", action="store_true",
                   help="store floating tensors as float16 (half the file; they load into a float32 model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if len(args.checkpoints) < 2:
        raise PoseStreamError("give at least two checkpoints to average")
    if args.factors is not None and len(args.factors) != len(args.checkpoints):
        raise PoseStreamError(f"--factors has {len(args.factors)} values for {len(args.checkpoints)} checkpoints")
    out = Path(args.out)
    if out.resolve() in {Path(c).resolve() for c in args.checkpoints}:
        raise PoseStreamError(f"--out {out} is one of the inputs; write the average to a new file")

    from pose_stream.models import build_model, get_config, load_checkpoint
    from pose_stream.models.average import average_state_dicts, normalised_shares
    from pose_stream.models.checkpoint import write_state_dict

    try:
        config = get_config(args.model)
        shares = normalised_shares(args.factors, len(args.checkpoints))
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    # Loading each file into the model gives one clear error for a file of another model, and equal keys and
    # shapes for the average.
    states = [load_checkpoint(build_model(config), path).state_dict() for path in args.checkpoints]
    write_state_dict(average_state_dicts(states, shares), out, half=args.half)
    parts = ", ".join(f"{Path(c).name} x {share:.3g}" for c, share in zip(args.checkpoints, shares))
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): {parts}")
    return 0
