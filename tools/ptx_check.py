"""Compile every CUDA kernel in kernels/cuda to real PTX and check it with ptxas.

    python tools/ptx_check.py [--arch 80 90] [--ptxas PATH]

The simulator (NUMBA_ENABLE_CUDASIM=1, used by the tests) checks nothing about types or
hardware limits: a kernel that calls np.exp, or wants 128 KiB of shared memory, passes there and
fails on a GPU. This script compiles each kernel with numba.cuda.compile_ptx for every listed
compute capability (sm_80 and sm_90 by default), for float32 and float64, and, where `ptxas` is
found, assembles the PTX and prints one line per kernel with its registers and shared memory.
Any failure makes the exit status non-zero (1). Exit status 3: NVVM is missing (pip install
"cuda-toolkit[nvvm,nvrtc]==13.0.*", the version that pairs with a CUDA 13.0 ptxas).

It needs no GPU: device functions ask for the current device's compute capability when they
are compiled, so `numba.cuda.dispatcher.get_current_device` is patched to answer the one being
compiled. It must not run in the simulator: the variable is removed before numba is imported.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types

os.environ.pop("NUMBA_ENABLE_CUDASIM", None)  # before numba's first import: the real compiler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from numba import boolean, float32, float64, int64  # noqa: E402
from numba import types as nbtypes  # noqa: E402

RANK = 4  # the rank the elementwise kernels are checked at (each rank is its own compile)


def _arr(dtype, ndim):
    return nbtypes.Array(dtype, ndim, "A")


def signatures(f):
    """{(module, kernel): argument types} for data dtype f (float32 or float64)."""
    a1, a2, a3, a4 = (_arr(f, n) for n in (1, 2, 3, 4))
    i1, i3, i4 = _arr(int64, 1), _arr(int64, 3), _arr(int64, 4)
    b1 = _arr(boolean, 1)
    d1 = _arr(float64, 1)
    n = int64
    tup = nbtypes.UniTuple(int64, RANK)
    return {
        ("_launch", "_fill_kernel"): (a1, f),
        ("conv", "_im2col_kernel"): (a4, a3) + (n,) * 9,
        ("conv", "_col2im_kernel"): (a3, a4) + (n,) * 10 + (f,),
        ("pool", "_max_forward_kernel"): (a4, a4, i4) + (n,) * 6,
        ("pool", "_max_backward_kernel"): (a4, i4, a4),
        ("pool", "_avg_forward_kernel"): (a4, a4) + (n,) * 6 + (boolean, f),
        ("pool", "_avg_backward_kernel"): (a4, a4) + (n,) * 6 + (boolean, f),
        ("pool", "_adaptive_forward_kernel"): (a4, a4, f),
        ("pool", "_adaptive_backward_kernel"): (a4, a4, f),
        ("activation", "_relu_forward_kernel"): (a1, a1),
        ("activation", "_relu_backward_kernel"): (a1, a1, a1),
        ("activation", "_leaky_forward_kernel"): (a1, f, a1),
        ("activation", "_leaky_backward_kernel"): (a1, a1, f, a1),
        ("activation", "_elu_forward_kernel"): (a1, f, a1),
        ("activation", "_elu_backward_kernel"): (a1, a1, f, a1),
        ("activation", "_sigmoid_forward_kernel"): (a1, f, a1),
        ("activation", "_sigmoid_backward_kernel"): (a1, a1, f, a1),
        ("activation", "_tanh_forward_kernel"): (a1, a1),
        ("activation", "_tanh_backward_kernel"): (a1, a1, f, a1),
        ("activation", "_maxout_forward_kernel"): (a3, n, a3, i3),
        ("activation", "_maxout_backward_kernel"): (a3, i3, n, a3),
        ("loss", "_softmax_forward_kernel"): (a2, a2, f),
        ("loss", "_softmax_backward_kernel"): (a2, a2, a2, f),
        ("loss", "_log_softmax_forward_kernel"): (a2, a2, f),
        ("loss", "_log_softmax_backward_kernel"): (a2, a2, a2, f),
        ("loss", "_ce_forward_kernel"): (a2, i1, a1, a2, f),
        ("loss", "_ce_backward_kernel"): (a2, i1, a1, a2),
        ("loss", "_nll_forward_kernel"): (a2, i1, a1),
        ("loss", "_nll_backward_kernel"): (a1, i1, a2),
        ("loss", "_mse_forward_kernel"): (a1, a1, a1),
        ("loss", "_mse_backward_kernel"): (a1, a1, a1, a1),
        ("dropout", "_mask_kernel"): (a1, f, f, a1),
        ("dropout", "_mul_kernel"): (a1, a1, a1),
        ("dropout", "_mul_plane_kernel"): (a1, a1, n, a1),
        ("norm", "_lrn_forward_kernel"): (a3, n, f, f, f, a3, a3, f),
        ("norm", "_lrn_backward_kernel"): (a3, a3, a3, a3, n, f, f, a3, f),
        ("norm", "_stats_kernel"): (a3, a1, a1),
        ("norm", "_grad_sums_kernel"): (a3, a3, a1, a1, d1, d1),
        ("norm", "_bn_forward_kernel"): (a3, a1, a1, a1, a1, a3),
        ("norm", "_bn_backward_kernel"): (a3, a3, a1, a1, a1, d1, d1, boolean, a3, a1, a1),
        ("elementwise", "_binary_kernel"): (n, a1, a1, a1, tup, tup, tup),
        ("elementwise", "_scalar_kernel"): (n, a1, f, a1),
        ("elementwise", "_unary_kernel"): (n, a1, a1, tup, tup),
        ("elementwise", "_compare_kernel"): (n, a1, a1, b1, tup, tup, tup),
        ("norm", "_invstd_kernel"): (a1, float64, a1),
        ("norm", "_update_running_kernel"): (a1, a1, a1, a1, float64, n),
        ("index", "_take_kernel"): (a1, i1, a1),
        ("index", "_scatter_kernel"): (a1, i1, a1),
        ("index", "_gather_add_kernel"): (a1, i1, i1, a1, f),
        ("shape", "_put_slab_kernel"): (a3, a3, n),
        ("shape", "_take_slab_kernel"): (a3, a3, n),
        ("shape", "_pad2d_kernel"): (a3, a3, n, n, f),
        ("shape", "_crop2d_kernel"): (a3, a3, n, n),
        ("reduce", "_short_rows_kernel"): (n, a2, a1, f),
        ("reduce", "_KERNELS"): (n, a2, a1, f),
        ("gemm", "_KERNELS"): (a3, a3, a3, boolean, boolean, f),
        ("optim", "_sgd_kernel"): (a1, a1, a1, f, f, f, f, boolean, boolean, boolean),
        ("optim", "_adam_kernel"): (a1,) * 5 + (f,) * 5 + (boolean,) * 3 + (f, f, f),
        ("winograd", "_input_transform_kernel"): (a4, a3) + (n,) * 4 + (f,),
        ("winograd", "_output_transform_kernel"): (a3, a4, a1, n, n),
        ("winograd", "_input_grad_transform_kernel"): (a3, a4, n, n, n, n, f),
        ("winograd", "_grad_output_transform_kernel"): (a4, a3, n, n, f),
        ("winograd", "_weight_transform_kernel"): (a4, a3, f),
        ("winograd", "_weight_grad_transform_kernel"): (a3, a4, f),
    }


MODULES = ("_launch", "conv", "pool", "activation", "loss", "dropout", "norm", "elementwise",
           "reduce", "gemm", "optim", "index", "shape", "winograd")


def _is_kernel(obj):
    from numba.cuda.dispatcher import CUDADispatcher
    return isinstance(obj, CUDADispatcher) and not obj.targetoptions.get("device", False)


def discover():
    """Every kernel (not device function) defined in kernels/cuda, as (module, name) keys."""
    import importlib
    found = {}
    for mod_name in MODULES:
        mod = importlib.import_module(f"minicnn.kernels.cuda.{mod_name}")
        for name, obj in vars(mod).items():
            if _is_kernel(obj) and obj.py_func.__module__ == mod.__name__:
                found[(mod_name, name)] = {None: obj}
            elif name == "_KERNELS":  # one kernel per dtype, made by a factory
                found[(mod_name, name)] = {str(dt): k for dt, k in obj.items()}
    return found


def _ptxas_report(ptxas, ptx, arch):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.ptx")
        with open(path, "w") as fh:
            fh.write(ptx)
        r = subprocess.run([ptxas, f"-arch=sm_{arch}", "-v", path, "-o", os.path.join(tmp, "k.cubin")],
                           capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ptxas failed:\n{r.stderr.strip()}")
    regs = re.findall(r"Used (\d+) registers", r.stderr)
    smem = re.findall(r"(\d+) bytes smem", r.stderr)
    return f"{max(map(int, regs)) if regs else 0:3d} registers, {max(map(int, smem)) if smem else 0:5d} bytes smem"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", nargs="+", type=int, default=[80, 90], help="compute capabilities, e.g. 80 90")
    parser.add_argument("--ptxas", default=None, help="ptxas to run (default: on PATH or /usr/local/cuda/bin)")
    args = parser.parse_args(argv)

    from numba import cuda
    import numba.cuda.dispatcher as dispatcher
    try:
        from numba.cuda.cudadrv.nvvm import NVVM
        NVVM()
    except Exception as exc:  # noqa: BLE001 (any failure to load NVVM means the same thing)
        print(f"ptx_check: NVVM is not available ({exc}); pip install \"cuda-toolkit[nvvm,nvrtc]==13.0.*\"")
        return 3
    ptxas = args.ptxas or shutil.which("ptxas") or next(
        (p for p in ("/usr/local/cuda/bin/ptxas", "/usr/local/bin/ptxas") if os.path.exists(p)), None)
    if ptxas is None:
        print("ptx_check: no ptxas found: compiling to PTX only (no register/shared-memory report)")

    kernels = discover()
    table = {dt: signatures(t) for dt, t in (("float32", float32), ("float64", float64))}
    missing = sorted(set(kernels) - set(table["float32"]))
    failures = 0
    for key in missing:
        print(f"FAIL {key[0]}.{key[1]}: no signature in tools/ptx_check.py")
        failures += 1
    count = 0
    for arch in args.arch:
        cc = (arch // 10, arch % 10)
        dispatcher.get_current_device = lambda cc=cc: types.SimpleNamespace(compute_capability=cc)
        for (mod_name, name), variants in sorted(kernels.items()):
            for dt in ("float32", "float64"):
                if (mod_name, name) not in table[dt]:
                    continue
                kernel = variants.get(dt, variants.get(None))
                if kernel is None:
                    continue
                label = f"sm_{arch} {dt:7s} {mod_name}.{name}"
                try:
                    ptx, _ = cuda.compile_ptx(kernel.py_func, table[dt][(mod_name, name)], cc=cc)
                    report = _ptxas_report(ptxas, ptx, arch) if ptxas else "PTX only"
                    print(f"ok   {label:55s} {report}")
                    count += 1
                except Exception as exc:  # noqa: BLE001 (report every kernel, then fail)
                    failures += 1
                    print(f"FAIL {label}: {type(exc).__name__}: {str(exc).strip()[:2000]}")
    print(f"ptx_check: {count} kernel compilations passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
