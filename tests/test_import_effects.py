"""`import minicnn` has no process-wide effects; they wait for the first use of a kernel set."""
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import os, sys
before = os.environ.get("OMP_WAIT_POLICY")
import minicnn as mc, minicnn.functional as F, minicnn.nn, minicnn.models
assert "minicnn.kernels.cpu" not in sys.modules, "import minicnn loaded the CPU kernels"
assert "numba" not in sys.modules or "minicnn.kernels.cpu._jit" not in sys.modules
assert os.environ.get("OMP_WAIT_POLICY") == before, "import minicnn changed OMP_WAIT_POLICY"
import numpy as np
F.relu(mc.Tensor(np.ones(3, np.float32)))          # first use: the CPU kernels load now
assert "minicnn.kernels.cpu" in sys.modules
assert os.environ.get("OMP_WAIT_POLICY") == (before or "PASSIVE")
print("ok")
"""


@pytest.mark.parametrize("user_policy", [None, "ACTIVE"])
def test_import_has_no_process_wide_effects(user_policy):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user_policy:
        env["OMP_WAIT_POLICY"] = user_policy
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
