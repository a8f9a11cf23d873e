"""The network on a Triton Inference Server: the batches the pipeline makes, sent over gRPC (tritonclient).

Decoding stays on the client; only the network runs on the server. At connect the backend checks the model's
metadata against what pose-stream sends (input `input` FP32 (N, 3, H, W); outputs `out0`, `out1`) and learns
the joint count from one small call. Every call has a timeout. When the server goes away, a call raises
`BackendUnavailable` (the pipeline counts the frames as dropped and goes on reading its cameras), and later
calls try again at most every `retry_interval` seconds, so the backend is back within that of the server
(logging each change of state). With `shared_memory` (the server on the same host) inputs and outputs travel
through POSIX shared memory regions instead of the gRPC messages.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from pose_stream._optional import require
from pose_stream.engine.base import Backend, BackendInfo
from pose_stream.errors import BackendUnavailable, PoseStreamError
from pose_stream.export.onnx_export import INPUT_NAME, OUTPUT_NAMES

log = logging.getLogger(__name__)

# gRPC statuses that mean "the server is not there now" rather than "this request is wrong".
_UNAVAILABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "failed to connect", "Connection refused",
                "Socket closed", "Broken pipe")


SERVER_PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


@dataclass(frozen=True)
class ServerStatistics:
    """Triton's cumulative statistics of one model: inputs (rows of every request), executions (the batches it
    ran), and per phase (queue, compute_input, compute_infer, compute_output) the requests counted and their
    total nanoseconds."""

    inference_count: int
    execution_count: int
    phases: dict[str, tuple[int, int]]

    def since(self, before: "ServerStatistics") -> dict[str, Any]:
        """The calls between `before` and this snapshot: inputs, executions, inputs per execution, and the mean
        milliseconds per request of each phase (None where no request was counted)."""
        inputs = self.inference_count - before.inference_count
        executions = self.execution_count - before.execution_count
        out: dict[str, Any] = {"inputs": inputs, "executions": executions,
                               "inputs_per_execution": round(inputs / executions, 2) if executions else None}
        for phase in SERVER_PHASES:
            count = self.phases[phase][0] - before.phases[phase][0]
            nanoseconds = self.phases[phase][1] - before.phases[phase][1]
            out[f"{phase}_ms"] = round(nanoseconds / count / 1e6, 3) if count else None
        return out


class TritonBackend(Backend):
    """A model served by Triton, called over gRPC.

    Args:
        url: HOST:PORT of the server's gRPC endpoint.
        model: the model's name on the server.
        timeout: seconds for every call (connect, metadata, inference).
        shared_memory: exchange tensors through system shared memory (the server must be on this host).
        retry_interval: while the server is gone, the least time between two attempts to reach it.
        num_joints: the joints the caller's model config has; checked against the model's metadata where its
            output dims are static, and against every answer otherwise.
    """

    def __init__(self, url: str, model: str, timeout: float = 2.0, shared_memory: bool = False,
                 retry_interval: float = 0.25, num_joints: int = 17) -> None:
        self._grpc = require("tritonclient.grpc", "the triton backend")
        self._utils = require("tritonclient.utils", "the triton backend")
        self.url, self.model = url, model
        self.timeout, self.retry_interval = timeout, retry_interval
        self.shared_memory = shared_memory
        self._client = self._grpc.InferenceServerClient(url)
        self._regions: dict[str, tuple[Any, int]] = {}  # name -> (handle, bytes)
        self._prefix = f"/pose-stream-{os.getpid()}-{id(self):x}"
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_attempt = 0.0
        self._closed = False
        self.unavailable_calls = 0
        self.num_joints = num_joints
        self._connect()
        detail = f"{url}, model {model}" + (", shared memory" if shared_memory else "")
        self.info = BackendInfo("triton", f"server {url}", "fp32", detail)

    # -- connection ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        """Reach the server and check the model; PoseStreamError (one line) when it cannot be used at all."""
        try:
            if not self._client.is_server_live(client_timeout=self.timeout):
                raise PoseStreamError(f"the Triton server at {self.url} is not live")
            metadata = self._client.get_model_metadata(self.model, client_timeout=self.timeout)
            config = self._client.get_model_config(self.model, client_timeout=self.timeout).config
        except self._utils.InferenceServerException as exc:
            raise PoseStreamError(self._explain(exc)) from None
        self._check_metadata(metadata)
        self.max_batch = int(config.max_batch_size) or None
        self._register_regions_again()

    def _explain(self, exc: Exception) -> str:
        text = _first_and_last_line(exc)
        if "unknown model" in text.lower() or "not found" in text.lower():
            served = self._served_models()
            return (f"the Triton server at {self.url} has no model '{self.model}'"
                    + (f" (it serves: {', '.join(served)})" if served else ""))
        if any(marker in text for marker in _UNAVAILABLE):
            return f"cannot reach the Triton server at {self.url} within {self.timeout:g} s ({text[:120]})"
        return f"the Triton server at {self.url} refused: {text[:200]}"

    def _served_models(self) -> list[str]:
        try:
            index = self._client.get_model_repository_index(client_timeout=self.timeout)
        except self._utils.InferenceServerException:
            return []
        return sorted(model.name for model in index.models)

    def _check_metadata(self, metadata: Any) -> None:
        inputs = {t.name: (t.datatype, list(t.shape)) for t in metadata.inputs}
        outputs = {t.name: (t.datatype, list(t.shape)) for t in metadata.outputs}
        problems = []
        if set(inputs) != {INPUT_NAME}:
            problems.append(f"inputs {sorted(inputs)} (expected ['{INPUT_NAME}'])")
        else:
            dtype, shape = inputs[INPUT_NAME]
            if dtype != "FP32" or len(shape) != 4 or shape[1] not in (3, -1):
                problems.append(f"input '{INPUT_NAME}' {dtype} {shape} (expected FP32 [N, 3, H, W])")
            self._input_dims = shape
        k = outputs.get(OUTPUT_NAMES[1], ("", []))[1]
        if len(k) == 4 and k[1] > 0 and k[1] != self.num_joints:
            problems.append(f"{k[1]} joints (the model config here has {self.num_joints})")
        if not set(OUTPUT_NAMES) <= set(outputs):
            problems.append(f"outputs {sorted(outputs)} (expected {list(OUTPUT_NAMES)})")
        elif any(outputs[name][0] != "FP32" for name in OUTPUT_NAMES):
            problems.append(f"outputs {[outputs[n] for n in OUTPUT_NAMES]} (expected FP32)")
        if problems:
            raise PoseStreamError(f"the Triton model '{self.model}' at {self.url} does not fit pose-stream: "
                                  f"{'; '.join(problems)}")

    # -- the Backend interface --------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int | None, int, int | None, int | None]:
        n, _, h, w = self._input_dims
        return (n if n > 0 else None, 3, h if h > 0 else None, w if w > 0 else None)

    @property
    def batch_range(self) -> tuple[int, int | None]:
        fixed = self.input_shape[0]
        if fixed is not None:
            return fixed, fixed
        return 1, self.max_batch

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        batch = self.check_input(batch)
        with self._lock:
            if self._closed:
                raise PoseStreamError("the triton backend is closed")
            if self._down_since is not None:
                self._try_again()
            try:
                out0, out1 = self._call(batch)
            except self._utils.InferenceServerException as exc:
                text = str(exc)
                if not any(marker in text for marker in _UNAVAILABLE):
                    raise PoseStreamError(f"the Triton model '{self.model}' refused a batch of "
                                          f"{'x'.join(map(str, batch.shape))}: {_first_and_last_line(exc)}") from None
                self._went_down(text)
                raise BackendUnavailable(f"the Triton server at {self.url} is unreachable") from None
        if out1.shape[1] != self.num_joints or out0.shape[1] != 2 * self.num_joints:
            raise PoseStreamError(f"the Triton model '{self.model}' returns {out0.shape[1]} and {out1.shape[1]} "
                                  f"channels; {self.num_joints} joints need {2 * self.num_joints} and "
                                  f"{self.num_joints} (another model's network?)")
        return [out0, out1]

    def statistics(self) -> "ServerStatistics":
        """A snapshot of the server's statistics of this model (Triton's own, cumulative since it loaded the model);
        `after.since(before)` gives the figures of the calls in between."""
        stats = self._client.get_inference_statistics(self.model, client_timeout=self.timeout, as_json=True)
        model = stats["model_stats"][0]
        inference = model.get("inference_stats", {})
        phases = {phase: (int(inference.get(phase, {}).get("count", 0)), int(inference.get(phase, {}).get("ns", 0)))
                  for phase in SERVER_PHASES}
        return ServerStatistics(int(model.get("inference_count", 0)), int(model.get("execution_count", 0)), phases)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._release_regions()
            try:
                self._client.close()
            except Exception as exc:  # noqa: BLE001 - closing a channel to a server that is gone may fail
                log.debug("closing the gRPC channel: %s", exc)

    # -- private --------------------------------------------------------------------------------------
    def _call(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grpc = self._grpc
        request = grpc.InferInput(INPUT_NAME, list(batch.shape), "FP32")
        outputs = [grpc.InferRequestedOutput(name) for name in OUTPUT_NAMES]
        if self.shared_memory:
            shapes = self._output_shapes(batch.shape)
            self._put_region("input", batch)
            request.set_shared_memory(self._region_name("input"), batch.nbytes)
            for output, name in zip(outputs, OUTPUT_NAMES):
                nbytes = 4 * math.prod(shapes[name])
                self._region("output-" + name, nbytes)
                output.set_shared_memory(self._region_name("output-" + name), nbytes)
        else:
            request.set_data_from_numpy(batch)
        result = self._client.infer(self.model, [request], outputs=outputs, client_timeout=self.timeout)
        if not self.shared_memory:
            return result.as_numpy(OUTPUT_NAMES[0]), result.as_numpy(OUTPUT_NAMES[1])
        shm = require("tritonclient.utils.shared_memory", "shared memory with the triton backend")
        return tuple(np.array(shm.get_contents_as_numpy(self._regions["output-" + name][0], np.float32,
                                                         shapes[name]))
                     for name in OUTPUT_NAMES)

    def _output_shapes(self, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        n, _, h, w = shape
        k = self.num_joints
        return {OUTPUT_NAMES[0]: (n, 2 * k, h // 4, w // 4), OUTPUT_NAMES[1]: (n, k, h // 2, w // 2)}

    def _region_name(self, key: str) -> str:
        return f"pose-stream-{os.getpid()}-{id(self):x}-{key}"

    def _region(self, key: str, nbytes: int) -> Any:
        """The shared memory region `key` of at least nbytes, created and registered with the server."""
        held = self._regions.get(key)
        if held is not None and held[1] >= nbytes:
            return held[0]
        shm = require("tritonclient.utils.shared_memory", "shared memory with the triton backend")
        if held is not None:
            self._client.unregister_system_shared_memory(self._region_name(key), client_timeout=self.timeout)
            shm.destroy_shared_memory_region(held[0])
        handle = shm.create_shared_memory_region(self._region_name(key), f"{self._prefix}-{key}", nbytes)
        self._client.register_system_shared_memory(self._region_name(key), f"{self._prefix}-{key}", nbytes,
                                                   client_timeout=self.timeout)
        self._regions[key] = (handle, nbytes)
        return handle

    def _put_region(self, key: str, array: np.ndarray) -> None:
        shm = require("tritonclient.utils.shared_memory", "shared memory with the triton backend")
        shm.set_shared_memory_region(self._region(key, array.nbytes), [np.ascontiguousarray(array)])

    def _register_regions_again(self) -> None:
        """After a server restart the server has forgotten the regions: register those this client holds."""
        for key, (_, nbytes) in self._regions.items():
            try:
                self._client.unregister_system_shared_memory(self._region_name(key), client_timeout=self.timeout)
            except self._utils.InferenceServerException:
                pass  # not registered: the server is new
            self._client.register_system_shared_memory(self._region_name(key), f"{self._prefix}-{key}", nbytes,
                                                       client_timeout=self.timeout)

    def _release_regions(self) -> None:
        if not self._regions:
            return
        shm = require("tritonclient.utils.shared_memory", "shared memory with the triton backend")
        for key, (handle, _) in list(self._regions.items()):
            if self._down_since is None:
                try:
                    self._client.unregister_system_shared_memory(self._region_name(key), client_timeout=self.timeout)
                except self._utils.InferenceServerException as exc:
                    log.debug("unregistering %s: %s", key, exc)
            shm.destroy_shared_memory_region(handle)
        self._regions.clear()

    def _went_down(self, reason: str) -> None:
        now = time.monotonic()
        self._last_attempt = now
        self.unavailable_calls += 1
        if self._down_since is None:
            self._down_since = now
            log.warning("Triton server %s unreachable (%s): frames are dropped until it is back",
                        self.url, reason.splitlines()[0][:120] if reason else "no answer")

    def _try_again(self) -> None:
        """While down: at most every retry_interval, reconnect (and check the model again); else give up now."""
        now = time.monotonic()
        if now - self._last_attempt < self.retry_interval:
            self.unavailable_calls += 1
            raise BackendUnavailable(f"the Triton server at {self.url} is unreachable")
        self._last_attempt = now
        try:
            self._connect()
        except PoseStreamError as exc:
            self.unavailable_calls += 1
            log.debug("Triton server %s still unreachable: %s", self.url, exc)
            raise BackendUnavailable(f"the Triton server at {self.url} is unreachable") from None
        log.warning("Triton server %s is back after %.1f s", self.url, now - self._down_since)
        self._down_since = None


def _first_and_last_line(exc: Exception) -> str:
    """A server error in one line: its first line and, for a traceback from the model, its last one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    first = lines[0].split(": Traceback")[0]
    return (first if len(lines) == 1 else f"{first}: {lines[-1]}")[:240]
