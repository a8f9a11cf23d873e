"""Decoding speed per frame on the CPU: aggregation, grouping, refine, the whole decode, on synthetic outputs.

    python benchmarks/decode.py                               # 1, 10, 30, 40 people at 512x512 and 512x960
    NUMBA_NUM_THREADS=2 python benchmarks/decode.py --people 30 --repeats 50   # Numba kernels on 2 threads

Rows per (network input, people), all measured in one run, each as the median wall time and the median CPU
time of the process (all threads; on a shared machine wall time includes waiting for a core, and with
several Numba threads CPU time includes OpenMP's spin-waiting):
- baseline match: plain Python written the way the reference does it (dict of people keyed by their first
  tag value, a pure-Python Hungarian step for step like the `munkres` package): the matching of
  pose_stream/benchmarking/baseline.py, the `pose-stream bench` baseline;
- reference match: kernels/group_ref.match (the NumPy reference this project tests against);
- numba match+adjust: NumbaGrouper.match + place (matching, quarter offsets, scores): the <= 0.2 ms target;
- numba refine: refine request + the aggregation's refine search (missing joints only) + apply;
- numba group: everything after the candidates;
- reference refine: the reference's per-person refine (all K joints of every person over the full maps),
  timed on up to --ref-people people and scaled to all (marked "~");
- numba aggregation: kernels/aggregate_numba (heatmaps, candidates, refine's tile summaries);
- decode: Decoder.decode (aggregation, grouping, refine, mapping to the image): the <= 15 ms target at
  512x960.
Inputs: network outputs rendered from random known poses (10% hidden joints, noise), flip test, rotated over
--frames frames. Prints a table; writes JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from pose_stream.benchmarking.baseline import BaselineConfig, match_by_tag  # noqa: E402
from pose_stream.decoding import Decoder, ScaleOutputs  # noqa: E402
from pose_stream.joints import COCO  # noqa: E402
from pose_stream.decoding import group_ref  # noqa: E402
from pose_stream.synthetic import outputs as synthetic  # noqa: E402
from pose_stream.decoding.aggregate_numba import aggregate_numba  # noqa: E402
from pose_stream.decoding.aggregate_ref import refine_peaks  # noqa: E402
from pose_stream.decoding.group_numba import NumbaGrouper  # noqa: E402
from pose_stream.decoding.grouping_types import GroupingParams  # noqa: E402
from pose_stream.decoding.preprocess import Transform  # noqa: E402

PARAMS = GroupingParams()


# ------------------------------------------------------------------------------------- plain-Python baseline
BASELINE = BaselineConfig(joint_set=COCO, max_people=PARAMS.max_people, detection_threshold=PARAMS.detection_threshold,
                          tag_threshold=PARAMS.tag_threshold)
SOLVER_NAME = "pure-Python Munkres (pose_stream.benchmarking.hungarian)"


def baseline_match(cands) -> int:
    """Matching as the reference codes it (the bench baseline's plain-Python grouping); returns the count."""
    locations = np.stack([cands.x, cands.y], axis=2)
    return len(match_by_tag(cands.tags, locations, cands.value, BASELINE))


# ----------------------------------------------------------------------------------------------- inputs
def make_frames(people: int, hw: tuple[int, int], frames: int, seed: int):
    """[(outputs, flipped, NumbaAggregation)] for `frames` random scenes."""
    h, w = hw
    out = []
    for f in range(frames):
        rng = np.random.default_rng(seed + f)
        scene = synthetic.random_people(rng, people, (w, h), border_gap=3.0, hidden_fraction=0.1)
        outputs = synthetic.render_outputs(scene, (w, h), 17, noise=0.01, rng=rng)
        flipped = synthetic.render_flipped_outputs(scene, (w, h), COCO, noise=0.01, rng=rng)
        out.append((outputs, flipped, aggregate(outputs, flipped, hw)))
    return out


def aggregate(outputs, flipped, base_hw):
    scale = ScaleOutputs(tuple(outputs), tuple(flipped), 1.0)
    return aggregate_numba([scale], COCO.flip_index, base_hw, PARAMS.max_people, 5)


def timed(fn, inputs, repeats: int) -> dict[str, float]:
    """Median wall and CPU milliseconds of fn(x), rotating over inputs, after one warm-up call per input."""
    for x in inputs:
        fn(x)
    wall, cpu = [], []
    for r in range(repeats):
        x = inputs[r % len(inputs)]
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(x)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": float(np.median(wall) * 1e3), "cpu": float(np.median(cpu) * 1e3)}


def bench_config(people: int, hw: tuple[int, int], args) -> dict:
    frames = make_frames(people, hw, args.frames, seed=people * 1000 + hw[1])
    grouper = NumbaGrouper(COCO.visit_order, PARAMS)
    prepared = [(outputs, flipped, result, grouper.match(result.candidates)) for outputs, flipped, result in frames]

    def search(result):
        return lambda request: result.refine(request.mean_tags, request.pending)

    def numba_match_adjust(p):
        matching = grouper.match(p[2].candidates)
        grouper.place(p[2].candidates, matching, p[2].candidates.neighbours)

    def numba_refine(p):
        cands, matching = p[2].candidates, p[3]
        keypoints, _ = grouper.place(cands, matching, cands.neighbours)
        request = grouper.refine_request(cands, matching)
        grouper.refine_apply(keypoints, request, search(p[2])(request))

    few = max(5, args.repeats // 5)
    rows = {
        "baseline match": timed(lambda p: baseline_match(p[2].candidates), prepared, max(3, args.repeats // 10)),
        "reference match": timed(lambda p: group_ref.match(p[2].candidates, COCO.visit_order, PARAMS), prepared,
                                 max(3, args.repeats // 5)),
        "numba match+adjust": timed(numba_match_adjust, prepared, args.repeats),
        "numba refine": timed(numba_refine, prepared, few),
        "numba group": timed(lambda p: grouper.group(p[2].candidates, neighbours=p[2].candidates.neighbours,
                                                     refine_search=search(p[2])), prepared, few),
    }
    ref_ms, extrapolated = _reference_refine(prepared[0], args.ref_people)
    rows["reference refine"] = {"wall": ref_ms, "cpu": None}
    rows["numba aggregation"] = timed(lambda p: aggregate(p[0], p[1], hw), prepared, few)
    decoder = Decoder(COCO, PARAMS, threads=numba.get_num_threads())
    transform = Transform((hw[1] // 2, hw[0] // 2), (hw[1] / 200, hw[0] / 200), (hw[1], hw[0]), (hw[1], hw[0]))
    rows["decode"] = timed(lambda p: decoder.decode([ScaleOutputs(p[0], p[1])], transform), prepared, few)
    return {
        "people": people, "input_hw": list(hw), "decoded_people": int(prepared[0][3].num_people),
        "pending_joints": int((prepared[0][3].joints < 0).sum()), "ms": rows,
        "reference_refine_extrapolated": extrapolated,
    }


def _reference_refine(p, max_people: int) -> tuple[float, bool]:
    """The reference refines every joint of every person: time that on up to max_people people, scale."""
    cands, matching = p[2].candidates, p[3]
    n = matching.num_people
    if n == 0:
        return 0.0, False
    maps = p[2].maps()
    request = group_ref.refine_request(cands, matching, maps)
    take = min(n, max_people)
    start = time.perf_counter()
    refine_peaks(maps, request.mean_tags[:take])
    return (time.perf_counter() - start) * 1e3 * n / take, take < n


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (info.read_text().splitlines() if info.exists() else [])
             if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 10, 30, 40])
    parser.add_argument("--sizes", nargs="+", default=["512x512", "512x960"], help="network input HxW")
    parser.add_argument("--repeats", type=int, default=100, help="timed runs of the fast paths")
    parser.add_argument("--frames", type=int, default=3, help="different synthetic frames to rotate over")
    parser.add_argument("--ref-people", type=int, default=3, help="people the reference refine is timed on")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/decode-DATE-<threads>t.json)")
    parser.add_argument("--label", default="", help="a note stored with the results (e.g. what was merged)")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]

    from tqdm import tqdm

    load_before = list(os.getloadavg())
    results = []
    for hw in sizes:
        for people in tqdm(args.people, desc=f"{hw[0]}x{hw[1]}", leave=False):
            results.append(bench_config(people, hw, args))

    names = list(results[0]["ms"])
    print(f"decode benchmark: median ms per frame, wall / CPU (Numba threads {numba.get_num_threads()}, "
          f"layer {numba.threading_layer()}; baseline Hungarian: {SOLVER_NAME})")
    print(f"{'input':>8} {'people':>6} {'found':>5} " + " ".join(f"{n:>20}" for n in names))
    for r in results:
        cells = []
        for n in names:
            cell = r["ms"][n]
            mark = "~" if n == "reference refine" and r["reference_refine_extrapolated"] else ""
            text = f"{mark}{cell['wall']:.3f}" + (f" / {cell['cpu']:.3f}" if cell["cpu"] is not None else "")
            cells.append(text.rjust(20))
        hw = f"{r['input_hw'][0]}x{r['input_hw'][1]}"
        print(f"{hw:>8} {r['people']:>6} {r['decoded_people']:>5} " + " ".join(cells))
    print("speed-up, matching (baseline match / numba match+adjust): "
          + ", ".join(f"{r['people']}p {r['input_hw'][1]}w: "
                      f"{r['ms']['baseline match']['wall'] / r['ms']['numba match+adjust']['wall']:.0f}x"
                      for r in results))
    print("speed-up, grouping ((reference match + reference refine) / numba group): "
          + ", ".join(f"{r['people']}p {r['input_hw'][1]}w: "
                      f"{(r['ms']['reference match']['wall'] + r['ms']['reference refine']['wall']) / r['ms']['numba group']['wall']:.0f}x"
                      for r in results))

    threads = numba.get_num_threads()
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"decode-{dt.date.today()}-{threads}t.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
                    "numba_threading_layer": numba.threading_layer(), "load_average_before": load_before,
                    "load_average_after": list(os.getloadavg())},
        "label": args.label,
        "baseline_hungarian": SOLVER_NAME,
        "results": results,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
