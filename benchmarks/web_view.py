"""Does watching cost the pipeline anything? Pipeline FPS with the live view served to browser tabs, and without.

    python benchmarks/web_view.py                      # 4 sources, 3 Chromium tabs, the demo model
    python benchmarks/web_view.py --frames 60 --tabs 3 --sources 4 --name quick

Runs the same work four times (each source a demo clip played as a file: every frame, as fast as the pipeline
goes, so FPS measures the pipeline's capacity): without --serve; with the live view and nobody watching; with
--tabs viewers that read every source's MJPEG stream over HTTP from another process and discard it (the
server's own cost); with the live view open in --tabs Chromium tabs on this machine, driven by Playwright (the
server's cost plus the browser's decoding and drawing, which a viewer on another machine does not add). The CPU
seconds of the pipeline's process, the viewers and the browser are counted from /proc. Prints a table; writes
JSON under benchmarks/results/. Needs Chromium (apt-get install -y chromium) and Playwright for Python.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--tabs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100, help="frames per source (default: %(default)s)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--name", default=None, help="JSON file stem (default: web-view-DATE)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if not args.chromium:
        parser.error("no Chromium found: apt-get install -y chromium, or pass --chromium PATH")

    runs = {}
    viewers, tabs = f"live view, {args.tabs} HTTP viewers", f"live view, {args.tabs} Chromium tabs"
    for label, serve, watch in (("no live view", False, None), ("live view, nobody watching", True, None),
                                (viewers, True, "http"), (tabs, True, "chromium")):
        runs[label] = _run(args, serve, watch)
        r = runs[label]
        print(f"{label:<32} {r['fps']:6.2f} FPS  latency p50 {r['latency_p50_ms']:6.0f} ms  streams {r['streams']:2d}  "
              f"JPEG frames sent {r['frames_sent']:5d}  CPU s: pipeline {r['cpu_s']['pipeline']:.1f}, viewers "
              f"{r['cpu_s']['viewers']:.1f}, browser {r['cpu_s']['browser']:.1f}", flush=True)
    base = runs["live view, nobody watching"]["fps"]
    result = {"date": datetime.date.today().isoformat(), "command": " ".join(["python", *sys.argv]),
              "settings": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
              "fps_change_with_http_viewers_pct": round(100 * (runs[viewers]["fps"] / base - 1), 2),
              "fps_change_with_chromium_tabs_pct": round(100 * (runs[tabs]["fps"] / base - 1), 2),
              "fps_change_of_live_view_pct": round(100 * (base / runs["no live view"]["fps"] - 1), 2)}
    print(f"FPS against nobody watching: {args.tabs} HTTP viewers {result['fps_change_with_http_viewers_pct']:+.1f}%, "
          f"{args.tabs} Chromium tabs on this machine {result['fps_change_with_chromium_tabs_pct']:+.1f}%; "
          f"live view (rendering included) vs none: {result['fps_change_of_live_view_pct']:+.1f}%")
    out = args.out_dir / f"{args.name or 'web-view-' + result['date']}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _run(args, serve: bool, watch: str | None) -> dict:
    from pose_stream.estimator import PoseEstimator
    from pose_stream.models.demo import DEMO_INPUT_SIZE, DEMO_MODEL_NAME, demo_model_path
    from pose_stream.pipeline import GeneratedSource, Pipeline, PipelineConfig
    from pose_stream.pipeline.sources.demo import seeded_demo
    from pose_stream.tracking import TrackingConfig
    from pose_stream.web import LiveView, WebServer

    # the clips are rendered before timing (the scene's renderer is not what is measured)
    clips = [list(seeded_demo(seed)(args.frames, (640, 360))) for seed in range(args.sources)]
    sources = [GeneratedSource(args.frames, (640, 360), source_id=f"cam{i}",
                               frames=lambda n, size, clip=clip: iter(clip[:n])) for i, clip in enumerate(clips)]
    estimator = PoseEstimator(DEMO_MODEL_NAME, weights=str(demo_model_path()), input_size=DEMO_INPUT_SIZE,
                              device="cpu")
    view = LiveView(sources) if serve else None
    pipeline = Pipeline(estimator, sources, [view] if view else [], PipelineConfig(tracking=TrackingConfig()))
    server = WebServer(view, "127.0.0.1", 0) if view else None
    watchers: list = []
    viewer: subprocess.Popen | None = None
    done = threading.Event()
    if server is not None:
        server.start()
    try:
        if watch == "chromium":
            ready = threading.Event()
            watcher = threading.Thread(target=_watch, args=(args.chromium, server.url, args.tabs, ready, done),
                                       daemon=True)
            watcher.start()
            watchers.append(watcher)
            ready.wait(120)
        elif watch == "http":
            urls = [f"{server.url}stream/{i}.mjpg" for i in range(args.sources)] * args.tabs
            viewer = subprocess.Popen([sys.executable, "-c", HTTP_VIEWER, *urls], stdout=subprocess.PIPE, text=True)
            viewer.stdout.readline()  # "open": every stream is connected
        streams = server.streams if server else 0
        before = _cpu_seconds()
        stats = pipeline.run()
        after = _cpu_seconds()
    finally:
        done.set()
        for watcher in watchers:
            watcher.join(60)
        if viewer is not None:
            viewer.terminate()
            viewer.wait(30)
        if server is not None:
            server.stop()
    latency = stats.latency.percentiles([50])[0]
    return {"fps": round(stats.fps, 3), "frames": stats.frames, "latency_p50_ms": round(1000 * latency, 1),
            "streams": streams, "frames_sent": server.frames_sent if server else 0,
            "cpu_s": {k: round(after[k] - before[k], 2) for k in after}}


# A viewer that is not a browser: reads each MJPEG stream given on the command line and throws the bytes away.
HTTP_VIEWER = """
import sys, threading, urllib.request
streams = [urllib.request.urlopen(url, timeout=60) for url in sys.argv[1:]]
print("open", flush=True)
def drain(stream):
    while stream.read(65536):
        pass
threads = [threading.Thread(target=drain, args=(s,), daemon=True) for s in streams]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process, the HTTP viewer and Chromium's processes."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"pipeline": 0.0, "viewers": 0.0, "browser": 0.0}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == me:
            totals["pipeline"] += seconds
        elif b"chromium" in command or b"chrome" in command or b"playwright" in command:
            totals["browser"] += seconds
        elif b"urllib.request" in command:
            totals["viewers"] += seconds
    return totals


def _watch(chromium: str, url: str, tabs: int, ready: threading.Event, done: threading.Event) -> None:
    """Open `tabs` tabs on the page and keep them open until `done`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        pages = [browser.new_page() for _ in range(tabs)]
        for page in pages:
            page.goto(url)
            page.wait_for_selector(".card img")
        time.sleep(1.0)  # the streams are open
        ready.set()
        done.wait()
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
