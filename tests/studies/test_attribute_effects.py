"""Places of an attribution (``analogsim/studies/attribute_effects.py``)."""

import pytest

from analogsim.errors import ConfigError
from analogsim.studies.attribute_effects import places_of


def test_places_of_groups_layers():
    layers = [
        ("transformer.h.0.attn.c_attn", "attention"),
        ("transformer.h.0.mlp.c_fc", "mlp"),
        ("transformer.h.1.mlp.c_fc", "mlp"),
        ("lm_head", "head"),
    ]
    assert list(places_of(layers, "layer")) == [n for n, _ in layers]
    assert places_of(layers, "role") == {
        "attention": ["transformer.h.0.attn.c_attn"],
        "mlp": ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc"],
        "head": ["lm_head"],
    }
    assert places_of(layers, "block") == {
        "transformer.h.0": ["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc"],
        "transformer.h.1": ["transformer.h.1.mlp.c_fc"],
        "lm_head": ["lm_head"],
    }
    assert places_of(layers, "module")["transformer.h.*.mlp.c_fc"] == [
        "transformer.h.0.mlp.c_fc",
        "transformer.h.1.mlp.c_fc",
    ]
    with pytest.raises(ConfigError, match="grouping"):
        places_of(layers, "tile")
