"""The one decorator every Numba CPU kernel uses.

    @kernel                  -> njit(parallel=True, nogil=True, cache=..., fastmath=FASTMATH)
    @kernel(parallel=False)  -> the same without prange threads (small or serial loops)
    serial_twin(k)           -> kernel k compiled once more with parallel=False
    sized(k, n)              -> k, or its serial twin when n elements are too few for threads
    sized(k, n, cheap=True)  -> the same for a loop of a compare or two per element (16x the bar)

nogil: a kernel releases the GIL while it runs, so the serial twins of two slices of a batch run
at the same time in two Python threads (kernels/cpu/_threads.py says when that happens).

fastmath leaves out 'nnan' and 'ninf': with plain fastmath=True, `np.isnan` lies and a NaN in
the input can vanish from the output. Caching goes next to the source (__pycache__) or to
NUMBA_CACHE_DIR; when neither is writable we fall back to a temporary folder, and when even that
fails we compile without a cache rather than fail at import.
"""
import os
import tempfile
import types

# Numba's OpenMP threads spin for SPIN_COUNT turns after a parallel region before they sleep.
# GNU OpenMP's default (~300000 turns, milliseconds) holds the other core long after the kernel;
# sleeping at once (OMP_WAIT_POLICY=PASSIVE, this project's setting until gemm.py's rule 3 moved
# the large products off OpenBLAS's own threads) makes every parallel call wake a sleeping
# thread first, ~130 us on the AMD VM, and a ResNet-50 step makes hundreds of such calls with a
# little Python between them. 30000 turns (~0.5 ms) bridge those gaps: ResNet-50 175-250 ms a step
# against 223-238, AlphaGo 430-470 against 469-525, AlexNet 295-333 against 314-356 (LeNet-5
# level, 5-6 ms). Figures: benchmarks/results/cpu_measurements.md. Read when the threading layer
# starts, i.e. at the first parallel kernel call; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT
# wins.
SPIN_COUNT = "30000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT

import numba  # noqa: E402
from numba import njit  # noqa: E402

FASTMATH = {"reassoc", "contract", "arcp", "afn", "nsz"}


def _writable(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder)
        probe.close()
        return True
    except OSError:
        return False


def _choose_cache():
    if numba.config.CACHE_DIR:
        return _writable(numba.config.CACHE_DIR)
    if _writable(os.path.join(os.path.dirname(__file__), "__pycache__")):
        return True
    fallback = os.path.join(tempfile.gettempdir(), "minicnn-numba-cache")
    if _writable(fallback):
        numba.config.CACHE_DIR = fallback
        return True
    return False


CACHE = _choose_cache()


def cache_folder():
    """Where the compiled kernels are kept: NUMBA_CACHE_DIR (or our fallback), else next to the
    sources; None when nothing is cached."""
    if not CACHE:
        return None
    return numba.config.CACHE_DIR or os.path.join(os.path.dirname(__file__), "__pycache__")


def compiled_marker(name):
    """A file that says: the kernels `name` (a model, say) uses were compiled into the cache by
    this Numba. The command line looks for it to warn, on a first run only, that compiling
    takes a while, and writes it once a run has finished. None when nothing is cached."""
    folder = cache_folder()
    if folder is None:
        return None
    return os.path.join(folder, f"minicnn-compiled-{name}-numba{numba.__version__}")


def kernel(fn=None, *, parallel=True):
    """njit with the project's settings; use bare (@kernel) or with arguments."""
    def wrap(f):
        return njit(parallel=parallel, nogil=True, cache=CACHE, fastmath=FASTMATH)(f)
    return wrap(fn) if fn is not None else wrap


_twins = {}


def serial_twin(parallel_kernel):
    """The same loops without threads (prange runs as range), for a caller that is already one
    of several threads: Numba's parallel launches must not run inside each other. Compiled from
    a copy of the function under its own name, so that Numba's on-disk cache (keyed by that
    name) keeps the two compilations apart. One twin per kernel, however often asked for."""
    twin = _twins.get(parallel_kernel)
    if twin is None:
        f = parallel_kernel.py_func
        copy = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__, f.__closure__)
        copy.__qualname__ = f.__qualname__ + "_serial"
        copy.__module__, copy.__doc__ = f.__module__, f.__doc__
        twin = _twins[parallel_kernel] = kernel(copy, parallel=False)
    return twin


SERIAL_BELOW = 1 << 15  # elements: below this, a kernel's serial twin runs (see `sized`)
CHEAP_FACTOR = 16       # ... and below 16x as many for a cheap loop (cheap=True)
STREAM_FACTOR = 4       # ... and below 4x as many for an optimiser's update (streaming=True)


def sized(parallel_kernel, n, cheap=False, streaming=False):
    """The kernel to run on n elements: the parallel one, or below SERIAL_BELOW its serial twin.
    Numba's threads sleep shortly after each call (SPIN_COUNT, above), and waking a sleeping
    thread costs more than the whole work of a small loop (a softmax over LeNet's logits). A cheap
    loop (a compare and a select per element: relu, its gradient, max pooling's scatter) is bound
    by memory and already fast on one core, where threads make it slower still, so it stays serial
    up to CHEAP_FACTOR times further. An optimiser's update (streaming: a few multiply-adds per
    element over three to five arrays) gains from a second core only past ~100k elements, so it
    stays serial up to STREAM_FACTOR times further; LeNet-5's then never compiles the parallel
    one. Figures: benchmarks/results/cpu_measurements.md. The twin is compiled on first use."""
    factor = CHEAP_FACTOR if cheap else STREAM_FACTOR if streaming else 1
    if n >= SERIAL_BELOW * factor:
        return parallel_kernel
    return serial_twin(parallel_kernel)
