"""Several camera hosts on one Triton server: 1, 2 and 4 client processes against one server, and the same model
run locally, for the overhead of going through Triton.

    python benchmarks/triton_clients.py                      # the demo model at 256x448, 40 calls per client
    python benchmarks/triton_clients.py --clients 1,2,4 --calls 60

Starts a real server (PyTriton's tritonserver from the .triton-venv environment, tests/triton_serving/server.py) with
the model exported to ONNX (ONNX Runtime, one thread, behind the dynamic batcher). Each client is a process of
its own sending one frame and its flipped copy per call (a batch of 2), as `pose-stream run` does. Reported:
client latency per call (median, p99), total frames/s, and Triton's own statistics of the same calls (requests,
executions, time in the queue and in compute per request); and the local ONNX Runtime backend (one thread) on
the same calls, for the per-frame overhead. Writes JSON under benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "triton_serving"))

CLIENT = """
import json, sys, time
import numpy as np
from pose_stream.engine.triton_backend import TritonBackend
url, model, calls, seed, h, w, start, shm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), sys.argv[8] == "1"
backend = TritonBackend(url, model, timeout=60.0, shared_memory=shm)
rng = np.random.default_rng(seed)
batches = [rng.standard_normal((2, 3, h, w)).astype(np.float32) for _ in range(4)]
backend.infer(batches[0])
while time.time() < start:
    time.sleep(0.001)
times = []
for i in range(calls):
    t = time.perf_counter()
    backend.infer(batches[i % 4])
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "end": time.time()}))
"""


def same_people_on_the_demo_clip(url: str, onnx: Path, hw: tuple[int, int], frames: int) -> dict:
    """The demo clip through Triton and through the local onnxruntime backend: the frames whose people differ."""
    from pose_stream.engine.registry import TritonOptions
    from pose_stream.estimator import PoseEstimator
    from pose_stream.models.demo import DEMO_MODEL_NAME
    from pose_stream.pipeline.sources.demo import demo_frames

    size = f"{hw[0]}x{hw[1]}"
    differ, people = 0, 0
    with PoseEstimator(DEMO_MODEL_NAME, backend="triton", triton=TritonOptions(url=url, model="demo", timeout=30.0),
                       input_size=size) as remote, PoseEstimator(DEMO_MODEL_NAME, onnx=onnx, input_size=size) as local:
        for image in demo_frames(frames):
            a, b = remote.predict(image), local.predict(image)
            people += len(b)
            same = len(a) == len(b) and np.allclose(a.keypoints, b.keypoints, rtol=0, atol=1e-3)
            differ += not same
    print(f"demo clip: {frames} frames, {people} people; frames whose people differ: {differ}", flush=True)
    return {"frames": frames, "people": people, "frames_differing": differ}


def restart_check(server, restarts: int, hw: tuple[int, int]) -> dict:
    """Kill and start the server `restarts` times under one client: seconds from each return to the first answer,
    and the client's threads and open descriptors before and after."""
    import os
    import threading

    from pose_stream.engine.triton_backend import TritonBackend
    from pose_stream.errors import BackendUnavailable

    backend = TritonBackend(server.url, "demo", timeout=1.0)
    batch = np.zeros((2, 3, *hw), np.float32)
    backend.infer(batch)
    threads, descriptors = threading.active_count(), len(os.listdir("/proc/self/fd"))
    resumed = []
    for _ in range(restarts):
        server.kill()
        try:
            backend.infer(batch)
        except BackendUnavailable:
            pass
        server.start()
        back = time.monotonic()
        while True:
            try:
                backend.infer(batch)
                break
            except BackendUnavailable:
                time.sleep(0.02)
        resumed.append(round(time.monotonic() - back, 3))
    result = {"restarts": restarts, "resume_s": resumed, "max_resume_s": max(resumed) if resumed else None,
              "threads": [threads, threading.active_count()],
              "descriptors": [descriptors, len(os.listdir("/proc/self/fd"))]}
    backend.close()
    print(f"restarts: {result}", flush=True)
    return result


