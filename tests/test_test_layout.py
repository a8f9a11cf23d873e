"""The test tree must not shadow packages that dependencies look for.

pytest puts tests/ on sys.path (tests/conftest.py sits in a folder without __init__.py), so a test folder named
like an optional package becomes an empty namespace package of that name: a folder tests/triton once made torch
believe OpenAI Triton was installed, and every torch.compile and optimizer call then failed.
"""

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent

# Optional packages that our dependencies (torch, onnxruntime, numba, cupy users) import when present.
PROBED = {"triton", "tensorrt", "pycuda", "cupy", "numba", "onnxruntime", "cuda", "tritonclient", "pytriton", "torch",
          "apex", "deepspeed", "xformers", "flash_attn", "intel_extension_for_pytorch", "habana_frameworks"}


def test_no_test_folder_is_named_like_an_optional_package():
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert not folders & PROBED, f"rename {sorted(folders & PROBED)}: it shadows a package of that name"


def test_torch_probes_for_triton_correctly_with_the_tests_on_the_path():
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from torch.utils._triton import has_triton_package\n"
        "if has_triton_package():\n"
        "    import triton; assert hasattr(triton, 'language'), triton.__path__\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(TESTS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
