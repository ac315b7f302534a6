"""Device physics as pure, vectorised functions of tensors.

Nothing here knows about cards, tiles or models: each function takes conductances
(microsiemens, uS), times (seconds), temperatures (kelvin) and standard-normal draws
and returns tensors. The formulas and their sources are in each docstring and in
``docs/physics.md``.

Conventions
-----------
* ``g_rel = |g| / g_max`` is the conductance relative to the device's maximum.
* Times are *since programming finished*; the PCM fits add their own ``t0``.
* Random draws are passed in (``xi``) so that the caller decides how they are made
  (a seeded generator, regenerated from per-layer seeds, ...). Same draws, same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from analogsim.units import TEMPERATURE_RANGE_K

BOLTZMANN_EV_PER_K = 8.617333262e-5
"""Boltzmann constant in eV/K (CODATA 2018, exact by SI definition)."""

G_REL_FLOOR = 1e-7
"""Smallest relative conductance used inside logarithms (as aihwkit's ``_ZERO_CLIP``)."""


def inverse_temperature_gap(
    temperature_K: float | np.ndarray | Tensor, t_ref_K: float
) -> float | np.ndarray | Tensor:
    r""":math:`1/T - 1/T_{ref}`, 1/K: the one temperature term of every Arrhenius law here."""
    return 1.0 / temperature_K - 1.0 / t_ref_K


def arrhenius_exponent(
    temperature_K: float | np.ndarray | Tensor, t_ref_K: float, ea_eV: float | Tensor
) -> float | np.ndarray | Tensor:
    r"""Logarithm of :func:`arrhenius_factor`: :math:`-E_a/k_B\,(1/T - 1/T_{ref})`."""
    inv = inverse_temperature_gap(temperature_K, t_ref_K)
    if isinstance(ea_eV, Tensor) or isinstance(temperature_K, Tensor):
        return -torch.as_tensor(ea_eV) / BOLTZMANN_EV_PER_K * inv
    return -ea_eV / BOLTZMANN_EV_PER_K * inv


def arrhenius_factor(
    temperature_K: float | np.ndarray | Tensor, t_ref_K: float, ea_eV: float | Tensor
) -> float | np.ndarray | Tensor:
    r"""Arrhenius rate ratio :math:`k(T)/k(T_{ref}) = \exp(-E_a/k_B\,(1/T - 1/T_{ref}))`.

    Greater than 1 above the reference temperature when ``ea_eV > 0``; exactly 1 at the
    reference or when ``ea_eV == 0``. Used twice: as the speed-up of drift (time at T
    counts as ``factor * dt`` at ``T_ref``; Ielmini et al., APL 92, 193511, 2008) and as
    the change of conductance read at T (thermally activated conduction; Muneer et
    al. 2018 give about 0.33 eV for amorphous GST).

    Args:
        temperature_K: temperature, kelvin (> 0): a float, a numpy array (the profiles'
            quadrature nodes) or a tensor.
        t_ref_K: reference temperature, kelvin (> 0).
        ea_eV: activation energy, eV (>= 0); may be a tensor (per device).

    Returns:
        A float for floats, an array for an array, a tensor when either is a tensor.
    """
    exponent = arrhenius_exponent(temperature_K, t_ref_K, ea_eV)
    if isinstance(exponent, Tensor):
        return torch.exp(exponent)
    if isinstance(exponent, np.ndarray):
        return np.exp(exponent)
    return math.exp(exponent)


def arrhenius_exponent_per_eV(temperature_K: float, t_ref_K: float) -> float:
    r""":math:`(1/T - 1/T_{ref})/k_B`, 1/eV: the Arrhenius factor of a per-device energy
    ``ea`` is ``exp(-ea * this)`` (the form the device kernel folds into one exponential
    with drift; rounded differently from :func:`arrhenius_factor`, which divides ``ea``)."""
    return inverse_temperature_gap(temperature_K, t_ref_K) / BOLTZMANN_EV_PER_K


def relative_conductance(g_uS: Tensor, g_max_uS: float) -> Tensor:
    """``max(|g| / g_max, 1e-7)``: the argument of every fitted statistic."""
    return (g_uS.abs() / g_max_uS).clamp_(min=G_REL_FLOOR)


def polynomial(x: Tensor, coeffs: tuple[float, ...] | list[float]) -> Tensor:
    r""":math:`\sum_i c_i x^i` evaluated by Horner's rule."""
    out = torch.full_like(x, float(coeffs[-1]))
    for c in reversed(coeffs[:-1]):
        out.mul_(x).add_(float(c))
    return out


def programming_sigma(
    g_target_uS: Tensor,
    g_max_uS: float,
    coeffs_uS: tuple[float, ...] | list[float],
    g_max_ref_uS: float,
) -> Tensor:
    r"""Standard deviation of programming error, uS.

    :math:`\sigma_{prog} = (c_0 + c_1 g + c_2 g^2 + \dots)\, g_{max}/g_{max,ref}` with
    :math:`g = g_T/g_{max}`. For PCM, ``c = [0.26348, 1.9650, -1.1731]`` uS fitted at
    ``g_max_ref = 25`` uS (Nandakumar et al., ICECS 2019; as in aihwkit ``PCMLikeNoiseModel``).
    """
    return polynomial(g_target_uS / g_max_uS, coeffs_uS).mul_(g_max_uS / g_max_ref_uS)


def program(g_target_uS: Tensor, sigma_uS: Tensor, xi: Tensor) -> Tensor:
    """Programmed conductance ``max(0, g_T + sigma * xi)``, uS (no negative conductance)."""
    return torch.addcmul(g_target_uS, sigma_uS, xi).clamp_(min=0.0)


def drift_exponent(nu_mean: Tensor, nu_std: Tensor, xi: Tensor, scale: float = 1.0) -> Tensor:
    r"""Per-device drift exponent :math:`\nu = |\mu_\nu + \sigma_\nu \xi| \cdot s`.

    For PCM (Nandakumar 2019 fits as used by aihwkit), with :math:`g = g_T/g_{max}`:
    :math:`\mu_\nu = \mathrm{clip}(-0.0155\ln g + 0.0244, 0.049, 0.1)`,
    :math:`\sigma_\nu = \mathrm{clip}(-0.0125\ln g - 0.0059, 0.008, 0.045)`.
    The means and spreads are evaluated by the card's piecewise functions.
    """
    nu = torch.addcmul(nu_mean, nu_std, xi).abs_()
    if scale != 1.0:
        nu.mul_(scale)
    return nu


def drift_factor(nu: Tensor, t_s: float, t0_s: float) -> Tensor:
    r"""Power-law drift :math:`(t/t_0)^{-\nu}` with :math:`t = t_{inference} + t_0`.

    ``t_s`` is the (equivalent) time since programming finished; at ``t_s = 0`` the
    factor is exactly 1. Valid in the log-time regime that Kersting et al. (2021)
    bound from below; t0 = 20 s for the aihwkit PCM fit.
    """
    if t_s <= 0.0:
        return torch.ones_like(nu)
    log_ratio = math.log((t_s + t0_s) / t0_s)
    return torch.exp(nu * (-log_ratio))


def log_time_variance(t_s: float, t_offset_s: float, t_scale_s: float) -> float:
    r"""Variance clock of accumulated noise, :math:`v(t) = \ln((t + a)/b)`.

    For PCM 1/f read noise (aihwkit ``PCMLikeNoiseModel``):
    :math:`\sigma_{read} = Q_s\sqrt{\ln((t + t_{read})/(2 t_{read}))}` with
    :math:`t = t_{inference} + t_0`, i.e. ``a = t_read``, ``b = 2 t_read``. For RRAM
    relaxation we use ``a = b = tau`` so that ``v = ln(1 + t/tau)`` (an assumption, see
    docs/physics.md). Clamped at 0 from below.
    """
    return max(0.0, math.log((t_s + t_offset_s) / t_scale_s))


def read_noise_amplitude_pcm(g_prog_uS: Tensor, g_max_uS: float) -> Tensor:
    r"""PCM accumulated-read-noise amplitude :math:`Q_s`, relative.

    :math:`Q_s = \min(0.0088 / \max((|g_{prog}|/g_{max})^{0.65}, 10^{-3}), 0.2)`
    (aihwkit ``PCMLikeNoiseModel``, after Nandakumar 2019). Kept as a reference for
    tests; cards evaluate it through their piecewise description.
    """
    g_rel = g_prog_uS.abs() / g_max_uS
    return (0.0088 / g_rel.pow(0.65).clamp(min=1e-3)).clamp(max=0.2)


def quantize_symmetric(x: Tensor, step: float | Tensor, levels: int) -> Tensor:
    """Round ``x`` to the grid ``k * step``, ``|k| <= levels`` (out of place).

    A symmetric quantizer with ``2 * levels + 1`` levels, e.g. ``levels = 2**(bits-1) - 1``.
    """
    return torch.round(x / step).clamp_(-levels, levels).mul_(step)


def levels_for_bits(bits: int) -> int:
    """Positive levels of a signed symmetric ``bits``-bit converter: ``2**(bits-1) - 1``."""
    return 2 ** (bits - 1) - 1


# --------------------------------------------------------------------------------------
# temperature: the range the device physics is valid in, conduction and relaxation

# TEMPERATURE_RANGE_K (233 K to 398.15 K, -40 C to 125 C) is defined once, in analogsim.units
# (the ground layer); every temperature argument of the API and a card's monotonicity
# check use it.


def conduction_ea(g_rel: Tensor, ea_gmax_eV: float, slope_eV: float, ea_max_eV: float) -> Tensor:
    r"""Conduction activation energy of a state, eV:
    :math:`E_a(g) = \mathrm{clip}(E_{a,g_{max}} + s \ln(1/g), E_{a,g_{max}}, E_{a,max})`.

    Linear in :math:`\ln g` (equivalently in :math:`\ln R`): the measured relation of
    multilevel PCM, where the activation energy of conduction grows with the resistance of
    the amorphous state (Ielmini et al., IEDM 2007; Boybat et al., IEDM 2021) up to that of
    the fully amorphous phase, about 0.33 eV for GST (Muneer et al. 2018). ``g_rel`` is the
    target relative conductance (floored at 1e-7). Read-out monotonicity needs
    :math:`s\,(1/T_{prog} - 1/T)/k_B < 1`, checked on card load
    (:func:`max_monotone_slope_eV`).
    """
    return (
        g_rel.clamp(min=G_REL_FLOOR)
        .log()
        .mul_(-slope_eV)
        .add_(ea_gmax_eV)
        .clamp_(min=ea_gmax_eV, max=max(ea_max_eV, ea_gmax_eV))
    )


def max_monotone_slope_eV(
    t_lo_K: float = TEMPERATURE_RANGE_K[0], t_hi_K: float = TEMPERATURE_RANGE_K[1]
) -> float:
    r"""Largest slope ``s`` (eV per e-fold of conductance) of :func:`conduction_ea` for
    which the read conductance stays monotone in the target for every programming and read
    temperature in ``[t_lo, t_hi]``: :math:`s < k_B / (1/T_{lo} - 1/T_{hi})`.

    With ``E_a = E0 - s ln g``, ``ln G(T) = ln g + s ln g (1/T_prog - 1/T)/k_B + const``:
    the slope in ``ln g`` is ``1 - s (1/T_prog - 1/T)/k_B``, smallest for a chip
    programmed at ``t_lo`` and read at ``t_hi`` (0.0485 eV for 233-398.15 K).
    """
    return BOLTZMANN_EV_PER_K / (1.0 / t_lo_K - 1.0 / t_hi_K)


def relaxed_age(
    t_eq_s: float,
    dt_s: float,
    temperature_K: float,
    t_ref_K: float,
    tau0_s: float,
    t0_s: float,
) -> float:
    r"""Equivalent age at ``t_ref_K`` after ``dt_s`` more seconds at ``temperature_K``,
    by the demarcation-energy law of distributed activation energies (Ielmini, Lavizzari,
    Sharma, Lacaita, APL 92, 193511, 2008).

    Relaxation with a distribution of activation energies has, after time ``t`` at ``T``,
    relaxed all defects below the demarcation energy :math:`E_d = k_B T \ln(t/\tau_0)`.
    Two histories with the same :math:`E_d` are the same state, so with the glass age
    :math:`\theta = t_{eq} + t_0` (``t0`` the drift fit's time origin):

    .. math:: \ln(\theta'/\tau_0) = \frac{T}{T_{ref}}
              \ln\!\Big(\big(\theta/\tau_0\big)^{T_{ref}/T} + \Delta t/\tau_0\Big)

    (convert the age to the time at ``T`` with the same :math:`E_d`, add ``dt``, convert
    back): the closed form of :math:`d\theta/dt = (T/T_{ref})(\theta/\tau_0)^{1 - T_{ref}/T}`
    at constant ``T``. Exactly ``t_eq + dt`` at ``T = T_ref`` (returned without rounding).
    Evaluated in logarithms (``logaddexp``), so it neither overflows nor underflows.
    """
    if dt_s == 0.0:
        return t_eq_s
    if temperature_K == t_ref_K:
        return t_eq_s + dt_s
    r = t_ref_K / temperature_K
    lam = math.log((t_eq_s + t0_s) / tau0_s)  # ln(theta/tau0)
    x, y = lam * r, math.log(dt_s / tau0_s)
    hi = max(x, y)
    lam_new = (hi + math.log1p(math.exp(-abs(x - y)))) / r  # logaddexp(x, y) / r
    return max(t_eq_s, tau0_s * math.exp(lam_new) - t0_s)


def relaxation_rate(
    t_eq_s: float, temperature_K: float, t_ref_K: float, tau0_s: float, t0_s: float
) -> float:
    r""":math:`dt_{eq}/dt = (T/T_{ref})(\theta/\tau_0)^{1 - T_{ref}/T}`, ``theta = t_eq + t0``:
    equivalent seconds per second at ``temperature_K`` for a device of equivalent age
    ``t_eq_s`` (:func:`relaxed_age`); 1 at ``T_ref``."""
    if temperature_K == t_ref_K:
        return 1.0
    lam = math.log((t_eq_s + t0_s) / tau0_s)
    return temperature_K / t_ref_K * math.exp(lam * (1.0 - t_ref_K / temperature_K))