def main() -> int:
    from server import TRITON_MISSING, TritonServer

    from pose_stream.engine import OnnxRuntimeBackend
    from pose_stream.engine.triton_backend import TritonBackend
    from pose_stream.export import export_onnx
    from pose_stream.models import build_model, load_checkpoint
    from pose_stream.models.demo import DEMO_MODEL_NAME, demo_model_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--calls", type=int, default=40, help="calls per client (default: %(default)s)")
    parser.add_argument("--input-hw", default="256x448")
    parser.add_argument("--queue-delay-us", type=int, default=2000)
    parser.add_argument("--shm", action="store_true", help="tensors through shared memory (--triton-shm)")
    parser.add_argument("--demo-frames", type=int, default=250, help="frames of the demo clip compared (default: all)")
    parser.add_argument("--restarts", type=int, default=10, help="server restarts in the leak check")
    parser.add_argument("--name", default=f"triton-clients-{datetime.date.today().isoformat()}")
    args = parser.parse_args()
    if TRITON_MISSING:
        print(f"triton_clients: {TRITON_MISSING}", file=sys.stderr)
        return 2
    h, w = (int(v) for v in args.input_hw.split("x"))
    counts = [int(c) for c in args.clients.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(tmp) / "demo.onnx"
        export_onnx(load_checkpoint(build_model(DEMO_MODEL_NAME), demo_model_path()), onnx, input_hw=(h, w))
        local = OnnxRuntimeBackend(onnx, providers=["CPUExecutionProvider"], threads=1)
        batch = np.random.default_rng(0).standard_normal((2, 3, h, w)).astype(np.float32)
        local.infer(batch)
        local_times = []
        for _ in range(args.calls):
            t = time.perf_counter()
            local.infer(batch)
            local_times.append(time.perf_counter() - t)
        local.close()
        server = TritonServer(onnx, name="demo", queue_delay_us=args.queue_delay_us).start()
        try:
            for count in counts:
                watcher = TritonBackend(server.url, "demo", timeout=30.0)
                before = watcher.statistics()
                start = time.time() + 3.0  # every client connected and warmed up before the clock starts
                procs = [subprocess.Popen([sys.executable, "-c", CLIENT, server.url, "demo", str(args.calls), str(i),
                                           str(h), str(w), str(start), "1" if args.shm else "0"],
                                          stdout=subprocess.PIPE, text=True)
                         for i in range(count)]
                results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
                after = watcher.statistics()
                watcher.close()
                times = [t for r in results for t in r["times"]]
                wall = max(r["end"] for r in results) - start
                calls = after.since(before)  # these calls only (the clients' warm-up calls too)
                row = {"clients": count, "calls": count * args.calls, "frames_per_s": round(count * args.calls / wall, 2),
                       "call_ms_p50": round(1e3 * statistics.median(times), 2),
                       "call_ms_p99": round(1e3 * float(np.percentile(times, 99)), 2),
                       "server_inputs": calls["inputs"], "server_executions": calls["executions"],
                       "inputs_per_execution": calls["inputs_per_execution"],
                       "server_queue_ms": calls["queue_ms"], "server_compute_ms": calls["compute_infer_ms"]}
                rows.append(row)
                print(row, flush=True)
            same = same_people_on_the_demo_clip(server.url, onnx, (h, w), args.demo_frames)
            restarts = restart_check(server, args.restarts, (h, w))
        finally:
            server.stop()
    local_ms = 1e3 * statistics.median(local_times)
    one = next((r for r in rows if r["clients"] == 1), None)
    overhead = None if one is None else round(100 * (one["call_ms_p50"] - local_ms) / local_ms, 1)
    print(f"local onnxruntime (1 thread): {local_ms:.2f} ms a call; through Triton, 1 client: "
          f"{one and one['call_ms_p50']} ms ({overhead}% overhead)")
    out = ROOT / "benchmarks" / "results" / f"{args.name}.json"
    out.write_text(json.dumps({"date": datetime.date.today().isoformat(),
                               "command": " ".join(["python", "benchmarks/triton_clients.py", *sys.argv[1:]]),
                               "model": f"{DEMO_MODEL_NAME} at {h}x{w}, batch 2 (frame + flip)",
                               "shared_memory": args.shm, "queue_delay_us": args.queue_delay_us,
                               "local_onnxruntime_ms_p50": round(local_ms, 2), "overhead_percent_1_client": overhead,
                               "rows": rows, "demo_clip": same, "restarts": restarts}, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
