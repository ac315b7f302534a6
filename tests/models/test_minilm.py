"""minilm: offline load, embeddings, agreement with sentence-transformers."""

from __future__ import annotations

import pytest
import torch

from analogsim.models import encode, load_model, minilm_path, minilm_sentences


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm", progress=False)


def test_package_ships_the_model_files():
    path = minilm_path()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (path / name).is_file()


def test_loads_without_network(no_network):
    lm = load_model("minilm", progress=False)
    assert lm.kind == "encoder" and lm.info["params"] == 22_713_216
    assert not lm.model.training
    assert type(lm.model).__name__ == "BertModel"


def test_sentences_are_a_fixed_few_dozen():
    sentences = minilm_sentences()
    assert len(sentences) == 48 and sentences == minilm_sentences()
    assert all(s[-1] in ".!?" and 6 <= len(s.split()) <= 30 for s in sentences)
    assert len(set(sentences)) == len(sentences)


def test_embedding_similarities(minilm):
    cat, kitten, market = encode(
        minilm.model,
        minilm.tokenizer,
        [
            "A cat sits on the mat.",
            "A kitten is sitting on a rug.",
            "Stock prices fell sharply today.",
        ],
    )
    self_cos = encode(minilm.model, minilm.tokenizer, ["A cat sits on the mat."])[0] @ cat
    assert float(self_cos) == pytest.approx(1.0, abs=1e-5)
    assert float(cat @ kitten) > float(cat @ market) + 0.3


def test_matches_sentence_transformers(minilm, no_network):
    st = pytest.importorskip("sentence_transformers")
    sentences = minilm.data[:8]
    ref = st.SentenceTransformer(str(minilm_path()), device="cpu").encode(
        sentences, convert_to_tensor=True
    )
    ours = encode(minilm.model, minilm.tokenizer, sentences)
    assert torch.allclose(ours, ref.float().cpu(), atol=1e-5)
