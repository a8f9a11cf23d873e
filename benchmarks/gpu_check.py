"""Everything a GPU machine must show, in one run of at most about 8 minutes (`benchmarks/gpu_check.sh`).

    python benchmarks/gpu_check.py                 # on a CUDA GPU: W32 512x960 FP16, the real checks
    python benchmarks/gpu_check.py --dry-run       # anywhere: tiny sizes on the CPU, to know the script works

Steps (each timed, each failure recorded and the next step run):
1. environment: GPU, driver, torch, CuPy, pycuda, numba-cuda;
2. the GPU tests (`pytest -m gpu` and the backend conformance suite);
3. engine-only: W32 at 512x960, FP16, flip on (2 network inputs a frame), at batch 1/8/16 frames, eager, CUDA
   graphs and torch.compile: milliseconds per call, frames per second;
4. torch.profiler at batch 1 and 8: where the time goes (top kernels, launches, CPU time per call);
5. aggregation on the device: the CUDA kernels (CuPy driver) on W32 outputs: microseconds per frame, bytes
   copied to the host;
6. the pipeline with 1 and 16 paced streams (bench --streams), batch 1 and batched, with device outputs.
Writes benchmarks/results/gpu-DATE.json (or dry-run-DATE.json) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS: dict[str, Any] = {}


def step(name: str, budget_s: float):
    """Run the decorated function as step `name`; record its result, seconds and any error."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            print(f"== {name} (budget {budget_s:.0f} s)", flush=True)
            try:
                value = fn(*args, **kwargs)
                RESULTS[name] = {"ok": True, "result": value}
            except Exception as exc:  # noqa: BLE001 - one failed step must not cost the rest of the run
                RESULTS[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                 "traceback": traceback.format_exc(limit=6)}
                print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
                value = None
            RESULTS[name]["seconds"] = round(time.monotonic() - started, 1)
            return value
        return run
    return wrap


@step("environment", 20)
def environment() -> dict:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(0), capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    for module in ("cupy", "pycuda", "numba", "onnxruntime", "tensorrt"):
        try:
            info[module] = getattr(__import__(module), "__version__", "present")
        except ImportError:
            info[module] = None
    try:
        info["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                             "--format=csv,noheader"], capture_output=True, text=True,
                                            timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        info["nvidia_smi"] = None
    return info


@step("gpu tests", 150)
def gpu_tests(dry_run: bool) -> dict:
    # The files that hold GPU tests (collecting the whole suite would need every test extra installed there).
    files = ["tests/test_devices.py", "tests/decoding/test_aggregate.py", "tests/engine/test_tensorrt_backend.py"]
    selection = ["tests/test_devices.py"] if dry_run else ["-m", "gpu", *files]
    runs = {}
    for label, args in (("marked gpu", selection), ("conformance", ["tests/engine/test_backend_conformance.py"])):
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=140)
        runs[label] = {"exit": proc.returncode, "summary": proc.stdout.strip().splitlines()[-1:]}
        print(f"   {label}: {runs[label]['summary']}", flush=True)
    return runs


