"""Embedding tables stored in analog memory: a lookup reads the device conductances."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.devices import DeviceModel
from analogsim.tiles.config import TileConfig
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
        self.kind = "embedding"

    @property
    def device_model(self) -> DeviceModel:
        return self._layer.device_model

    def program(self, seed: int) -> AnalogEmbedding:
        self._layer.program(seed)
        return self

    def set_state(self, time_s: float, temperature_K: float | None) -> None:
        self._layer.set_state(time_s, temperature_K)

    def state_bytes(self) -> int:
        return self._layer.state_bytes()

    def forward(self, ids: Tensor) -> Tensor:
        m = self.digital
        return F.embedding(
            ids,
            self._layer.w_eff,
            m.padding_idx,
            m.max_norm,
            m.norm_type,
            m.scale_grad_by_freq,
            m.sparse,
        )
