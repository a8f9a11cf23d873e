"""The training loop: Adam, cosine learning rate, checkpoints in the released format, resume.

Files: `out` is a plain HigherHRNet state_dict (the released checkpoints' key format, loadable with
`pose_stream.models.load_checkpoint`); `<out stem>.state.pth` beside it holds what resuming needs
(optimizer, epoch, step, elapsed time, loss history).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from pose_stream.errors import PoseStreamError
from pose_stream.train.augment import AugmentConfig, check_input_size
from pose_stream.train.losses import ae_loss, heatmap_loss

log = logging.getLogger(__name__)

POSTFIX_EVERY = 50  # steps between progress-bar loss readouts on a GPU


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        data: dataset folder (see pose_stream.train.coco_dataset.find_annotations); split picks a COCO split.
        out: where the checkpoint (plain state_dict) goes.
        model: model config name (pose_stream.models.MODEL_CONFIGS).
        epochs: passes over the dataset.
        batch_size, lr: Adam's batch and peak learning rate; it decays on a cosine to lr * final_lr_fraction.
        input_size: square training input; None = the model config's input size.
        ae_factor: weight of the push and the pull loss each (the reference uses 0.001).
        sigma: Gaussian sigma of the heatmaps in output pixels, at both resolutions.
        time_limit: seconds; training stops (and saves) when reached, and the learning-rate schedule
            runs on whichever of steps or time is further along, so a limited run still anneals.
        save_every: save the checkpoint every this many epochs (and always at the end).
        device: "cpu", "cuda", "cuda:1", ... or "auto" (CUDA when available).
        threads: torch CPU threads. workers: DataLoader worker processes.
        resume: continue from `out` and its state file.
        init: a checkpoint to start from (fine-tuning); ignored when resuming.
        widen_from: the model config `init` was trained as, when it is a narrower one of the same depth; its
            weights are grown into `model` so that training starts from the same outputs
            (pose_stream.models.widen).
    """

    data: str
    out: str
    model: str = "small_w16"
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    final_lr_fraction: float = 0.01
    input_size: int | None = None
    ae_factor: float = 0.001
    sigma: float = 2.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    max_people: int = 30
    time_limit: float | None = None
    save_every: int = 1
    device: str = "auto"
    threads: int = 2
    workers: int = 0
    seed: int = 0
    split: str | None = None
    resume: bool = False
    init: str | None = None
    widen_from: str | None = None
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.save_every < 1:
            raise ValueError("epochs, batch size, learning rate and save_every must be positive")
        if self.input_size is not None:
            check_input_size(self.input_size)
        if self.ae_factor < 0 or self.sigma <= 0 or not 0 < self.final_lr_fraction <= 1:
            raise ValueError("ae_factor >= 0, sigma > 0 and 0 < final_lr_fraction <= 1 required")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError("time limit must be positive")
        if self.widen_from is not None:
            from pose_stream.models import get_config
            from pose_stream.models.widen import check_widenable

            if self.init is None:
                raise ValueError("widen_from needs init: the weights to grow")
            check_widenable(get_config(self.widen_from), get_config(self.model))


@dataclass(frozen=True)
class TrainResult:
    """What a run did: the checkpoint, the epochs and steps done, seconds, and per-epoch mean losses."""

    checkpoint: Path
    epochs_done: int
    steps: int
    seconds: float
    history: tuple[dict[str, float], ...]

    @property
    def final_loss(self) -> float:
        return self.history[-1]["total"] if self.history else float("nan")


def state_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".state.pth")


def compute_losses(outputs: list[torch.Tensor], batch: dict[str, torch.Tensor], num_joints: int,
                   ae_factor: float) -> dict[str, torch.Tensor]:
    """Heatmap MSE at 1/4 and 1/2 (weight 1 each) + ae_factor * (push + pull) on the 1/4 tags."""
    k = num_joints
    losses = {
        "heatmap4": heatmap_loss(outputs[0][:, :k], batch["heatmaps4"], batch["mask4"]),
        "heatmap2": heatmap_loss(outputs[1], batch["heatmaps2"], batch["mask2"]),
    }
    losses["push"], losses["pull"] = ae_loss(outputs[0][:, k:2 * k], batch["joints"])
    losses["total"] = losses["heatmap4"] + losses["heatmap2"] + ae_factor * (losses["push"] + losses["pull"])
    return losses


def _load_widened(model: torch.nn.Module, path: str, narrow_name: str) -> None:
    from pose_stream.models import build_model, get_config, load_checkpoint
    from pose_stream.models.widen import widen_state_dict

    try:
        narrow = get_config(narrow_name)
        narrow_model = load_checkpoint(build_model(narrow), path)
        model.load_state_dict(widen_state_dict(narrow_model.state_dict(), narrow, model.config))
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    log.info("grew %s (%s) into %s", path, narrow.name, model.config.name)


