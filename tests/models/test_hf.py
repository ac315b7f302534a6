"""Models that are not built in: local folders and names that cannot be loaded."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, T5Config
from typer.testing import CliRunner

from analogsim.cli import app
from analogsim.errors import ConfigError
from analogsim.models import builtin_models, load_model
from analogsim.models.hf import is_causal_config, model_kind_of
from analogsim.models.quality import quality_metric
from analogsim.models.tiny_gpt2 import train_tokenizer
from tests.models.conftest import save_tiny_seq2seq


def test_builtin_names():
    assert builtin_models() == ["digits-mlp", "minilm", "smollm2", "tiny-gpt2"]


@pytest.mark.parametrize(
    "name", ["no-such-model-xyz", "someone/no-such-model", "not a model!!", ""]
)
def test_unknown_name_names_the_model_and_the_builtins(name, hub_offline):
    with pytest.raises(ConfigError) as err:
        load_model(name)
    text = str(err.value)
    assert f"'{name}'" in text and "digits-mlp, minilm, smollm2, tiny-gpt2" in text
    assert "not a built-in" in text and "could not be loaded" in text


def test_missing_local_folder_fails_fast():
    with pytest.raises(
        ConfigError, match=r"no such folder.*digits-mlp, minilm, smollm2, tiny-gpt2"
    ):
        load_model("./no/such/model/folder")


def test_causal_detection():
    assert is_causal_config(GPT2Config())
    assert is_causal_config(LlamaConfig())
    assert not is_causal_config(BertConfig())
    assert not is_causal_config(BertConfig(architectures=["BertForMaskedLM"]))
    assert is_causal_config(BertConfig(architectures=["BertLMHeadModel"]))


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def test_local_causal_lm_folder(tmp_path, no_network):
    config = GPT2Config(vocab_size=300, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    model = _seeded(lambda: GPT2LMHeadModel(config))
    model.save_pretrained(tmp_path)
    train_tokenizer("A small text for a small tokenizer. " * 50, 300).save_pretrained(tmp_path)
    lm = load_model(str(tmp_path), progress=False)
    assert lm.kind == "causal-lm" and lm.name == str(tmp_path)
    assert not lm.model.training
    assert torch.equal(lm.model.lm_head.weight, model.lm_head.weight)
    assert isinstance(lm.data["heldout_text"], str) and lm.data["heldout_ids"].dim() == 1
    assert lm.tokenizer.decode(lm.data["heldout_ids"][:50]) == lm.tokenizer.decode(
        lm.tokenizer(lm.data["heldout_text"][:400])["input_ids"][:50]
    )


def test_local_encoder_folder_without_tokenizer(tmp_path, no_network):
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    _seeded(lambda: BertModel(config)).save_pretrained(tmp_path)
    lm = load_model(str(tmp_path), progress=False)
    assert lm.kind == "encoder" and lm.tokenizer is None
    assert "tokenizer_error" in lm.info
    assert isinstance(lm.data, list) and len(lm.data) == 48


# ------------------------------------------------------------------ encoder-decoder models
@pytest.fixture(scope="module")
def seq2seq_folders(tmp_path_factory):
    """Tiny random T5 and BART folders (LM head, bare, encoder-only)."""
    root = tmp_path_factory.mktemp("seq2seq")
    out = {}
    for key, family, head in [
        ("t5", "t5", True),
        ("bart", "bart", True),
        ("t5-bare", "t5", False),
        ("t5-encoder", "t5-encoder", True),
    ]:
        save_tiny_seq2seq(family, root / key, head=head)
        out[key] = root / key
    return out


@pytest.mark.parametrize("key", ["t5", "bart"])
def test_encoder_decoder_loads_with_its_lm_head(seq2seq_folders, key, no_network):
    lm = load_model(str(seq2seq_folders[key]), progress=False)
    assert lm.kind == "seq2seq-lm"
    assert type(lm.model).__name__.endswith("ForConditionalGeneration")
    assert lm.data["heldout_ids"].dim() == 1
    q = quality_metric(lm)
    ppl = q.score(lm.model)
    assert q.name == "perplexity" and not q.higher_is_better
    assert 1.0 < ppl < float("inf")


def test_encoder_only_checkpoint_is_an_encoder(seq2seq_folders, no_network):
    lm = load_model(str(seq2seq_folders["t5-encoder"]), progress=False)
    assert lm.kind == "encoder" and type(lm.model).__name__ == "T5EncoderModel"
    assert quality_metric(lm).score(lm.model) == pytest.approx(1.0)


def test_encoder_decoder_without_lm_head_is_refused(seq2seq_folders, no_network):
    with pytest.raises(ConfigError, match=r"encoder-decoder \(t5.*T5Model.*ForConditionalGen"):
        load_model(str(seq2seq_folders["t5-bare"]), progress=False)


def test_model_kind_of_configs():
    assert model_kind_of(GPT2Config())[0] == "causal-lm"
    assert model_kind_of(BertConfig())[0] == "encoder"
    assert model_kind_of(T5Config())[0] == "seq2seq-lm"
    assert model_kind_of(T5Config(architectures=["T5EncoderModel"]))[0] == "encoder"
    with pytest.raises(ConfigError, match="without a language-model head"):
        model_kind_of(T5Config(architectures=["T5Model"]), "x")


def _cli(*args: str):
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return res, " ".join(res.output.split())


def test_cli_roles_and_map_show_the_head_and_one_tied_weight(seq2seq_folders, no_network):
    folder = str(seq2seq_folders["t5"])
    res, _ = _cli("roles", folder, "--json")
    assert res.exit_code == 0, res.output
    layers = {x["name"]: x for x in json.loads(res.stdout)["layers"]}
    assert layers["lm_head"]["role"] == "head" and layers["lm_head"]["tied_to"] == "shared"
    res, _ = _cli("map", folder, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    group = ["shared", "encoder.embed_tokens", "decoder.embed_tokens", "lm_head"]
    assert data["totals"]["tied_groups"] == [group]
    by_name = {x["name"]: x for x in data["layers"]}
    assert [by_name[n]["tied_owner"] for n in group] == [None, "shared", "shared", "shared"]
    assert [by_name[n]["params_counted"] for n in group] == [4800, 0, 0, 0]
    assert data["totals"]["params"] == sum(x["params_counted"] for x in data["layers"])
    res, words = _cli("map", folder)
    assert res.exit_code == 0, res.output
    head = next(line for line in res.stdout.splitlines() if " lm_head " in line)
    assert re.search(r"lm_head\W+head\W+analog\W+pcm\W+1\W+tied to shared\W", head)
    assert "tied (one weight, counted once under shared): shared = encoder.embed_tokens" in words


@pytest.mark.parametrize("key", ["t5", "bart"])
def test_cli_eval_scores_encoder_decoder_models(seq2seq_folders, key, tmp_path, no_network):
    out = tmp_path / "run"
    res, words = _cli(
        "eval", str(seq2seq_folders[key]), "--mapping", "digital_attention_analog_mlp",
        "--times", "1h", "--seeds", "1", "--out", str(out), "--json",
    )  # fmt: skip
    if isinstance(res.exception, AttributeError):
        raise res.exception
    assert res.exit_code == 0, words
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["metric"] for r in rows} == {"perplexity"}
    assert all(1.0 < float(r["value"]) < float("inf") for r in rows)


def test_cli_eval_refuses_an_encoder_decoder_without_head(seq2seq_folders, tmp_path):
    folder = str(seq2seq_folders["t5-bare"])
    args = ["eval", folder, "--times", "1h", "--seeds", "1", "--out", str(tmp_path / "r")]
    code = "from analogsim.cli import main; main()"
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "without a language-model head" in " ".join(res.stderr.split())


def test_unreachable_hub_reads_the_local_cache_only_and_says_so(monkeypatch):
    """Offline, a hub name is looked up in the local cache at once (no retries) and the
    error says the hub was not reachable."""
    from analogsim.models import hf

    asked: list[dict] = []

    def fake_config(source, **kwargs):
        asked.append(kwargs)
        raise OSError("not in the cache")

    monkeypatch.setattr(hf, "hub_reachable", lambda: False)
    monkeypatch.setattr(hf.AutoConfig, "from_pretrained", fake_config)
    with pytest.raises(ConfigError, match="not reachable from this machine"):
        hf.load_hf_model("someorg/somemodel", progress=False)
    assert asked == [{"local_files_only": True}]


def test_hub_probe_is_false_when_the_host_refuses(monkeypatch):
    import socket

    import huggingface_hub.constants

    from analogsim.models import hf

    def refuse(*args, **kwargs):
        raise OSError("no route")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    hf.hub_reachable.cache_clear()
    try:
        assert hf.hub_reachable() is False
    finally:
        hf.hub_reachable.cache_clear()
