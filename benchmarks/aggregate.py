"""Benchmark: heatmap aggregation + candidates per frame, NumPy reference vs Numba (vs CUDA where present).

Synthetic network outputs (K = 17, flip test) at the given network-input sizes; every path is checked
against the reference before it is timed. Prints a table and writes JSON under benchmarks/results/.

Examples:
    python benchmarks/aggregate.py
    python benchmarks/aggregate.py --sizes 512x960 --repeats 50 --threads 2
    python benchmarks/aggregate.py --sizes 512x512 512x960 --refine-persons 1 10 30 --cuda cupy
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

EXAMPLES = __doc__.split("Examples:")[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time heatmap aggregation + top-k candidates per frame (reference vs Numba vs CUDA).",
        epilog="examples:" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", nargs="+", default=["512x512", "512x960"], help="network inputs HxW")
    parser.add_argument("--repeats", type=int, default=30, help="timed Numba/CUDA runs per case (median)")
    parser.add_argument("--reference-repeats", type=int, default=1, help="timed reference runs per case")
    parser.add_argument("--threads", type=int, default=None, help="Numba threads (default: Numba's)")
    parser.add_argument("--refine-persons", nargs="*", type=int, default=[30], help="also time refine for N persons")
    parser.add_argument("--cuda", choices=["none", "pycuda", "cupy"], default="none", help="also time a CUDA driver")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="JSON folder")
    return parser.parse_args()


def synthetic_scale(rng: np.random.Generator, k: int, hw: tuple[int, int]):
    from pose_stream.decoding.aggregate_ref import ScaleOutputs

    def outputs():
        return (
            (rng.standard_normal((2 * k, hw[0] // 4, hw[1] // 4)) * 0.1).astype(np.float32),
            (rng.standard_normal((k, hw[0] // 2, hw[1] // 2)) * 0.1).astype(np.float32),
        )

    return ScaleOutputs(outputs(), outputs())


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (info.read_text().splitlines() if info.exists() else [])
             if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def median_ms(fn, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return 1e3 * statistics.median(times)


def same_candidates(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("x", "y", "value", "tags", "neighbours"))


def cuda_timer(driver: str, scale, flip_index, hw):
    """A function running the CUDA aggregation once (and its candidates), or None where it cannot run."""
    from pose_stream.decoding.aggregate_cuda import CudaAggregator, ScalePointers, ScaleShape

    if driver == "cupy":
        import cupy

        arrays = [cupy.asarray(a) for a in (*scale.outputs, *scale.flipped)]
        pointers = ScalePointers(*(a.data.ptr for a in arrays))
    else:
        import pycuda.autoinit  # noqa: F401  (a benchmark script may own the context)
        import pycuda.gpuarray as gpuarray

        arrays = [gpuarray.to_gpu(a) for a in (*scale.outputs, *scale.flipped)]
        pointers = ScalePointers(*(int(a.gpudata) for a in arrays))
    aggregator = CudaAggregator(17, hw, [ScaleShape(scale.quarter_hw, scale.half_hw)], flip_index, driver=driver)
    return aggregator, (lambda: aggregator.aggregate([pointers])), arrays


def main() -> None:
    args = parse_args()
    if args.threads:
        os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    import numba
    from tqdm import tqdm

    from pose_stream.joints import COCO
    from pose_stream.decoding.aggregate_numba import aggregate_numba
    from pose_stream.decoding.aggregate_ref import aggregate_reference

    rng = np.random.default_rng(0)
    rows = []
    for size in tqdm(args.sizes, desc="sizes"):
        hw = tuple(int(v) for v in size.lower().split("x"))
        scale = synthetic_scale(rng, 17, hw)
        flip = COCO.flip_index
        reference, _ = aggregate_reference([scale], flip, hw)
        reference_ms = median_ms(lambda: aggregate_reference([scale], flip, hw), args.reference_repeats)
        buffer = np.empty((17, *hw), np.float32)
        result = aggregate_numba([scale], flip, hw, heatmaps_out=buffer)  # compiles (or loads the cache)
        if not same_candidates(result.candidates, reference):
            raise SystemExit(f"Numba candidates differ from the reference at {size}")
        row = {
            "size": size,
            "reference_ms": reference_ms,
            "numba_ms": median_ms(lambda: aggregate_numba([scale], flip, hw, heatmaps_out=buffer), args.repeats),
            "numba_fresh_buffer_ms": median_ms(lambda: aggregate_numba([scale], flip, hw), args.repeats),
            # CPU time of all threads: the work itself, whatever else the machine runs (with several threads
            # it includes OpenMP's spin-waiting)
            "numba_cpu_ms": median_ms(
                lambda: aggregate_numba([scale], flip, hw, heatmaps_out=buffer), args.repeats, time.process_time
            ),
        }
        for persons in args.refine_persons:
            tags = result.candidates.tags[:, :, :].reshape(-1, 2)[:persons]
            row[f"numba_refine_{persons}_ms"] = median_ms(lambda: result.refine(tags), max(3, args.repeats // 5))
        if args.cuda != "none":
            aggregator, run, _keep = cuda_timer(args.cuda, scale, flip, hw)
            try:
                if not same_candidates(run(), reference):
                    raise SystemExit(f"CUDA candidates differ from the reference at {size}")
                for _ in range(5):
                    run()
                row[f"cuda_{args.cuda}_ms"] = median_ms(run, args.repeats)
            finally:
                aggregator.close()
        rows.append(row)

    columns = list(rows[0])
    print(" | ".join(f"{c:>22}" for c in columns))
    for row in rows:
        print(" | ".join(f"{row[c]:>22.2f}" if isinstance(row[c], float) else f"{row[c]:>22}" for c in columns))
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    record = {
        "benchmark": "aggregate",
        "date": stamp,
        "command": "python benchmarks/aggregate.py " + " ".join(os.sys.argv[1:]),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "numba_threading_layer": numba.threading_layer(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "versions": {"numpy": np.__version__, "numba": numba.__version__, "python": platform.python_version()},
        "joints": 17,
        "flip": True,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"aggregate-{stamp}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