def cosine_lr(peak: float, final_fraction: float, progress: float) -> float:
    progress = min(max(progress, 0.0), 1.0)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def train(config: TrainConfig, progress: bool = True) -> TrainResult:
    """Run (or resume) training; saves the checkpoint after every epoch and when stopping."""
    from tqdm import tqdm

    from pose_stream.devices import torch_device
    from pose_stream.models import build_model, get_config, load_checkpoint
    from pose_stream.models.checkpoint import load_tensors, save_atomic, write_state_dict
    from pose_stream.train.batches import TrainingExamples
    from pose_stream.train.coco_dataset import CocoKeypoints
    from pose_stream.train.workers import one_opencv_thread

    try:
        model_config = get_config(config.model)
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    torch.set_num_threads(config.threads)
    # Tiny activations of a fresh network are denormal floats, which make CPU convolutions ~20x slower.
    torch.set_flush_denormal(True)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    input_size = config.input_size or model_config.input_size
    joint_set = model_config.joint_set

    dataset = CocoKeypoints(config.data, config.split, num_joints=joint_set.num_joints)
    examples = TrainingExamples(dataset, joint_set, input_size, config.augment, config.sigma, config.max_people,
                                config.seed)
    steps_per_epoch = len(examples) // config.batch_size
    if steps_per_epoch == 0:
        raise PoseStreamError(f"the dataset has {len(examples)} images, fewer than one batch of {config.batch_size}")
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    device = torch_device(config.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one input size all run long: let cuDNN pick the fastest kernels
    model = build_model(model_config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    epoch, step, elapsed, history = 0, 0, 0.0, []
    if config.resume:
        if not out.is_file() or not state_path(out).is_file():
            raise PoseStreamError(f"cannot resume: {out} or {state_path(out)} is missing")
        load_checkpoint(model, out)
        # weights_only: the state file holds tensors, numbers, strings and containers only; a crafted one must
        # not run code when resumed (load_tensors refuses anything else).
        state = load_tensors(state_path(out), "training state file")
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, elapsed, history = state["epoch"], state["step"], state["elapsed"], list(state["history"])
        log.info("resuming %s at epoch %d, step %d", out, epoch, step)
    elif config.init and config.widen_from:
        _load_widened(model, config.init, config.widen_from)
    elif config.init:
        load_checkpoint(model, config.init)
    # NHWC convolutions run 1.3-1.7x faster per training step on this project's CPUs (measured with small_w16,
    # batch 8) and are the layout CUDA's tensor cores want; the checkpoint is saved contiguous (NCHW) all the same.
    model.to(device, memory_format=torch.channels_last)
    log.info("training %s on %s: %d images, %d steps per epoch", config.model, device, len(examples), steps_per_epoch)

    def save() -> None:
        write_state_dict(model.state_dict(), out)
        save_atomic({"optimizer": optimizer.state_dict(), "epoch": epoch, "step": step, "elapsed": elapsed,
                      "history": history, "config": {**asdict(config), "augment": asdict(config.augment)}},
                     state_path(out))

    started = time.monotonic() - elapsed
    stop = False
    while epoch < config.epochs and not stop:
        examples.epoch = epoch
        order = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        loader = torch.utils.data.DataLoader(examples, batch_size=config.batch_size, shuffle=True, drop_last=True,
                                             generator=order, num_workers=config.workers,
                                             pin_memory=device.type == "cuda",
                                             worker_init_fn=one_opencv_thread if config.workers else None)
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress,
                   dynamic_ncols=True)
        for batch in bar:
            elapsed = time.monotonic() - started
            done = step / total_steps
            if config.time_limit:
                done = max(done, elapsed / config.time_limit)
            if done >= 1.0:
                stop = True
                break
            lr = cosine_lr(config.lr, config.final_lr_fraction, done)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = {name: t.to(device, non_blocking=True) for name, t in batch.items()}
            batch["input"] = batch["input"].contiguous(memory_format=torch.channels_last)
            losses = compute_losses(model(batch["input"]), batch, joint_set.num_joints, config.ae_factor)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            step += 1
            seen += 1
            # Sums stay on the device: reading a loss every step would make the CPU wait for the GPU each step.
            for name, value in losses.items():
                sums[name] = sums[name] + value.detach() if name in sums else value.detach()
            if seen % POSTFIX_EVERY == 1 or device.type == "cpu":
                bar.set_postfix(loss=f"{float(sums['total']) / seen:.5f}",
                                ae=f"{float(sums['push'] + sums['pull']) / seen:.3f}", lr=f"{lr:.1e}")
        bar.close()
        elapsed = time.monotonic() - started
        if seen:
            history.append({"epoch": epoch + 1, "step": step, "seconds": round(elapsed, 1),
                            **{name: float(total) / seen for name, total in sums.items()}})
            log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.5f}" for k, v in history[-1].items()))
        epoch += 1
        if stop or epoch == config.epochs or epoch % config.save_every == 0:
            save()
    return TrainResult(checkpoint=out, epochs_done=epoch, steps=step, seconds=elapsed, history=tuple(history))
