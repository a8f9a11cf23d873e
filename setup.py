from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="pose-stream",
    version="0.1.0",
    description="Real-time multi-person 2D pose estimation (HigherHRNet) on live video: ONNX, TensorRT, CUDA, Numba",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pose_stream", "pose_stream.*"]),
    package_data={"pose_stream": ["decoding/*.cu", "data/*", "web/*.html"]},
    install_requires=[
        "torch>=2.4",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        # OpenCV 5's warpAffine differs from 4.x (the reference preprocessing); the headless build needs no
        # libGL, so it imports on servers and CI. For --show windows, install opencv-python<5 instead.
        "opencv-python-headless>=4.10,<5",
        "numpy>=1.24",
        "numba>=0.59",
        "tqdm>=4.60",
        # person tracking (--tracker norfair, the default): the maintained fork of tryolabs' norfair (same
        # `norfair` import), which supports NumPy 2 and takes a whole-frame distance matrix
        "norfair-enough>=2.4,<3",
        # the live view (--serve) and its Prometheus metrics
        "aiohttp>=3.9",
        "prometheus-client>=0.20",
    ],
    extras_require={
        # TensorRT 11 removed the FP16 builder flag (weakly typed builds) that build-engine relies on.
        "gpu": ["tensorrt>=10.0,<11", "pycuda>=2025.1.2", "onnxruntime-gpu>=1.18"],
        "eval": ["pycocotools>=2.0.7"],
        # The client of --backend triton (the server runs elsewhere, e.g. NVIDIA's tritonserver container).
        "triton": ["tritonclient[grpc]>=2.40"],
        # --tracker bytetrack (roboflow's trackers, with supervision)
        "bytetrack": ["trackers>=2.1"],
        "bench": ["matplotlib>=3.7", "motmetrics>=1.4"],
        # munkres: the tie-break oracle for our Hungarian solver. The reference ran with munkres 1.1.x; 2.0+
        # breaks ties between equal-cost assignments differently, which changes who is grouped with whom.
        # OneEuroFilter: the authors' filter, the reference our vectorised one is tested against
        "test": ["pytest>=7.4", "scipy>=1.10", "pycocotools>=2.0.7", "matplotlib>=3.7", "munkres>=1.1,<2",
                 "tritonclient[grpc]>=2.40", "trackers>=2.1", "motmetrics>=1.4", "OneEuroFilter>=0.2",
                 # the live view's page is tested in a real browser: Debian's chromium, driven by Playwright
                 "playwright>=1.40"],
    },
    entry_points={"console_scripts": ["pose-stream=pose_stream.cli.main:console_main"]},
)
