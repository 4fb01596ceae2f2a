"""Shared test setup: hypothesis profiles and small helpers.

The `ci` profile is fixed (derandomized, no deadline, bounded examples) so CI is repeatable;
it is loaded whenever CI is set, and can be chosen with HYPOTHESIS_PROFILE=ci locally.
"""
import os
import shutil
import sys

# No GPU here (nor in CI): run the numba.cuda kernels in Numba's simulator. The variable must be
# set before numba is first imported; the CPU kernels (numba.njit) are unaffected by it.
if "NUMBA_ENABLE_CUDASIM" not in os.environ and shutil.which("nvidia-smi") is None:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    sys.setswitchinterval(5e-4)  # the simulator's threads meet at syncthreads much sooner

# The command-line tests train many models once each: a compile helper per model's first run
# (minicnn/precompile.py) would fight the tests for the cores. tests/test_precompile.py runs it.
os.environ.setdefault("MINICNN_PRECOMPILE", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=30, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def tie_free(rng, shape, low=-2.0, high=2.0, dtype=np.float64):
    """Distinct values, none near 0: safe around the kinks of max, ReLU and friends."""
    n = int(np.prod(shape))
    vals = np.linspace(low, high, 2 * n + 1)
    vals = vals[np.abs(vals) > (high - low) / (4 * n + 2)]  # drop the values closest to zero
    return rng.permutation(vals)[:n].reshape(shape).astype(dtype)
