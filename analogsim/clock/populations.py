"""Device populations of a converted model: the analog layers on one device model.

A population is the unit of fault accounting (expected and counted failures) and of
update skipping: after each real state update it knows the largest equivalent age it can
reach before any conductance may have moved by more than the clock's tolerance
(:meth:`DeviceModel.change_bound`, docs/clock.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from analogsim.devices.age import AgeKey, DeviceTime
from analogsim.devices.model import DeviceModel
from analogsim.mapping.analog_model import AnalogModel, inner_layer, weight_count

__all__ = ["Population", "populations"]


@dataclass
class Population:
    """The analog layers on one device model (one population for faults and skipping)."""

    device: DeviceModel
    key: AgeKey
    layers: list[tuple[str, nn.Module]]
    n_devices: int
    static_fraction: float
    te_upd: float = 0.0
    time_upd: DeviceTime | None = None
    T_upd: float | None = None
    limit: float = 0.0
    onsets_upd: float = 0.0
    faults: int | None = None

    @property
    def has_faults(self) -> bool:
        f = self.device.faults
        return f.static or f.dynamic

    def expected_onsets(self, t_eq: float) -> float:
        """Expected devices failed by onset at fault age ``t_eq``."""
        healthy = self.n_devices * (1.0 - self.static_fraction)
        return healthy * self.device.faults.onset_probability(t_eq)

    def expected_faults(self, t_eq: float) -> float:
        return self.n_devices * self.static_fraction + self.expected_onsets(t_eq)

    def set_limit(self, tolerance: float) -> None:
        """Largest equivalent age reachable from the last update without exceeding the
        tolerance at the same read temperature (bisection on the monotone bound), for a
        chip whose drift and held ages are equal (at the reference temperature); otherwise
        :meth:`needs_update` evaluates the bound directly."""
        dev = self.device
        t1 = self.te_upd
        if not dev.time_dependent():
            self.limit = math.inf
            return
        if tolerance == 0.0:
            self.limit = t1
            return

        T = self.T_upd

        def bound(t2: float) -> float:
            return dev.change_bound(t1, t2, T, T)

        step = max(t1, 1.0)
        hi = t1 + step
        for _ in range(200):
            if bound(hi) > tolerance:
                break
            step *= 2.0
            hi = t1 + step
        else:
            self.limit = math.inf
            return
        lo = t1
        for _ in range(60):
            if hi - lo <= 1e-4 * (hi - t1):  # the step to the limit, to 1e-4 relative
                break
            mid = 0.5 * (lo + hi)
            if bound(mid) > tolerance:
                hi = mid
            else:
                lo = mid
        self.limit = lo

    def needs_update(self, te: DeviceTime | float, T: float, tolerance: float) -> bool:
        """True when the state at ages ``te`` read at ``T`` may differ from the last
        update's by more than ``tolerance`` (a fraction of g_max)."""
        dev = self.device
        now = te if isinstance(te, DeviceTime) else DeviceTime.same(te)
        upd = self.time_upd if self.time_upd is not None else DeviceTime.same(self.te_upd)
        if self.T_upd != T and dev.temperature.affects_conduction:
            return dev.change_bound(upd, now, self.T_upd, T) > tolerance
        same_clock = upd.drift_s == upd.noise_s and now.drift_s == now.noise_s
        if same_clock:
            return now.drift_s > self.limit
        return dev.change_bound(upd, now, T, T) > tolerance


def populations(am: AnalogModel) -> list[Population]:
    """One :class:`Population` per device model of ``am``'s analog layers, in layer order."""
    groups: dict[int, Population] = {}
    for name, layer in am.analog_layers():
        dev = inner_layer(layer).device_model
        g = groups.get(id(dev))
        if g is None:
            f = dev.faults
            static = f.stuck_at_gmin_rate + f.stuck_at_gmax_rate + f.outlier_rate
            key = dev.temperature.age_key
            g = groups[id(dev)] = Population(dev, key, [], 0, min(1.0, static))
        g.layers.append((name, layer))
        g.n_devices += 2 * weight_count(layer)
    return list(groups.values())
