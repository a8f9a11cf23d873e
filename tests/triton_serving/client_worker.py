"""One client process of the multi-client test: sends its own inputs to the Triton server and checks that every
answer is the local ONNX Runtime's for those inputs. `python client_worker.py URL MODEL ONNX SEED CALLS`."""
from __future__ import annotations

import sys

import numpy as np


def main() -> int:
    from pose_stream.engine import OnnxRuntimeBackend
    from pose_stream.engine.triton_backend import TritonBackend

    url, model, onnx, seed, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    rng = np.random.default_rng(seed)
    remote = TritonBackend(url, model, timeout=30.0)
    local = OnnxRuntimeBackend(onnx, providers=["CPUExecutionProvider"])
    worst = 0.0
    for _ in range(calls):
        batch = rng.standard_normal((2, 3, 64, 96)).astype(np.float32)
        for a, b in zip(remote.infer(batch), local.infer(batch)):
            worst = max(worst, float(np.abs(a - b).max()))
    remote.close()
    print(f"worst {worst:.3g}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
