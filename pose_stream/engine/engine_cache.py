"""Engine files, their sidecar JSON, and the cache that decides whether a plan can be reused.

Pure Python (no TensorRT): a TensorRT plan only runs with the TensorRT version and GPU generation it
was built by, so every plan is written with a sidecar JSON (`<plan>.json`) that records what it was
built from and for. A plan is reused only when its sidecar matches what is wanted now, its bytes
match the hash in the sidecar, and (when a loader is given) it deserializes.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pose_stream.atomic import write_bytes_atomic
from pose_stream.engine.profiles import ShapeProfile
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32")
SIDECAR_FORMAT = 1


def default_cache_dir() -> Path:
    """$POSE_STREAM_CACHE, else $XDG_CACHE_HOME/pose-stream, else ~/.cache/pose-stream."""
    explicit = os.environ.get("POSE_STREAM_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "pose-stream"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gpu_slug(gpu_name: str, compute_capability: tuple[int, int]) -> str:
    """'NVIDIA H100 80GB HBM3', (9, 0) -> 'nvidia-h100-80gb-hbm3-sm90' (for file names)."""
    name = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-") or "gpu"
    return f"{name}-sm{compute_capability[0]}{compute_capability[1]}"


@dataclass(frozen=True)
class EngineSpec:
    """Everything that decides what a plan contains; two builds with equal specs are interchangeable.

    compute_capability is (major, minor); profiles are the optimization profiles in build order.
    """

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    profiles: tuple[ShapeProfile, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.onnx_sha256):
            raise ValueError(f"onnx_sha256 must be 64 hex digits, got {self.onnx_sha256!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not self.profiles:
            raise ValueError("an engine needs at least one optimization profile")
        object.__setattr__(self, "compute_capability", tuple(int(v) for v in self.compute_capability))
        object.__setattr__(self, "profiles", tuple(self.profiles))

    @property
    def sm(self) -> str:
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"

    def to_json(self) -> dict:
        return {
            "onnx_sha256": self.onnx_sha256,
            "tensorrt_version": self.tensorrt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": list(self.compute_capability),
            "precision": self.precision,
            "profiles": [p.to_json() for p in self.profiles],
        }

    @classmethod
    def from_json(cls, data: dict) -> "EngineSpec":
        return cls(
            onnx_sha256=data["onnx_sha256"],
            tensorrt_version=data["tensorrt_version"],
            gpu_name=data["gpu_name"],
            compute_capability=tuple(data["compute_capability"]),
            precision=data["precision"],
            profiles=tuple(ShapeProfile.from_json(p) for p in data["profiles"]),
        )

    def key(self) -> str:
        """Short stable hash of the spec: the cache file name."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EngineMetadata:
    """The sidecar of one plan: its spec, where it came from, and the plan's own hash."""

    spec: EngineSpec
    plan_sha256: str
    onnx_path: str
    input_name: str
    output_names: tuple[str, ...]
    build_seconds: float
    built_at: str
    pose_stream_version: str
    accuracy: dict | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        return {
            "format": SIDECAR_FORMAT,
            **self.spec.to_json(),
            "plan_sha256": self.plan_sha256,
            "onnx_path": self.onnx_path,
            "input_name": self.input_name,
            "output_names": list(self.output_names),
            "build_seconds": round(self.build_seconds, 3),
            "built_at": self.built_at,
            "pose_stream_version": self.pose_stream_version,
            "accuracy": self.accuracy,
        }

    @classmethod
    def from_json(cls, data: dict) -> "EngineMetadata":
        return cls(
            spec=EngineSpec.from_json(data),
            plan_sha256=data["plan_sha256"],
            onnx_path=data["onnx_path"],
            input_name=data["input_name"],
            output_names=tuple(data["output_names"]),
            build_seconds=float(data["build_seconds"]),
            built_at=data["built_at"],
            pose_stream_version=data["pose_stream_version"],
            accuracy=data.get("accuracy"),
        )


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    path = Path(engine_path)
    return path.with_name(path.name + ".json")


