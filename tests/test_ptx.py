"""Every CUDA kernel compiles to real PTX and passes ptxas (tools/ptx_check.py).

The simulator that runs the CUDA tests checks no types and no hardware limits, so the kernels
are also compiled for real, in a SUBPROCESS without NUMBA_ENABLE_CUDASIM (the simulator and the
real compiler cannot share one process). Both targets the issue names, sm_80 and sm_90, exactly
as `python tools/ptx_check.py` does by default. Skipped, with the reason, only when numba-cuda,
NVVM or ptxas is missing.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "ptx_check.py")


def _ptxas():
    return shutil.which("ptxas") or next(
        (p for p in ("/usr/local/cuda/bin/ptxas", "/usr/local/bin/ptxas") if os.path.exists(p)), None)


def test_every_cuda_kernel_compiles_to_ptx_and_passes_ptxas():
    pytest.importorskip("numba.cuda", reason="numba-cuda is not installed (pip install 'minicnn[cuda]')")
    if _ptxas() is None:
        pytest.skip("ptxas (CUDA toolkit) not found: cannot assemble the PTX")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, TOOL, "--arch", "80", "90"], env=env, capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    out = r.stdout + r.stderr
    if r.returncode == 3:
        pytest.skip(f"NVVM is not available: {out.strip()[-500:]}")
    assert r.returncode == 0, out[-5000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith("ok ")]
    # one line per kernel and dtype, each with the register and shared-memory report
    assert len(lines) >= 2 * 90, out[-3000:]
    assert {line.split()[1] for line in lines} == {"sm_80", "sm_90"}, out[-3000:]
    assert all(re.search(r"\d+ registers, +\d+ bytes smem", line) for line in lines), out[-3000:]
    gemm = [line for line in lines if "gemm._KERNELS" in line]
    assert {"float32", "float64"} <= {line.split()[2] for line in gemm}
    assert "0 failed" in r.stdout
