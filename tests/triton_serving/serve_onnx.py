"""A real Triton Inference Server (PyTriton's bundled tritonserver) serving an exported pose-stream ONNX model.

    LD_LIBRARY_PATH=<libdir> <venv>/bin/python serve_onnx.py MODEL.onnx --name pose --grpc-port 8001 ...

Run with the interpreter of a separate virtual environment (nvidia-pytriton 0.7.0 needs numpy < 2, which the
project's OpenCV does not allow); the project's own environment is the client, as in a deployment. Triton's
Python backend runs the model with ONNX Runtime under the model's own tensor names, behind Triton's dynamic
batcher. Prints "pose-stream triton server: serving" on stdout once the model is ready.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("onnx")
    parser.add_argument("--name", default="pose")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--queue-delay-us", type=int, default=2000)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_names = [o.name for o in session.get_outputs()]

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        outputs = session.run(output_names, {input_name: inputs[input_name].astype(np.float32)})
        return dict(zip(output_names, outputs))

    config = TritonConfig(grpc_port=args.grpc_port, http_port=args.http_port, metrics_port=args.metrics_port,
                          log_verbose=0)
    # No token-restricted endpoints: the client reads the statistics and registers shared memory.
    with Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=[])) as triton:
        triton.bind(
            model_name=args.name, infer_func=infer,
            inputs=[Tensor(name=input_name, dtype=np.float32, shape=(3, -1, -1))],
            outputs=[Tensor(name=name, dtype=np.float32, shape=(-1, -1, -1)) for name in output_names],
            config=ModelConfig(max_batch_size=args.max_batch,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=args.queue_delay_us)),
            strict=True,
        )
        print("\npose-stream triton server: serving", flush=True)
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
