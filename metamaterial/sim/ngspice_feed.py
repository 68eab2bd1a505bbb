"""The compiled callback through which ngspice reads the ``external`` sources of a sweep netlist (``sim.ngspice``).

ngspice asks for every external source at every matrix load (``GetVSRCData`` / ``GetISRCData``); a Python callback
would cost a Python call per source per load. This one is compiled by numba and kept in numba's cache on disk, so a
new process loads it (a few tens of ms) instead of compiling it (about 0.9 s of CPU), which every new training
process of a sweep used to pay.

The callback reads its layout from a header of six int64 owned by ``sim.ngspice``: the address of the values, the
numbers of edges, inputs, clamps and copies, and a flag it sets when ngspice asks for a name outside that layout.
The header lives at a different address in every process, so the compiled (and cached) code does not hold the
address: it names the symbol ``HEADER_SYMBOL``, which ``callback_address`` binds to this process's header before
it loads or compiles the code. This module imports numba: ``sim.ngspice`` imports it on first use of the sweep.
"""

from __future__ import annotations

from llvmlite import binding, ir
from numba import cfunc, types
from numba.extending import intrinsic

from .. import kernelcache

kernelcache.refresh()  # before numba can load this module's cached code

#: the process-wide symbol the compiled callback reads its header through
HEADER_SYMBOL = "metamaterial_ngspice_feed_header"
HEADER_LENGTH = 6
SIGNATURE = types.int32(types.CPointer(types.float64), types.float64, types.CPointer(types.uint8), types.int32,
                        types.voidptr)

_compiled: dict = {"callback": None}


@intrinsic
def _header(typingctx):
    """The header (``HEADER_SYMBOL``, int64 [6]) as a pointer: an external global, resolved when the code loads."""
    def codegen(context, builder, signature, args):
        module = builder.module
        gv = module.globals.get(HEADER_SYMBOL)
        if gv is None:
            gv = ir.GlobalVariable(module, ir.ArrayType(ir.IntType(64), HEADER_LENGTH), HEADER_SYMBOL)
            gv.linkage = "external"
        return builder.bitcast(gv, context.get_value_type(types.CPointer(types.int64)))
    return types.CPointer(types.int64)(), codegen


@intrinsic
def _as_float_pointer(typingctx, address):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.float64)))
    return types.CPointer(types.float64)(types.int64), codegen


def _external_source(out, _time, name, _ident, _user):
    """``GetVSRCData``/``GetISRCData``: write the value of source ``name`` (``ig{e}``, ``vi{k}[_{b}]``,
    ``ic{k}[_{b}]``, any case) to ``out[0]``: gates first, then inputs and clamp currents row by row."""
    head = _header()
    values = _as_float_pointer(head[0])
    kind0, kind1 = name[0] | 32, name[1] | 32
    k, b, i, seen = 0, 0, 2, False
    while name[i] >= 48 and name[i] <= 57:
        k = 10 * k + (name[i] - 48)
        i += 1
    if name[i] == 95:  # "_": the copy of the batch
        i += 1
        while name[i] >= 48 and name[i] <= 57:
            b = 10 * b + (name[i] - 48)
            i += 1
            seen = True
    n_edges, n_in, n_cl, batch = head[1], head[2], head[3], head[4]
    position = -1
    per_copy = name[i] == 0 and seen == (batch > 1) and b < batch  # copies carry "_b" when B > 1
    if kind0 == 105 and kind1 == 103 and name[i] == 0 and not seen and k < n_edges:  # "ig": shared gates
        position = k
    elif per_copy and kind0 == 118 and kind1 == 105 and k < n_in:  # "vi"
        position = n_edges + b * n_in + k
    elif per_copy and kind0 == 105 and kind1 == 99 and k < n_cl:  # "ic"
        position = n_edges + batch * n_in + b * n_cl + k
    if position < 0:
        head[5] = 1
        out[0] = 0.0
    else:
        out[0] = values[position]
    return 0


def callback_address(header: int) -> int:
    """Address of the compiled callback reading the header at address ``header`` (int64 [6]); loaded from numba's
    cache, or compiled and cached, on the first call of a process. A process has one header (later calls return
    the callback bound to the first)."""
    if _compiled["callback"] is None:
        binding.add_symbol(HEADER_SYMBOL, header)
        _compiled["callback"] = cfunc(SIGNATURE, nopython=True, cache=True)(_external_source)
    return _compiled["callback"].address


__all__ = ["HEADER_SYMBOL", "HEADER_LENGTH", "SIGNATURE", "callback_address"]