def read_sidecar(engine_path: str | os.PathLike) -> EngineMetadata | None:
    """The sidecar of `engine_path`, None when there is none; PoseStreamError when it is unreadable."""
    side = sidecar_path(engine_path)
    if not side.is_file():
        return None
    try:
        return EngineMetadata.from_json(json.loads(side.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PoseStreamError(f"unreadable engine sidecar {side}: {type(exc).__name__}: {exc}") from None


def write_engine(engine_path: str | os.PathLike, plan: bytes, metadata: EngineMetadata) -> None:
    """Write the plan and then its sidecar, each atomically.

    The old sidecar is removed first, so a crash between the two writes leaves a plan without a
    sidecar (a cache miss), never a new plan described by an old sidecar.
    """
    if metadata.plan_sha256 != hashlib.sha256(plan).hexdigest():
        raise ValueError("metadata.plan_sha256 does not match the plan")
    engine_path = Path(engine_path)
    sidecar_path(engine_path).unlink(missing_ok=True)
    write_bytes_atomic(engine_path, plan)
    write_sidecar(engine_path, metadata)


def write_sidecar(engine_path: str | os.PathLike, metadata: EngineMetadata) -> None:
    text = json.dumps(metadata.to_json(), indent=2, sort_keys=False) + "\n"
    write_bytes_atomic(sidecar_path(engine_path), text.encode("utf-8"))


def rebuild_reason(existing: EngineSpec | None, wanted: EngineSpec) -> str | None:
    """Why a plan built for `existing` cannot serve `wanted` (one line), or None when it can."""
    if existing is None:
        return "no engine has been built for it yet"
    if existing.onnx_sha256 != wanted.onnx_sha256:
        return f"the ONNX model changed (sha256 {existing.onnx_sha256[:12]} -> {wanted.onnx_sha256[:12]})"
    if existing.tensorrt_version != wanted.tensorrt_version:
        return f"TensorRT changed ({existing.tensorrt_version} -> {wanted.tensorrt_version})"
    if (existing.gpu_name, existing.compute_capability) != (wanted.gpu_name, wanted.compute_capability):
        return f"the GPU changed ({existing.gpu_name} {existing.sm} -> {wanted.gpu_name} {wanted.sm})"
    if existing.precision != wanted.precision:
        return f"the precision changed ({existing.precision} -> {wanted.precision})"
    if existing.profiles != wanted.profiles:
        old = ", ".join(p.describe() for p in existing.profiles)
        new = ", ".join(p.describe() for p in wanted.profiles)
        return f"the input shapes changed ({old} -> {new})"
    return None


@dataclass(frozen=True)
class CacheDecision:
    """Whether the plan at `path` can be reused; `reason` is the one-line explanation either way."""

    reuse: bool
    path: Path
    reason: str
    metadata: EngineMetadata | None = None


def decide(
    engine_path: str | os.PathLike, wanted: EngineSpec, load_check: Callable[[bytes], None] | None = None
) -> CacheDecision:
    """Reuse the plan at `engine_path` for `wanted`, or say why it must be rebuilt.

    load_check(plan_bytes) should raise when the plan does not deserialize; that is a miss too.
    """
    path = Path(engine_path)
    if not path.is_file():
        return CacheDecision(False, path, f"no engine at {path}")
    try:
        metadata = read_sidecar(path)
    except PoseStreamError as exc:
        return CacheDecision(False, path, f"{exc}; rebuilding")
    if metadata is None:
        return CacheDecision(False, path, f"{path} has no sidecar {sidecar_path(path).name}; rebuilding")
    reason = rebuild_reason(metadata.spec, wanted)
    if reason:
        return CacheDecision(False, path, f"rebuilding {path.name}: {reason}")
    plan = path.read_bytes()
    if hashlib.sha256(plan).hexdigest() != metadata.plan_sha256:
        return CacheDecision(False, path, f"{path.name} does not match the hash in its sidecar "
                                          "(changed or partly written); rebuilding")
    if load_check is not None:
        try:
            load_check(plan)
        except Exception as exc:  # any failure to load the plan makes it a miss, explained in one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return CacheDecision(False, path, f"cached plan {path.name} failed to deserialize ({first}); rebuilding")
    return CacheDecision(True, path, f"reusing {path} (built {metadata.built_at})", metadata)


class EngineCache:
    """A directory of plans named by their spec's key, plus one timing cache per TensorRT and GPU."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir() / "engines"

    def path_for(self, spec: EngineSpec, stem: str = "model") -> Path:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "model"
        return self.root / f"{stem}-{spec.precision}-{spec.key()}.plan"

    def timing_cache_path(self, tensorrt_version: str, gpu_name: str, compute_capability: tuple[int, int]) -> Path:
        # Timing caches only transfer between builds of the same TensorRT on the same GPU model.
        return self.root / "timing" / f"trt{tensorrt_version}-{gpu_slug(gpu_name, compute_capability)}.cache"

    def decide(self, spec: EngineSpec, stem: str = "model",
               load_check: Callable[[bytes], None] | None = None) -> CacheDecision:
        return decide(self.path_for(spec, stem), spec, load_check)


def check_engine_compatibility(
    metadata: EngineMetadata | None,
    engine_path: str | os.PathLike,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
) -> None:
    """Raise a one-line PoseStreamError when the sidecar says the plan cannot run here.

    A plan runs only on the TensorRT version that built it and on GPUs of the same compute
    capability; another GPU model of the same capability works (TensorRT warns), so that is only
    logged. Without a sidecar nothing can be checked before deserializing.
    """
    if metadata is None:
        log.warning("%s has no sidecar; cannot check its TensorRT version and GPU before loading", engine_path)
        return
    spec = metadata.spec
    problems = []
    if spec.tensorrt_version != tensorrt_version:
        problems.append(f"TensorRT {spec.tensorrt_version} (this machine has {tensorrt_version})")
    cc = tuple(compute_capability)
    if spec.compute_capability != cc:
        problems.append(f"{spec.gpu_name} {spec.sm} (this GPU is {gpu_name} sm_{cc[0]}{cc[1]})")
    if problems:
        raise PoseStreamError(
            f"engine {engine_path} was built for {' and '.join(problems)}; rebuild it here with "
            f"`pose-stream build-engine --onnx {metadata.onnx_path}`"
        )
    if spec.gpu_name != gpu_name:
        log.warning("engine %s was built on %s, running on %s (same compute capability)", engine_path,
                    spec.gpu_name, gpu_name)