def _time_calls(fn: Callable[[], Any], sync: Callable[[], None], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@step("engine-only", 200)
def engine_only(cfg: dict) -> list[dict]:
    import copy

    import torch

    from pose_stream.engine import TorchBackend
    from pose_stream.models import build_model

    device, fp16 = cfg["device"], cfg["fp16"]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model = build_model(cfg["model"])
    h, w = cfg["hw"]
    rows = []
    for mode in cfg["modes"]:
        for frames in cfg["batches"]:
            if time.monotonic() > cfg["deadline"]:
                rows.append({"mode": mode, "frames": frames, "skipped": "out of time"})
                continue
            backend = TorchBackend(copy.deepcopy(model), device=device, fp16=fp16, cuda_graph=mode == "cuda graph",
                                   compile=mode == "compile")
            x = torch.randn(2 * frames, 3, h, w, device=device, dtype=backend.dtype)  # plain + flipped, on device
            compile_started = time.perf_counter()
            backend.infer_tensors(x)
            sync()
            first_call = time.perf_counter() - compile_started
            seconds = _time_calls(lambda b=backend, x=x: b.infer_tensors(x), sync, cfg["warmup"], cfg["repeats"])
            rows.append({"mode": mode, "frames": frames, "inputs": 2 * frames, "ms_per_call": round(seconds * 1e3, 3),
                         "ms_per_frame": round(seconds * 1e3 / frames, 3), "fps": round(frames / seconds, 1),
                         "first_call_s": round(first_call, 2)})
            print(f"   {mode:<10} batch {frames:>2}: {rows[-1]['ms_per_frame']:8.3f} ms/frame, "
                  f"{rows[-1]['fps']:8.1f} frames/s (first call {first_call:.1f} s)", flush=True)
            backend.close()
            del backend
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows


@step("profile", 60)
def profile(cfg: dict) -> dict:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from pose_stream.engine import TorchBackend
    from pose_stream.models import build_model

    device = cfg["device"]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    backend = TorchBackend(build_model(cfg["model"]), device=device, fp16=cfg["fp16"], cuda_graph=False)
    h, w = cfg["hw"]
    out = {}
    for frames in cfg["profile_batches"]:
        x = torch.randn(2 * frames, 3, h, w, device=device, dtype=backend.dtype)
        for _ in range(3):
            backend.infer_tensors(x)
        if device == "cuda":
            torch.cuda.synchronize()
        with torch_profile(activities=activities) as prof:
            for _ in range(5):
                backend.infer_tensors(x)
            if device == "cuda":
                torch.cuda.synchronize()
        events = prof.key_averages()
        key = "cuda_time_total" if device == "cuda" else "cpu_time_total"
        top = sorted(events, key=lambda e: getattr(e, key, 0), reverse=True)[:12]
        kernels = sum(e.count for e in events if device == "cuda" and getattr(e, "device_type", None) is not None
                      and "CUDA" in str(e.device_type))
        out[str(frames)] = {
            "top": [{"name": e.key, "calls": e.count, f"{key}_ms": round(getattr(e, key, 0) / 1e3 / 5, 3)}
                    for e in top],
            "cpu_ms_per_call": round(sum(e.self_cpu_time_total for e in events) / 1e3 / 5, 3),
            "cuda_kernels_per_call": round(kernels / 5, 1),
        }
        print(f"   batch {frames}: CPU {out[str(frames)]['cpu_ms_per_call']} ms a call, "
              f"{out[str(frames)]['cuda_kernels_per_call']} kernels; top: {out[str(frames)]['top'][0]['name']}",
              flush=True)
    backend.close()
    return out


@step("aggregation on the device", 40)
def aggregation(cfg: dict) -> dict:
    if cfg["device"] != "cuda":
        return {"skipped": "needs a CUDA GPU (the kernels run through CuPy)"}
    import cupy as cp
    import numpy as np

    from pose_stream.decoding.aggregate_cuda import CudaAggregator, ScalePointers, ScaleShape
    from pose_stream.joints import COCO

    h, w = cfg["hw"]
    k = 17
    rng = np.random.default_rng(0)
    arrays = [cp.asarray(rng.random(shape, dtype=np.float32))
              for shape in ((2 * k, h // 4, w // 4), (k, h // 2, w // 2)) * 2]
    pointers = ScalePointers(*(int(a.data.ptr) for a in arrays))
    aggregator = CudaAggregator(k, (h, w), [ScaleShape((h // 4, w // 4), (h // 2, w // 2))], COCO.flip_index,
                                driver="cupy")
    stream = cp.cuda.Stream(non_blocking=True)
    candidates = aggregator.aggregate([pointers], stream)
    seconds = _time_calls(lambda: aggregator.aggregate([pointers], stream), stream.synchronize, 10, 200)
    copied = sum(np.asarray(v).nbytes for v in (candidates.x, candidates.y, candidates.value, candidates.tags,
                                                 candidates.neighbours) if v is not None)
    aggregator.close()
    result = {"us_per_frame": round(seconds * 1e6, 1), "bytes_to_host": int(copied)}
    print(f"   {result['us_per_frame']} us per frame, {copied} bytes to the host", flush=True)
    return result


@step("pipeline streams", 160)
def pipeline_streams(cfg: dict) -> list[dict]:
    from dataclasses import asdict

    from pose_stream.benchmarking import streams
    from pose_stream.estimator import EstimatorConfig, PoseEstimator
    from pose_stream.input_size import InputSize
    from pose_stream.pipeline.sources.demo import demo_frames

    config = streams.StreamsConfig(streams=cfg["streams"], fps=cfg["stream_fps"], seconds=cfg["stream_seconds"],
                                   warmup=cfg["stream_warmup"], max_batch=16, batch_wait=0.005)
    base = EstimatorConfig(model=cfg["model"], backend="torch-fp16" if cfg["fp16"] else "torch",
                           input_size=InputSize(exact=cfg["hw"]), device=cfg["device"])
    frames = list(demo_frames(8, (cfg["hw"][1], cfg["hw"][0])))
    rows = streams.run_streams(lambda batch: PoseEstimator(base, batch=batch), frames, config,
                               progress=lambda message: print(f"   {message}", flush=True))
    print(streams.markdown(rows, "pipeline"), flush=True)
    return [asdict(r) for r in rows]


def table() -> str:
    lines = ["| step | ok | seconds | figures |", "| --- | --- | --- | --- |"]
    for name, entry in RESULTS.items():
        figures = ""
        result = entry.get("result")
        if name == "engine-only" and result:
            figures = "; ".join(f"{r['mode']} b{r['frames']}: {r.get('ms_per_frame', 'n/a')} ms/frame"
                                for r in result)
        elif name == "aggregation on the device" and result:
            figures = ", ".join(f"{k} {v}" for k, v in result.items())
        elif name == "pipeline streams" and result:
            figures = "; ".join(f"{r['streams']} streams b{r['batch']}: {r['fps']} fps, p99 {r['latency_ms']['p99']} ms"
                                for r in result)
        elif not entry["ok"]:
            figures = entry["error"][:120]
        lines.append(f"| {name} | {'yes' if entry['ok'] else 'NO'} | {entry['seconds']} | {figures} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: check the script itself")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole run (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="JSON path (default: benchmarks/results/gpu-DATE.json)")
    args = parser.parse_args()
    started = time.monotonic()
    if args.dry_run:
        cfg = dict(device="cpu", fp16=False, model="tiny_w8", hw=(64, 96), batches=(1, 2), modes=("eager", "compile"),
                   profile_batches=(1, 2), warmup=1, repeats=3, streams=(1, 2), stream_fps=10.0, stream_seconds=2.0,
                   stream_warmup=1.0)
    else:
        cfg = dict(device="cuda", fp16=True, model="w32_512", hw=(512, 960), batches=(1, 8, 16),
                   modes=("eager", "cuda graph", "compile"), profile_batches=(1, 8), warmup=5, repeats=30,
                   streams=(1, 16), stream_fps=25.0, stream_seconds=15.0, stream_warmup=5.0)
    cfg["deadline"] = started + args.budget * 0.55  # engine-only may not eat the pipeline's share
    environment()
    gpu_tests(args.dry_run)
    engine_only(cfg)
    profile(cfg)
    aggregation(cfg)
    pipeline_streams(cfg)
    date = datetime.date.today().isoformat()
    out = args.out or ROOT / "benchmarks" / "results" / f"{'dry-run' if args.dry_run else 'gpu'}-{date}.json"
    document = {"date": date, "command": " ".join(["python", "benchmarks/gpu_check.py", *sys.argv[1:]]),
                "dry_run": args.dry_run, "settings": {k: v for k, v in cfg.items() if k != "deadline"},
                "seconds": round(time.monotonic() - started, 1), "steps": RESULTS}
    out.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    markdown = table()
    out.with_suffix(".md").write_text(f"# {out.stem}\n\n`{document['command']}`\n\n{markdown}\n", encoding="utf-8")
    print(f"\n{markdown}\n\nwrote {out} and {out.with_suffix('.md')} in {document['seconds']} s", flush=True)
    return 0 if all(entry["ok"] for entry in RESULTS.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
