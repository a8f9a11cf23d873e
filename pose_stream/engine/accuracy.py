"""Does a reduced-precision engine still find the same people? Metrics comparing its raw HigherHRNet
outputs with an FP32 reference, in plain NumPy, and a realistic test input to compare them on.

Outputs: out0 (N, 2K, H/4, W/4) = K heatmaps then K tag maps; out1 (N, K, H/2, W/2) = K heatmaps.
What matters downstream is where the heatmap peaks are and what tags they carry, so besides the
maximum error of every map the check asks whether each joint's top peak stays put and how far the
tags at the reference peaks move.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ImageNet statistics the network was trained with (RGB order).
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class AccuracyLimits:
    """Pass/fail thresholds. Relative errors are max |got - ref| / max |ref| over one map group."""

    heatmap_relative: float = 1e-2
    tag_relative: float = 2e-2
    min_peak_agreement: float = 0.95
    peak_tolerance_px: int = 1

    def __post_init__(self) -> None:
        if self.heatmap_relative <= 0 or self.tag_relative <= 0 or self.peak_tolerance_px < 0:
            raise ValueError("AccuracyLimits: tolerances must be positive")
        if not 0.0 <= self.min_peak_agreement <= 1.0:
            raise ValueError("AccuracyLimits.min_peak_agreement must lie in [0, 1]")


@dataclass(frozen=True)
class MapDrift:
    """Error of one group of maps (e.g. the heatmaps of out1)."""

    name: str
    max_abs_error: float
    relative_error: float
    peak_agreement: float | None = None  # heatmaps only: fraction of (image, joint) top peaks that agree


@dataclass(frozen=True)
class AccuracyReport:
    """Result of `compare_pose_outputs`: `drifted` names the outputs that drifted (e.g. "out1 heatmaps"),
    `failures` says how, one line each; both are empty when the check passed."""

    drifts: tuple[MapDrift, ...]
    heatmap_max_error: float
    peak_agreement: float
    tag_drift: float
    tag_drift_relative: float
    failures: tuple[str, ...]
    drifted: tuple[str, ...]
    limits: AccuracyLimits

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = [
            f"heatmaps   max relative error {self.heatmap_max_error:.2e} (limit {self.limits.heatmap_relative:.0e})",
            f"peaks      {self.peak_agreement:.1%} of joints keep their top peak within "
            f"{self.limits.peak_tolerance_px} px (need {self.limits.min_peak_agreement:.0%})",
            f"tags       drift at the peaks {self.tag_drift:.3g} (relative {self.tag_drift_relative:.2e}, "
            f"limit {self.limits.tag_relative:.0e})",
        ]
        lines += [f"DRIFT      {f}" for f in self.failures]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "heatmap_max_error": self.heatmap_max_error,
            "peak_agreement": self.peak_agreement,
            "tag_drift": self.tag_drift,
            "tag_drift_relative": self.tag_drift_relative,
            "failures": list(self.failures),
            "drifted": list(self.drifted),
        }


def _relative(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return err, err / max(scale, 1e-12)


def _peak_agreement(got: np.ndarray, ref: np.ndarray, near_tie: float, tolerance_px: int) -> float:
    """Fraction of (image, joint) maps whose top peak agrees.

    Agreeing means within `tolerance_px` (Chebyshev), or a near-tie: the reference map is within
    `near_tie` of its maximum at the other peak too, so at this precision the two are one peak.
    """
    n, k, h, w = ref.shape
    flat_ref = ref.reshape(n * k, h * w)
    flat_got = got.reshape(n * k, h * w)
    ref_idx = flat_ref.argmax(axis=1)
    got_idx = flat_got.argmax(axis=1)
    rows = np.arange(n * k)
    distance = np.maximum(np.abs(ref_idx // w - got_idx // w), np.abs(ref_idx % w - got_idx % w))
    tied = flat_ref[rows, got_idx] >= flat_ref[rows, ref_idx] - near_tie
    return float(np.mean((distance <= tolerance_px) | tied))


def compare_pose_outputs(
    got: list[np.ndarray], ref: list[np.ndarray], num_joints: int, limits: AccuracyLimits = AccuracyLimits()
) -> AccuracyReport:
    """Compare [out0, out1] of an engine (`got`) with an FP32 reference (`ref`)."""
    if len(got) != 2 or len(ref) != 2:
        raise ValueError("expected [out0, out1] for both the engine and the reference")
    k = num_joints
    for g, r, name in zip(got, ref, ("out0", "out1")):
        if g.shape != r.shape:
            raise ValueError(f"{name}: shape {g.shape} differs from the reference {r.shape}")
    if ref[0].shape[1] != 2 * k or ref[1].shape[1] != k:
        raise ValueError(f"outputs do not have 2K and K channels for K={k}: {ref[0].shape}, {ref[1].shape}")
    groups = {
        "out0 heatmaps": (got[0][:, :k], ref[0][:, :k]),
        "out1 heatmaps": (got[1], ref[1]),
    }
    drifts = []
    failures = []
    drifted = []
    for name, (g, r) in groups.items():
        err, rel = _relative(g, r)
        near_tie = limits.heatmap_relative * float(np.max(np.abs(r)))
        agreement = _peak_agreement(g, r, near_tie, limits.peak_tolerance_px)
        drifts.append(MapDrift(name, err, rel, agreement))
        problems = []
        if not rel <= limits.heatmap_relative:
            problems.append(f"{name} drifted: relative error {rel:.2e} > {limits.heatmap_relative:.0e} "
                            f"(max abs {err:.3g})")
        if agreement < limits.min_peak_agreement:
            problems.append(f"{name}: only {agreement:.1%} of joints keep their top peak "
                            f"(need {limits.min_peak_agreement:.0%})")
        if problems:
            drifted.append(name)
            failures += problems

    tag_got, tag_ref = got[0][:, k:], ref[0][:, k:]
    tag_err, tag_rel = _relative(tag_got, tag_ref)
    drifts.append(MapDrift("out0 tags", tag_err, tag_rel))
    # Tags only matter where joints are detected: read them at the reference heatmap peaks.
    heat_ref = ref[0][:, :k]
    n, _, h, w = heat_ref.shape
    peaks = heat_ref.reshape(n, k, h * w).argmax(axis=2)
    at_got = np.take_along_axis(tag_got.reshape(n, k, h * w), peaks[..., None], axis=2)
    at_ref = np.take_along_axis(tag_ref.reshape(n, k, h * w), peaks[..., None], axis=2)
    tag_drift = float(np.max(np.abs(at_got.astype(np.float64) - at_ref))) if at_ref.size else 0.0
    tag_scale = float(np.max(np.abs(tag_ref))) if tag_ref.size else 0.0
    tag_drift_rel = tag_drift / max(tag_scale, 1e-12)
    if not tag_drift_rel <= limits.tag_relative:
        failures.append(f"out0 tags drifted at the heatmap peaks: max {tag_drift:.3g} "
                        f"(relative {tag_drift_rel:.2e} > {limits.tag_relative:.0e})")
        drifted.append("out0 tags")

    heat = [d for d in drifts if d.peak_agreement is not None]
    return AccuracyReport(
        drifts=tuple(drifts),
        heatmap_max_error=max(d.relative_error for d in heat),
        peak_agreement=min(d.peak_agreement for d in heat),  # type: ignore[type-var]
        tag_drift=tag_drift,
        tag_drift_relative=tag_drift_rel,
        failures=tuple(failures),
        drifted=tuple(drifted),
        limits=limits,
    )


def synthetic_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A camera-like network input (1, 3, H, W) float32, normalized as the model expects.

    Random noise is a poor test of reduced precision (flat, unrealistic activations); this draws a
    smooth lit background with texture and a few person-like figures (head, torso, limbs), so the
    network sees edges and blobs at the scales of real frames.
    """
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 200, size=(4, 6, 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 6, size=image.shape).astype(np.float32)  # sensor noise / texture
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.3, 0.7) * height
        s = rng.uniform(0.12, 0.3) * height  # body height / 3
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        skin = tuple(float(c) for c in rng.uniform(120, 230, 3))
        thick = max(2, int(s / 6))
        pt = lambda dx, dy: (int(cx + dx * s), int(cy + dy * s))  # noqa: E731 - local drawing helper
        cv2.rectangle(image, pt(-0.3, -0.5), pt(0.3, 0.5), colour, -1)                  # torso
        cv2.circle(image, pt(0, -0.8), max(2, int(0.22 * s)), skin, -1)                 # head
        for sx in (-1, 1):
            cv2.line(image, pt(0.3 * sx, -0.4), pt(0.7 * sx, 0.3 * rng.uniform(-1, 1)), skin, thick)  # arm
            cv2.line(image, pt(0.2 * sx, 0.5), pt(0.3 * sx, 1.4), colour, thick + 1)    # leg
    image = cv2.GaussianBlur(np.clip(image, 0, 255), (3, 3), 0)
    rgb = image[..., ::-1] / 255.0  # drawn as BGR like OpenCV frames
    normalized = (rgb - _MEAN) / _STD
    return np.ascontiguousarray(normalized.transpose(2, 0, 1)[None], dtype=np.float32)
