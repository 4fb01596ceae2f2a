"""Where an array lives: "cpu" (a NumPy array) or "cuda" (a numba.cuda device array).

The CPU path never imports numba.cuda; the GPU path is only touched when a user asks for it.
"""
import numpy as np

DEVICES = ("cpu", "cuda")


def array_device(arr):
    """ "cuda" for a numba device array (it has __cuda_array_interface__; the simulator's arrays
    have copy_to_host instead), "cpu" for the rest."""
    if type(arr) is np.ndarray:  # the common case, answered first: ops ask thousands of times a second
        return "cpu"
    on_gpu = hasattr(arr, "__cuda_array_interface__") or hasattr(arr, "copy_to_host")
    return "cuda" if on_gpu and not isinstance(arr, np.ndarray) else "cpu"


def check_device(device):
    device = str(device)
    name = device.split(":")[0]
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return name


def cuda_module():
    """numba.cuda, or a clear error saying what is missing."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba is a dependency
        raise RuntimeError("device 'cuda' needs numba with CUDA support: pip install 'minicnn[cuda]'") from exc
    if not cuda.is_available():
        raise RuntimeError("device 'cuda': no CUDA GPU is visible (numba.cuda.is_available() is False). "
                           "Install the driver and 'minicnn[cuda]', or set NUMBA_ENABLE_CUDASIM=1 "
                           "before importing minicnn to run the kernels in Numba's simulator.")
    return cuda


def to_device(arr, device):
    """Copy an array to `device` ("cpu" or "cuda"); returns it unchanged when already there."""
    device = check_device(device)
    if array_device(arr) == device:
        return arr
    if device == "cpu":
        return arr.copy_to_host()
    arr = np.asarray(arr)  # not ascontiguousarray alone: it turns a 0-d array into shape (1,)
    return cuda_module().to_device(arr if arr.flags.c_contiguous else np.ascontiguousarray(arr))
