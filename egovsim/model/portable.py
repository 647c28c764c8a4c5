"""exp, expm1 and log that give the same bits on every machine: the model's only transcendental functions.

numpy's float64 exp, expm1, log, log1p and power are chosen at run time by the CPU: on a processor with AVX-512
numpy computes them with its own vectorised routines (SVML for some), elsewhere with the C library's (libm). The
two differ in the last bit for some 5% of arguments (measured here: exp 18,616 of 400,000, expm1 22,014, log 416,
with NPY_DISABLE_CPU_FEATURES turning AVX-512 off), and a model compounds such differences into other events: 32 of
the 34 runs of the shipped scenarios (scale 0.003, seeds 1 and 2) came out different on the same machine without
AVX-512. So did the C library's own functions, which differ between Linux, macOS and Windows.

These are the Sun fdlibm 5.3 algorithms (e_exp.c, s_expm1.c, e_log.c; Copyright (C) 1993 by Sun Microsystems,
"Permission to use, copy, modify, and distribute this software is freely granted, provided that this notice is
preserved"), written out with IEEE double additions, multiplications and divisions only, which every machine
rounds alike: numba emits no fused multiply-add without fastmath, and the bit moves are exact. Error below 1 ulp
(tests/test_portable.py checks each against Python's decimal module, correctly rounded, and their special values).

`exp`, `expm1` and `log` take floats and float64 arrays of any shape; `exp_scalar`, `expm1_scalar` and
`log_scalar` are the compiled functions, for the compiled loops of kernels.py. What is left to the machine: numpy's
random generator (its beta, exponential and geometric draws call the C library's log, exp and log1p, in rare
branches or, for the geometric, once per draw's waiting time: a last-bit difference changes a draw only when it
falls within one ulp of an integer).
"""

from __future__ import annotations

import struct

import numpy as np
from numba import types
from numba.extending import intrinsic

from egovsim.model.compiled import jit

inlined = jit(inline="always")  # the scalar functions, compiled into their callers


def _float_with_high_word(high: int) -> float:
    """The double whose upper 32 bits are `high` and lower 32 bits zero: fdlibm compares high words, |x| >= this."""
    return struct.unpack("<d", struct.pack("<Q", high << 32))[0]


def _bitcast(source, target):
    """A compiled move of a value's 64 bits from one type to the other (no arithmetic)."""

    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_bits = _bitcast(types.float64, types.int64)  # a double's bits as an int64
_from_bits = _bitcast(types.int64, types.float64)  # the double with an int64's bits


@inlined
def _scale(y, k):
    """y x 2^k for an integer k, exact where the result is a normal double (fdlibm adds k to y's exponent); one
    rounding into the subnormals (a product by a power of two: IEEE rounds it alike everywhere)."""
    if -1021 <= k <= 1023:
        return y * _from_bits(np.int64(k + 1023) << 52)
    if k > 1023:  # y < 2 here, and 2^1024 is not a double
        return (y * 2.0) * _from_bits(np.int64(k - 1 + 1023) << 52)
    return (y * _from_bits(np.int64(k + 1000 + 1023) << 52)) * 9.33263618503218878990e-302  # 2^-1000


_LN2_HI, _LN2_LO, _INV_LN2 = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 1.44269504088896338700e00

# ---- exp (fdlibm e_exp.c) ------------------------------------------------------------------------------------------

_EXP_OVER, _EXP_UNDER = 7.09782712893383973096e02, -7.45133219101941108420e02
_HALF_LN2 = _float_with_high_word(0x3FD62E43)  # |x| > 0.5 ln2: fdlibm's hx > 0x3fd62e42
_ONE_HALF_LN2 = _float_with_high_word(0x3FF0A2B2)  # |x| < 1.5 ln2
_EXP_TINY = _float_with_high_word(0x3E300000)  # |x| < 2^-28
_P1, _P2, _P3 = 1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05
_P4, _P5 = -1.65339022054652515390e-06, 4.13813679705723846039e-08


@inlined
def _reduce(x, ax):
    """fdlibm's argument reduction of exp and expm1 for |x| >= ln2 / 2: x = k ln2 + (hi - lo), ln2 in two parts."""
    if ax < _ONE_HALF_LN2:
        if x > 0:
            return x - _LN2_HI, _LN2_LO, 1
        return x + _LN2_HI, -_LN2_LO, -1
    k = int(_INV_LN2 * x + (0.5 if x > 0 else -0.5))
    t = float(k)
    return x - t * _LN2_HI, t * _LN2_LO, k


@inlined
def exp_scalar(x: float) -> float:
    if x != x:
        return x
    if x > _EXP_OVER:
        return np.inf
    if x < _EXP_UNDER:
        return 0.0
    ax = abs(x)
    k = 0
    hi = lo = 0.0
    if ax >= _HALF_LN2:
        hi, lo, k = _reduce(x, ax)
        x = hi - lo
    elif ax < _EXP_TINY:
        return 1.0 + x
    t = x * x
    c = x - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    if k == 0:
        return 1.0 - ((x * c) / (c - 2.0) - x)
    y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi)
    return _scale(y, k)


# ---- expm1 (fdlibm s_expm1.c) --------------------------------------------------------------------------------------

