"""Calling a kernel through its address, so that the kernel around the call compiles without it.

    address = address_of(kern, args)   # in Python: kern compiled for these arguments (from the
                                       # cache when it can), its entry point as an int
    call_at(address, args)             # in a kernel: kern(*args), a call through that address

Why: Numba compiles a kernel with a copy of every kernel it calls, and LLVM optimises that copy
again, inside the parallel region of a prange. conv's slices plan (a prange over _slice, which
runs im2col, the GEMMs and col2im) took 4.2 s to compile on a first run, 1.8 s of it _slice on
its own. Called through its address, _slice is compiled and cached once on its own and the prange
around it compiles in a fraction of a second. Numba's first-class functions call through an
address too, but look it up in Python at every call (~24 us); address_of looks it up once per
kind of arguments.

The call uses Numba's own calling convention, so an exception raised in the callee reaches the
caller as from any other call. The types must match what the callee was compiled for: pass
address_of arguments of exactly the kinds the kernel will pass call_at (an array's element for
an array indexed in the kernel, say).
"""
import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

_addresses = {}     # (kernel, kinds of arguments) -> (address, the arguments' objects kept)


def _kind(a):
    """What Numba's type of an argument depends on, found faster than numba.typeof (~6 us)."""
    if isinstance(a, np.ndarray):
        return a.dtype, a.ndim, a.flags.num         # num: contiguity, writeable, aligned, as bits
    if isinstance(a, tuple):
        return type(a), tuple(map(type, a))
    if isinstance(a, (bool, int, float, np.generic)):
        return type(a)
    return id(a)        # anything else (the GEMM's ctypes function) by identity: kept alive below


def address_of(kern, args):
    """The address of `kern` compiled for arguments like `args` (a tuple)."""
    key = (kern, tuple(_kind(a) for a in args))
    found = _addresses.get(key)
    if found is None:
        sig = tuple(numba.typeof(a) for a in args)
        kern.compile(sig)
        compiled = kern.overloads[sig]
        address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        kept = [a for a in args if isinstance(_kind(a), int)]   # so that no other object takes their id
        found = _addresses[key] = (address, kept)
    return found[0]


@intrinsic
def call_at(typingctx, address, args):
    """kern(*args) where address = address_of(kern, args); returns nothing."""
    if not isinstance(address, types.Integer) or not isinstance(args, types.BaseTuple):
        return None

    def codegen(context, builder, signature, llargs):
        fnty = context.call_conv.get_function_type(types.none, args.types)
        callee = builder.inttoptr(llargs[0], fnty.as_pointer())
        values = [builder.extract_value(llargs[1], i) for i in range(len(args.types))]
        status, _ = context.call_conv.call_function(builder, callee, types.none, args.types, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.none(address, args), codegen
