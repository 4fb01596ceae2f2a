"""`import minicnn` has no process-wide effects; they wait for the first use of a kernel set."""
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import os, sys
before = os.environ.get("OMP_WAIT_POLICY"), os.environ.get("GOMP_SPINCOUNT")
import minicnn as mc, minicnn.functional as F, minicnn.nn, minicnn.models
assert "minicnn.kernels.cpu" not in sys.modules, "import minicnn loaded the CPU kernels"
assert "numba" not in sys.modules or "minicnn.kernels.cpu._jit" not in sys.modules
assert (os.environ.get("OMP_WAIT_POLICY"), os.environ.get("GOMP_SPINCOUNT")) == before, "import minicnn changed OpenMP's settings"
import numpy as np
F.relu(mc.Tensor(np.ones(3, np.float32)))          # first use: the CPU kernels load now
assert "minicnn.kernels.cpu" in sys.modules
policy, spins = before
assert os.environ.get("OMP_WAIT_POLICY") == policy                 # never set by minicnn
assert os.environ.get("GOMP_SPINCOUNT") == (spins if spins or policy else "30000")
print("ok")
"""


@pytest.mark.parametrize("user_setting", [None, ("OMP_WAIT_POLICY", "PASSIVE"), ("GOMP_SPINCOUNT", "1000")])
def test_import_has_no_process_wide_effects(user_setting):
    """The CPU kernels set GOMP_SPINCOUNT on first use, never at import, and leave it alone
    when the user set it or OMP_WAIT_POLICY."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if user_setting:
        env[user_setting[0]] = user_setting[1]
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