_EXPM1_BIG = _float_with_high_word(0x4043687A)  # |x| >= 56 ln2
_EXPM1_TINY = _float_with_high_word(0x3C900000)  # |x| < 2^-54
_Q1, _Q2, _Q3 = -3.33333333333331316428e-02, 1.58730158725481460165e-03, -7.93650757867487942473e-05
_Q4, _Q5 = 4.00821782732936239552e-06, -2.01099218183624371326e-07


@inlined
def expm1_scalar(x: float) -> float:
    if x != x:
        return x
    ax = abs(x)
    if ax >= _EXPM1_BIG:
        if x < 0:
            return -1.0
        if x > _EXP_OVER:
            return np.inf
    k = 0
    c = 0.0
    if ax >= _HALF_LN2:
        hi, lo, k = _reduce(x, ax)
        x = hi - lo
        c = (hi - x) - lo
    elif ax < _EXPM1_TINY:
        return x
    hfx = 0.5 * x
    hxs = x * hfx
    r1 = 1.0 + hxs * (_Q1 + hxs * (_Q2 + hxs * (_Q3 + hxs * (_Q4 + hxs * _Q5))))
    t = 3.0 - r1 * hfx
    e = hxs * ((r1 - t) / (6.0 - x * t))
    if k == 0:
        return x - (x * e - hxs)
    e = x * (e - c) - c
    e -= hxs
    if k == -1:
        return 0.5 * (x - e) - 0.5
    if k == 1:
        if x < -0.25:
            return -2.0 * (e - (x + 0.5))
        return 1.0 + 2.0 * (x - e)
    if k <= -2 or k > 56:  # exp(x) - 1 is exp(x) to working precision
        y = 1.0 - (e - x)
        return _scale(y, k) - 1.0
    if k < 20:
        t = 1.0 - _from_bits(np.int64(1023 - k) << 52)  # 1 - 2^-k
        y = t - (e - x)
        return _scale(y, k)
    t = _from_bits(np.int64(1023 - k) << 52)  # 2^-k
    y = x - (e + t)
    y += 1.0
    return _scale(y, k)


# ---- log (fdlibm e_log.c) ------------------------------------------------------------------------------------------

_TWO54 = 1.80143985094819840000e16
_LG1, _LG2, _LG3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
_LG4, _LG5, _LG6, _LG7 = (
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)


@inlined
def log_scalar(x: float) -> float:
    bits = _bits(x)
    hx = np.int64(bits >> 32)  # the high word, signed as in fdlibm
    lx = bits & 0xFFFFFFFF
    k = 0
    if hx < 0x00100000:  # x < 2^-1022
        if ((hx & 0x7FFFFFFF) | lx) == 0:
            return -np.inf
        if hx < 0:
            return np.nan
        k -= 54
        x *= _TWO54
        bits = _bits(x)
        hx = np.int64(bits >> 32)
    if hx >= 0x7FF00000:
        return x + x
    k += (hx >> 20) - 1023
    hx &= 0x000FFFFF
    i = (hx + 0x95F64) & 0x100000
    x = _from_bits(((hx | (i ^ 0x3FF00000)) << 32) | (_bits(x) & 0xFFFFFFFF))  # x or x / 2, near 1
    k += i >> 20
    f = x - 1.0
    if (0x000FFFFF & (2 + hx)) < 3:  # -2^-20 <= f < 2^-20
        if f == 0.0:
            if k == 0:
                return 0.0
            dk = float(k)
            return dk * _LN2_HI + dk * _LN2_LO
        r = f * f * (0.5 - 0.33333333333333333 * f)
        if k == 0:
            return f - r
        dk = float(k)
        return dk * _LN2_HI - ((r - dk * _LN2_LO) - f)
    s = f / (2.0 + f)
    dk = float(k)
    z = s * s
    i = hx - 0x6147A
    w = z * z
    j = 0x6B851 - hx
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    i |= j
    r = t2 + t1
    if i > 0:
        hfsq = 0.5 * f * f
        if k == 0:
            return f - (hfsq - s * (hfsq + r))
        return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    if k == 0:
        return f - s * (f - r)
    return dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)


# ---- for numpy arrays and Python floats -----------------------------------------------------------------------------


_EXP, _EXPM1, _LOG = 0, 1, 2


@jit
def _elementwise(x, function):
    """exp, expm1 or log (`function`) of every element of a contiguous float64 array."""
    out = np.empty_like(x)
    for i in range(x.size):
        v = x.flat[i]
        if function == _EXP:
            out.flat[i] = exp_scalar(v)
        elif function == _EXPM1:
            out.flat[i] = expm1_scalar(v)
        else:
            out.flat[i] = log_scalar(v)
    return out


def _on(scalar, function: int):
    """A function of floats and of float64 arrays of any shape (numba.vectorize would make a ufunc, but loading one
    costs about 0.3 s at import)."""

    def f(x):
        if isinstance(x, np.ndarray) and x.ndim:
            return _elementwise(np.ascontiguousarray(x, dtype=np.float64), function)
        return scalar(float(x))

    return f


exp = _on(exp_scalar, _EXP)
expm1 = _on(expm1_scalar, _EXPM1)
log = _on(log_scalar, _LOG)


def power(x: float, y: float) -> float:
    """x^y for x >= 0, as exp(y log x) (within a few ulp; the same bits everywhere); 0^0 = 1 as in C's pow."""
    if y == 0.0:
        return 1.0
    return float(exp(y * log(x)))
