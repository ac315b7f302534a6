"""Embedding tables stored in analog memory, and the analog layers of a model."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from analogsim.devices import DeviceModel
from analogsim.devices.age import DeviceTime
from analogsim.tiles.config import TileConfig
from analogsim.tiles.kinds import forward_with
from analogsim.tiles.layer import AnalogLayer


class AnalogEmbedding(nn.Module):
    """An embedding table stored in analog memory: lookups read device conductances.

    The table is mapped like a weight matrix (rows = tokens); a lookup returns the
    row's effective weights at the current (t, T). No converters: a lookup is a read,
    not an MVM.
    """

    def __init__(self, module: nn.Embedding, device: DeviceModel, name: str = "") -> None:
        super().__init__()
        self.digital = module
        self.name = name
        # reuse the tile's state machinery on a Linear view of the table
        shim = nn.Linear(module.embedding_dim, module.num_embeddings, bias=False)
        shim.weight = module.weight
        self._layer = AnalogLayer(shim, device, TileConfig.ideal(), name)
        self._layer.inner = True
        self.kind = "embedding"

    @property
    def device_model(self) -> DeviceModel:
        return self._layer.device_model

    def program(self, seed: int, temperature_K: float | None = None) -> AnalogEmbedding:
        self._layer.program(seed, temperature_K)
        return self

    def set_state(self, time_s: float | DeviceTime, temperature_K: float | None) -> None:
        self._layer.set_state(time_s, temperature_K)

    def state_bytes(self) -> int:
        return self._layer.state_bytes()

    def forward(self, ids: Tensor) -> Tensor:
        return forward_with(self.digital, ids, self._layer.w_eff)  # (..., dim)


def analog_layers(
    model: nn.Module, *, embeddings: bool = True
) -> Iterator[tuple[str, AnalogLayer | AnalogEmbedding]]:
    """``(name, layer)`` of every analog-placed layer of ``model``, in module order.

    Every :class:`AnalogLayer`, and every :class:`AnalogEmbedding` unless ``embeddings`` is
    False. A layer a wrapper holds as part of itself (``layer.inner``: the table of an
    analog embedding, the shim of a training wrapper) is not a layer of its own.
    """
    kinds = (AnalogLayer, AnalogEmbedding) if embeddings else AnalogLayer
    for name, mod in model.named_modules():
        if isinstance(mod, kinds) and not getattr(mod, "inner", False):
            yield name, mod
