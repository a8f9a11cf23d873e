"""`pose-stream recalibrate`: recompute a checkpoint's BatchNorm statistics (after `pose-stream average`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pose_stream.cli.arguments import positive_int
from pose_stream.cli.augment_args import add_augment_arguments, augment_from_args
from pose_stream.errors import PoseStreamError
from pose_stream.input_size import square_side


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recalibrate",
        help="recompute the BatchNorm statistics of a checkpoint, e.g. of an averaged one",
        description="Averaging checkpoints also averages their BatchNorm running means and variances, which are "
        "not the statistics the averaged weights produce. This runs the network forward in training mode over "
        "training-distribution images (with the training augmentation) and sets every BatchNorm layer's mean and "
        "variance to the statistics of everything it saw. Only those statistics change; evaluate the result with "
        "`pose-stream eval` before using it.",
        epilog="examples:\n"
        "  pose-stream average --model small_w32 run_a.pth run_b.pth --out soup.pth\n"
        "  pose-stream recalibrate --model small_w32 --weights soup.pth --data data/synth_train --scale 1.0 2.0 "
        "--out soup_bn.pth\n"
        "  pose-stream recalibrate --model w32_512 --weights soup.pth --data ~/coco --split train2017 "
        "--images 4000 --out soup_bn.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="model config of the checkpoint, e.g. small_w32")
    p.add_argument("--weights", required=True, help="checkpoint to recalibrate (.pth)")
    p.add_argument("--data", required=True, help="training-distribution dataset folder (COCO format)")
    p.add_argument("--split", help="COCO split, e.g. train2017 (default: the folder's only/first one)")
    p.add_argument("--out", required=True, help="checkpoint to write (.pth)")
    p.add_argument("--images", type=positive_int, default=2000, help="use the first N images (default: %(default)s)")
    p.add_argument("--input-size", metavar="S", help="square input S x S, as in training (default: the model's)")
    add_augment_arguments(p)  # pass the values the runs were trained with
    p.add_argument("--batch-size", type=positive_int, default=8, help="as in training (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="augmentation seed (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--half", action="store_true",
                   help="store floating tensors as float16 (half the file; they load into a float32 model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.resolve() == Path(args.weights).resolve():
        raise PoseStreamError(f"--out {out} is the input checkpoint; write to a new file")
    from pose_stream.train.recalibrate import RecalibrateConfig, recalibrate_checkpoint

    try:
        config = RecalibrateConfig(
            data=args.data, split=args.split, images=args.images, input_size=square_side(args.input_size),
            augment=augment_from_args(args), batch_size=args.batch_size,
            seed=args.seed, threads=args.threads,
        )
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None

    from pose_stream.models import build_model, get_config, load_checkpoint
    from pose_stream.models.checkpoint import write_state_dict

    try:
        model_config = get_config(args.model)
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    model = load_checkpoint(build_model(model_config), args.weights)
    used = recalibrate_checkpoint(model, config)
    write_state_dict(model.state_dict(), out, half=args.half)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): BatchNorm statistics of {used * args.batch_size} "
          f"images of {args.data}")
    return 0
