"""The fused tile epilogue as a Triton kernel (GPU; the same numbers as the CPU kernel).

One program per ``(BLOCK_M, BLOCK_N)`` block of the output reads the ``T`` tile products of
its block, adds the output (and read-) noise generated in registers, rounds to ADC codes,
clips, sums the tiles and applies the DAC scale, the per-output scale and the bias, then
writes the block once: the whole of :mod:`analogsim.tiles.epilogue`'s formula, with the
same Philox4x32-10 counters and Box-Muller pairing, so a call gives the CPU kernel's normals
up to float rounding of ``log`` and ``sin``/``cos``. The key is read from device memory (a
one-element int64 tensor drawn from the layer's noise stream), so nothing waits on the host.

Triton is optional (``triton`` ships with CUDA builds of torch); :func:`available` says
whether it imports. ``TRITON_INTERPRET=1`` runs the kernel on the CPU in Triton's
interpreter (how the tests check it on machines without a GPU).
"""

from __future__ import annotations

import torch
from torch import Tensor

try:  # optional: CPU-only installs may lack triton
    import triton
    import triton.language as tl

    _IMPORT_ERROR: str | None = None
except Exception as exc:  # pragma: no cover - depends on the install
    triton = None
    tl = None
    _IMPORT_ERROR = str(exc)


def available() -> bool:
    """True when triton imports (a CUDA device, or ``TRITON_INTERPRET=1``, runs it)."""
    return triton is not None


if triton is not None:

    @triton.jit
    def _rint(v):
        """Round half to even (torch.round), from floor: exact for |v| < 2^23."""
        f = tl.floor(v)
        d = v - f
        even = (f - 2.0 * tl.floor(f * 0.5)) == 0.0
        up = (d > 0.5) | ((d == 0.5) & (~even))
        return tl.where(up, f + 1.0, f)

    @triton.jit
    def _epilogue_kernel(
        parts_ptr,
        var_ptr,
        out_ptr,
        alpha_ptr,
        ostep_ptr,
        bias_ptr,
        key_ptr,
        T,
        M,
        N,
        pscale,
        onoise2,
        vscale,
        inv_step,
        yscale,
        lo,
        hi,
        HAS_VAR: tl.constexpr,
        HAS_ALPHA: tl.constexpr,
        HAS_STEP: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        DO_ROUND: tl.constexpr,
        NOISY: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BM,)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,)
        mask = (rm[:, None] < M) & (rn[None, :] < N)  # (BM, BN)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        c0 = ((rn // 64) * 16 + rn % 16).to(tl.uint32)  # (BN,) Philox block in the row
        j = (rn % 64) // 16  # (BN,) word of the block
        first = j < 2
        use_cos = (j % 2) == 0
        zero = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.uint32)
        if NOISY:
            key = tl.load(key_ptr)  # int64, the call's key
        for t in range(T):
            row = t * M + rm  # (BM,)
            off = row.to(tl.int64)[:, None] * N + rn[None, :]  # (BM, BN)
            p = tl.load(parts_ptr + off, mask=mask, other=0.0)
            v = p * pscale
            if NOISY:
                c0b = zero + c0[None, :]
                c1b = zero + row.to(tl.uint32)[:, None]
                w0, w1, w2, w3 = tl.philox(key, c0b, c1b, zero, zero)
                wu = tl.where(first[None, :], w0, w2)
                wa = tl.where(first[None, :], w1, w3)
                u1 = (wu.to(tl.float32) + 1.0) * 2.3283064365386963e-10
                theta = 6.283185307179586 * (wa.to(tl.float32) * 2.3283064365386963e-10)
                r = tl.sqrt(-2.0 * tl.log(u1))
                z = tl.where(use_cos[None, :], r * tl.cos(theta), r * tl.sin(theta))
                if HAS_VAR:
                    var = tl.load(var_ptr + off, mask=mask, other=0.0).to(tl.float32)
                    sd = tl.sqrt(onoise2 + vscale * var) * inv_step
                else:
                    sd = tl.sqrt(onoise2) * inv_step
                v = v + sd * z
            if DO_ROUND:
                v = _rint(v)
            v = tl.minimum(tl.maximum(v, lo), hi)
            acc += v
        scale = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32) + yscale
        if HAS_ALPHA:
            a = tl.load(alpha_ptr + rm, mask=rm < M, other=0.0)
            scale = scale * a[:, None]
        if HAS_STEP:
            g = tl.load(ostep_ptr + rn, mask=rn < N, other=0.0)
            scale = scale * g[None, :]
        y = acc * scale
        if HAS_BIAS:
            b = tl.load(bias_ptr + rn, mask=rn < N, other=0.0)
            y = y + b[None, :]
        out_off = rm.to(tl.int64)[:, None] * N + rn[None, :]
        tl.store(out_ptr + out_off, y, mask=mask)


def epilogue_triton(
    parts: Tensor,
    out: Tensor,
    *,
    alpha: Tensor | None,
    out_step: Tensor | None,
    bias: Tensor | None,
    var: Tensor | None,
    pscale: float,
    out_noise: float,
    var_scale: float,
    step: float,
    yscale: float,
    clip: float,
    do_round: bool,
    key: Tensor | None,
    block_m: int = 32,
    block_n: int = 64,
) -> Tensor:
    """The fused epilogue on ``parts (T, M, N)`` into ``out (M, N)``; arguments as
    :func:`analogsim.tiles.epilogue.epilogue_cpu`, but ``key`` a one-element int64 tensor on
    the tensors' device (None: no noise)."""
    if triton is None:
        raise RuntimeError(f"triton is not available: {_IMPORT_ERROR}")
    t_, m, n = parts.shape
    noisy = key is not None and (out_noise > 0 or var is not None)
    dummy = parts  # any pointer for absent operands (never read: constexpr branches)
    big = float("inf")
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n))
    _epilogue_kernel[grid](
        parts,
        var if var is not None else dummy,
        out,
        alpha if alpha is not None else dummy,
        out_step if out_step is not None else dummy,
        bias if bias is not None else dummy,
        key if noisy else torch.zeros(1, dtype=torch.int64, device=parts.device),
        t_,
        m,
        n,
        float(pscale),
        float(out_noise) ** 2,
        float(var_scale),
        1.0 / float(step),
        float(yscale),
        -clip if clip > 0 else -big,
        clip if clip > 0 else big,
        HAS_VAR=var is not None,
        HAS_ALPHA=alpha is not None,
        HAS_STEP=out_step is not None,
        HAS_BIAS=bias is not None,
        DO_ROUND=bool(do_round),
        NOISY=noisy,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
    )
    return out


__all__ = ["available", "epilogue_triton"]
