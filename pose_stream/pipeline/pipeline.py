"""The streaming pipeline: capture -> prepare + infer -> aggregate -> group -> sinks, one thread per stage.

    capture (one thread per source) --FrameMux--> infer --queue--> aggregate --queue--> group --queue--> output
                                                    ^ owns the backend                            (caller's thread)

Rules every thread follows: it sends END downstream in a `finally`; every blocking get/put waits in short
slices and watches the abort event; any exception records the failure and aborts the others, and `run`
raises it once everything has stopped. `stop()` (Ctrl-C) ends capture, lets what is in flight finish for up
to `drain_timeout` seconds, then finalises the sinks.

`run` returns only when every thread has returned: a thread inside a native call (a network pass in torch,
ONNX Runtime or CUDA) finishes that call and then stops at its next queue operation. The interpreter must
never exit under a running native call (torch's worker threads then abort the process: exit status 134), so
the only way out early is `abandon()`, after which the caller must end the process with `os._exit`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pose_stream.errors import BackendUnavailable, PoseStreamError
from pose_stream.pipeline.channels import END, Aborted, FrameMux, StageQueue
from pose_stream.pipeline.config import PipelineConfig, PipelineError
from pose_stream.pipeline.frames import Frame, FrameResult, Work
from pose_stream.pipeline.protocols import StageEstimator
from pose_stream.pipeline.render import draw_overlay, draw_poses, drawn_people
from pose_stream.pipeline.outputs import check_outputs
from pose_stream.pipeline.sinks import Sink, SinkContext
from pose_stream.pipeline.sources import Source, SourceState
from pose_stream.pipeline.sources.base import DEFAULT_FPS
from pose_stream.pipeline.stats import PipelineStats
from pose_stream.joints import get_joint_set
from pose_stream.tracking import Follower, load_tracker_library

log = logging.getLogger(__name__)

THREAD_PREFIX = "pose-stream"
SLOW_START_S = 5.0  # a warm-up still running after this long is said in the log, once
SLOW_START_MESSAGE = ("still starting after %.0f s: loading the network and preparing the decoding kernels (the "
                      "first run after an install compiles them, about half a minute on a 2-core CPU; later runs "
                      "load them from Numba's cache)")


class Pipeline:
    """Runs sources through a stage estimator into sinks. Use once: `stats = Pipeline(...).run()`.

    Args:
        estimator: the four stages and close(). The pipeline owns it from here: its inference thread makes
            the first `infer` call (creating the backend) and calls `close()` when it ends.
        sources: one capture thread each.
        sinks: outputs, fed in the thread that calls run().
        on_backend_ready: called once from the inference thread after the first inference, with the
            estimator's `backend_info` (None if it has none).
    """

    WAIT_NOTE_SECONDS = 5.0  # while waiting for a busy thread at the end, say so this often

    def __init__(self, estimator: StageEstimator, sources: Sequence[Source], sinks: Sequence[Sink] = (),
                 config: PipelineConfig | None = None,
                 on_backend_ready: Callable[[Any], None] | None = None) -> None:
        if not sources:
            raise PoseStreamError("no source to read")
        self.estimator = estimator
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.config = config or PipelineConfig()
        self._on_backend_ready = on_backend_ready
        self._stop = threading.Event()     # capture ends; frames in flight still finish
        self._warmed = threading.Event()   # the estimator is warmed up: the sources may open
        self._abort = threading.Event()    # everything ends now
        self._abandon = threading.Event()  # and run() does not wait for threads still inside a call
        self._outputs_done = threading.Event()
        self._stop_deadline: float | None = None
        self._failure: tuple[str, BaseException] | None = None
        self._failure_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._ran = False
        self.mux = FrameMux([s.live for s in self.sources], self.config.file_buffer, self._stop, self._abort,
                            limit=self.config.max_frames)
        size = self.config.queue_size
        self._inferred = StageQueue("infer->aggregate", size, self._abort)
        self._aggregated = StageQueue("aggregate->group", size, self._abort)
        self._grouped = StageQueue("group->output", size, self._abort)
        self.stats = PipelineStats([s.source_id for s in self.sources])
        self._followers: dict[int, Follower | None] = {}  # per source index, made at its first frame
        self.refresh_stats()

    # -- control (safe from signal handlers and other threads) -------------------------------------

    def stop(self) -> None:
        """Stop capturing, finish the frames in flight (for up to drain_timeout), finalise outputs."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.config.drain_timeout
        self._stop.set()

    def abort(self) -> None:
        """Stop now, abandoning frames in flight (outputs are still finalised; threads are still waited for)."""
        self._stop.set()
        self._abort.set()

    def abandon(self) -> None:
        """Abort, and let run() return without waiting for threads still inside a native call. The caller
        must then end the process with os._exit (see `alive_threads`), not by returning from main."""
        self._abandon.set()
        self.abort()

    @property
    def abandoned(self) -> bool:
        return self._abandon.is_set()

    @property
    def alive_threads(self) -> list[str]:
        """Names of the pipeline's threads still running (empty once run() has waited for them all)."""
        return [t.name for t in self._threads if t.is_alive()]

    @property
    def _aggregates_in_infer_thread(self) -> bool:
        # Estimators whose outputs stay on the GPU say so themselves (PoseEstimator with TensorRT).
        fused_by_estimator = bool(getattr(self.estimator, "aggregate_in_infer_thread", False))
        return self.config.aggregate_in_infer_thread or fused_by_estimator

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- running -----------------------------------------------------------------------------------

    def run(self) -> PipelineStats:
        """Process until every source ends, max_frames, stop() or a failure; return the statistics.

        Raises the failing stage's PoseStreamError as it is, or PipelineError for anything unexpected.
        """
        if self._ran:
            raise RuntimeError("a Pipeline runs once; make a new one")
        self._ran = True
        started: list[Sink] = []
        clean = False
        try:
            check_outputs(self.sinks, self.sources)
            context = SinkContext(self.sources, self.stop, succeeded=lambda: self._failure is None, stats=self.stats)
            for sink in self.sinks:
                sink.start(context)
                started.append(sink)
            self._start_threads()
            clean = self._output_loop()
        except BaseException as exc:  # noqa: BLE001 - recorded and re-raised below, after shutdown
            self._fail("output", exc)
        finally:
            self._shutdown(started, clean)
        if self._failure is not None:
            stage, exc = self._failure
            if isinstance(exc, PoseStreamError):
                raise exc
            if isinstance(exc, KeyboardInterrupt):
                raise exc
            raise PipelineError(f"the {stage} stage failed: {type(exc).__name__}: {exc}") from exc
        return self.stats

    def refresh_stats(self) -> PipelineStats:
        """Copy source states, drops and queue fill into `stats` (the output stage calls it as it goes)."""
        self.stats.source_status = [s.status.snapshot() for s in self.sources]
        self.stats.input_drops = list(self.mux.drops)
        self.stats.queues = [q.stats for q in (self._inferred, self._aggregated, self._grouped)]
        return self.stats

    def _start_threads(self) -> None:
        # The inference thread starts first and warms the estimator up (while this thread loads the tracker's
        # library); the sources open after that, so that no frame waits for the network to load.
        self._start_thread("infer", self._infer_loop)
        if self.config.warm_up and any(self._tracked(source) for source in self.sources):
            load_tracker_library(self.config.tracking)
        waiting_since, said = time.monotonic(), False
        while not self._warmed.wait(0.05) and not self._stop.is_set():
            if not said and time.monotonic() - waiting_since > SLOW_START_S:
                log.warning(SLOW_START_MESSAGE, SLOW_START_S)
                said = True
        for i, source in enumerate(self.sources):
            self._start_thread(f"capture-{i}", self._capture, i, source)
        aggregate = None if self._aggregates_in_infer_thread else self.estimator.aggregate
        self._start_thread("aggregate", self._stage_loop, "aggregate", aggregate, self._inferred, self._aggregated)
        self._start_thread("group", self._stage_loop, "group", self.estimator.group, self._aggregated, self._grouped)

    def _start_thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        # Daemon: after abandon() a thread stuck in native code must not keep the process alive; otherwise run()
        # waits for every thread (see the module docstring).
        thread = threading.Thread(target=target, args=args, name=f"{THREAD_PREFIX}-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _tracked(self, source: Source) -> bool:
        """Whether the source's people get track ids (videos, when tracking is on; never image folders)."""
        return self.config.tracking is not None and source.video

    def _fail(self, stage: str, exc: BaseException, drain: bool = False) -> None:
        """Record the run's first failure and end the run: at once, or with `drain` (a source that failed) as
        stop() does, so that the frames already read still reach the outputs."""
        with self._failure_lock:
            first = self._failure is None
            if first:
                self._failure = (stage, exc)
        if first:
            if isinstance(exc, (PoseStreamError, KeyboardInterrupt)):
                log.debug("%s stage stopped the pipeline: %s", stage, exc)
            else:
                log.error("%s stage failed: %s: %s", stage, type(exc).__name__, exc, exc_info=exc)
        if drain:
            self.stop()
        else:
            self.abort()

    def _join_threads(self) -> None:
        """Wait for every thread to return, in short slices (signal handlers run in between), until
        join_timeout or abandon()."""
        timeout = self.config.join_timeout
        started = time.monotonic()
        next_note = started + self.WAIT_NOTE_SECONDS
        for thread in self._threads:
            while thread.is_alive() and not self._abandon.is_set():
                thread.join(0.05)
                now = time.monotonic()
                if timeout is not None and now - started > timeout:
                    log.warning("thread %s did not stop within %.1f s (blocked in native code?)", thread.name, timeout)
                    break
                if thread.is_alive() and now > next_note:
                    next_note = now + self.WAIT_NOTE_SECONDS
                    log.warning("waiting for %s to finish its current call (%.0f s so far)", thread.name, now - started)

    # -- stage threads -------------------------------------------------------------------------------

    def _capture(self, index: int, source: Source) -> None:
        images = source.images(self._stop)
        failed = False
        try:
            for seq, captured in enumerate(images):
                if not self.mux.put(index, Frame.of(captured, source.source_id, index, seq)):
                    break
        except BaseException as exc:  # noqa: BLE001 - recorded; run() raises it
            failed = True
            source.status.last_error = str(exc)
            source.status.set_state(SourceState.FAILED, str(exc))
            self._fail(f"capture ({source.source_id})", exc, drain=True)
        finally:
            images.close()  # runs the generator's finally: the capture is released in this thread
            if not failed:
                source.status.set_state(SourceState.ENDED)
            self.mux.end(index)

    def _infer_loop(self) -> None:
        estimator = self.estimator
        fused = self._aggregates_in_infer_thread
        announced = False
        infer_batch = getattr(estimator, "infer_batch", None) or (lambda items: [estimator.infer(p) for p in items])
        try:
            warm_up = getattr(estimator, "warm_up", None)
            if self.config.warm_up and warm_up is not None:
                started = time.perf_counter()
                warm_up()
                log.debug("estimator warmed up in %.2f s", time.perf_counter() - started)
            self._warmed.set()
            while True:
                frames = self.mux.get_batch(self.config.batch, self.config.batch_wait)
                if frames is END:
                    break
                works = [Work(frame) for frame in frames]
                t0 = time.perf_counter()
                prepared = [estimator.prepare(frame.image) for frame in frames]
                t1 = time.perf_counter()
                try:
                    raws = infer_batch(prepared)
                except BackendUnavailable:
                    # A remote backend that went away: these frames are lost, the sources go on; the backend
                    # itself retries and logs when it is back.
                    self.stats.backend_drops += len(frames)
                    continue
                t2 = time.perf_counter()
                self.stats.record_batch(len(frames), t2 - t1)
                for work, raw in zip(works, raws):
                    # per frame: its share of the batch (the batch's own time is in stats.batches)
                    work.payload = raw
                    work.timings["prepare"], work.timings["infer"] = (t1 - t0) / len(frames), (t2 - t1) / len(frames)
                if not announced:
                    announced = True
                    info = getattr(estimator, "backend_info", None)
                    self.stats.backend = "" if info is None else str(info)
                    if self._on_backend_ready is not None:
                        self._on_backend_ready(info)
                if fused:  # every frame's GPU outputs are read before the next batch overwrites them
                    for work in works:
                        t3 = time.perf_counter()
                        work.payload = estimator.aggregate(work.payload)
                        work.timings["aggregate"] = time.perf_counter() - t3
                for work in works:
                    self._inferred.put(work)
        except Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - recorded; run() raises it
            self._fail("infer", exc)
        finally:
            self._send_end(self._inferred)
            # Outputs of the backend may still be in use downstream: close once the output stage is done.
            # That stage always ends (END, abort, or the drain deadline, which aborts), so wait for it; after
            # an abort, stages still inside a call get a bounded grace period.
            while not self._outputs_done.wait(0.1):
                if self._abort.is_set():
                    self._outputs_done.wait(self.config.join_timeout)
                    break
            try:
                estimator.close()
            except BaseException as exc:  # noqa: BLE001
                self._fail("infer (closing the backend)", exc)

    def _stage_loop(self, name: str, fn: Callable[[Any], Any] | None, inbox: StageQueue, outbox: StageQueue) -> None:
        """Apply `fn` to each payload (None: pass through, the work was done upstream)."""
        try:
            while True:
                work = inbox.get()
                if work is END:
                    break
                if fn is not None:
                    t0 = time.perf_counter()
                    work.payload = fn(work.payload)
                    work.timings[name] = time.perf_counter() - t0
                outbox.put(work)
        except Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - recorded; run() raises it
            self._fail(name, exc)
        finally:
            self._send_end(outbox)

    @staticmethod
    def _send_end(queue: StageQueue) -> None:
        try:
            queue.put(END)
        except Aborted:
            pass  # the consumer is aborting too and will not wait for it

    # -- output stage (the caller's thread) ------------------------------------------------------------

    def _output_loop(self) -> bool:
        """Feed sinks until END (True) or abort / drain timeout (False)."""
        render = any(sink.needs_render for sink in self.sinks)
        last_refresh = 0.0
        while True:
            if self._abort.is_set():
                return False
            if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
                log.warning("stopping: frames still in flight after %.1f s are abandoned", self.config.drain_timeout)
                self._abort.set()
                return False
            work = self._grouped.poll(0.05)
            now = time.monotonic()
            if now - last_refresh > 0.5:
                self.refresh_stats()
                last_refresh = now
            if work is None:
                continue
            if work is END:
                return True
            self._emit(work, render)

    def _emit(self, work: Work, render: bool) -> None:
        frame: Frame = work.frame
        latency = time.monotonic() - frame.captured_at
        state = self.sources[frame.source_index].status.state.value
        poses = work.payload.with_min_score(self.config.min_score) if self.config.min_score > 0 else work.payload
        follower = self._follower(frame.source_index, poses)
        if follower is not None:
            t0 = time.perf_counter()
            # the source's own clock (frame number / fps), steadier than arrival times and right for files too
            poses = follower(poses, frame.index / follower.fps)
            work.timings["track"] = time.perf_counter() - t0
        result = FrameResult(frame, poses, work.timings, latency, state, time.time())
        if render:
            t0 = time.perf_counter()
            result.annotated = draw_poses(frame.image, result.poses, min_score=self.config.min_score)
            if self.config.overlay:
                draw_overlay(result.annotated, self._overlay_lines(result))
            work.timings["render"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for sink in self.sinks:
            sink.write(result)
        work.timings["sinks"] = time.perf_counter() - t0
        self.stats.record(frame.source_index, latency, work.timings, len(result.poses))

    def _follower(self, source_index: int, poses: Any) -> Follower | None:
        """The source's tracker (and smoother), made at its first frame (when a video knows its frame rate)."""
        if source_index not in self._followers:
            source = self.sources[source_index]
            follower = None
            if self._tracked(source):
                sigmas = get_joint_set(poses.joint_set).sigmas
                follower = Follower(self.config.tracking, self.config.smoothing, sigmas, source.fps or DEFAULT_FPS)
            self._followers[source_index] = follower
        return self._followers[source_index]

    def _overlay_lines(self, result: FrameResult) -> list[str]:
        fps = self.stats.recent_fps()
        lines = [f"{'--' if fps != fps else f'{fps:.1f}'} FPS  latency {result.latency * 1000:.0f} ms  "
                 f"{len(drawn_people(result.poses))} people"]
        if result.source_state != SourceState.STREAMING.value:
            lines.append(f"source {result.source_state}")
        return lines

    def _shutdown(self, started: list[Sink], clean: bool) -> None:
        self._stop.set()
        if not clean:
            self._abort.set()
        self._outputs_done.set()
        for sink in started:
            try:
                sink.close()
            except BaseException as exc:  # noqa: BLE001 - recorded; run() raises it
                self._fail(f"output ({type(sink).__name__})", exc)
        self.mux.wake()
        if not self._threads:
            # Failed before the inference thread existed (a sink could not start): no backend was created,
            # so closing here touches no thread-bound state.
            try:
                self.estimator.close()
            except BaseException as exc:  # noqa: BLE001 - recorded; run() raises it
                self._fail("closing the estimator", exc)
        self._join_threads()
        self.stats.discarded = max(0, self.mux.delivered - self.stats.frames)
        self.refresh_stats()
