"""`pose-stream train`: train a HigherHRNet on a COCO-format keypoint dataset."""
from __future__ import annotations

import argparse

from pose_stream.cli.arguments import device_name, non_negative_float, non_negative_int, positive_float, positive_int
from pose_stream.cli.augment_args import add_augment_arguments, augment_from_args
from pose_stream.errors import PoseStreamError
from pose_stream.input_size import square_side


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a HigherHRNet on a COCO-format keypoint dataset (ours or COCO)",
        description="Train with multi-resolution supervision: heatmap MSE at 1/4 and 1/2 resolution and the "
        "associative-embedding loss on the 1/4 tags; Adam with a cosine learning rate; random scale, "
        "rotation, translation and flip. The checkpoint is a plain state_dict in the released key format "
        "(load it with --weights anywhere); OUT.state.pth beside it lets --resume continue.",
        epilog="examples:\n  pose-stream synth --out data/synth --images 6000\n"
        "  pose-stream train --data data/synth --model small_w16 --epochs 12 --out small.pth\n"
        "  pose-stream train --data data/synth --model small_w16 --epochs 12 --out small.pth --resume\n"
        "  pose-stream train --data data/synth --model small_w32 --init small.pth --widen-from small_w16 "
        "--out wide.pth\n"
        "  pose-stream train --data ~/coco --split train2017 --model w32_512 --batch-size 12 --out w32.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="dataset folder with annotations/person_keypoints*.json")
    p.add_argument("--split", help="COCO split, e.g. train2017 (default: the folder's only/first one)")
    p.add_argument("--model", default="small_w16", help="model config (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=10, help="passes over the data (default: %(default)s)")
    p.add_argument("--out", required=True, help="checkpoint to write (.pth)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--init", help="start from these weights (fine-tuning)")
    p.add_argument("--widen-from", metavar="MODEL",
                   help="the --init weights are this narrower config (e.g. small_w16 into --model small_w32): "
                   "grow them so that training starts from exactly their outputs")
    p.add_argument("--batch-size", type=positive_int, default=8, help="(default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="peak Adam learning rate (default: %(default)s)")
    p.add_argument("--input-size", metavar="S", help="square training input S x S, a multiple of 32 (default: the model's)")
    p.add_argument("--ae-factor", type=non_negative_float, default=0.001,
                   help="weight of the push and pull losses (default: %(default)s, the reference's)")
    add_augment_arguments(p)
    p.add_argument("--time-limit", type=positive_float, help="stop after this many minutes (the schedule fits it)")
    p.add_argument("--device", type=device_name, default="auto", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="data loader processes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pose_stream.train.trainer import TrainConfig, train

    try:
        config = TrainConfig(
            data=args.data, split=args.split, out=args.out, model=args.model, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, input_size=square_side(args.input_size), ae_factor=args.ae_factor,
            time_limit=args.time_limit * 60 if args.time_limit else None, threads=args.threads, device=args.device,
            workers=args.workers, seed=args.seed, resume=args.resume, init=args.init,
            widen_from=args.widen_from,
            augment=augment_from_args(args),
        )
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    result = train(config)
    print(f"trained {result.steps} steps ({result.epochs_done} epochs) in {result.seconds / 60:.1f} min; "
          f"final loss {result.final_loss:.6f}; checkpoint {result.checkpoint}")
    return 0
