"""Distillation (analogsim/train/distill.py and the ``distill`` method of the loop): the
loss falls, clipping bounds hold, learned input ranges move and deploy, LoRA trains only
its factors, the synthetic data is seeded and cached; and the language-model robustness
evaluation (analogsim/studies/robustness.py) on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.models.base import LoadedModel
from analogsim.models.tiny_gpt2 import train_tokenizer
from analogsim.studies import robustness as rob
from analogsim.tiles.embedding import analog_layers
from analogsim.train import TrainConfig, fit, install_hwa, load_base
from analogsim.train.distill import (
    DistillConfig,
    apply_input_ranges,
    clip_per_channel,
    install_input_ranges,
    synthetic_tokens,
)
from tests.conftest import analog_mapping, make_gpt2
from tests.train.conftest import fast_hwa

PCM_IO = dict(rows=512, dac_bits=8, adc_bits=8, adc_bound=10.0, out_noise=0.04, read_noise=0.0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALOGSIM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer("The quick brown fox jumps over the lazy dog.\n" * 50, 300, 64)


def _base(tok, sharpen: float = 8.0) -> LoadedModel:
    """A tiny GPT-2 with peaked logits (the teacher), its data from the training corpus."""
    net = make_gpt2(0, vocab=len(tok), n_positions=64, dropout=0.0, sharpen=sharpen)
    base, _ = load_base(LoadedModel("tiny", "causal-lm", net, tok, None, {}), progress=False)
    return base


def _cfg(**kw) -> TrainConfig:
    """Distillation at one deployment condition (1 h at 300 K, noise x3): the loss of
    successive steps is then comparable."""
    d = dict(tokens=512, seq_len=32, gen_batch=16)
    d.update(kw.pop("distill", {}))
    hwa = fast_hwa(noise_scale=3.0, t_min_s=3600.0, t_max_s=3600.0, temperature_max_K=300.0)
    return TrainConfig(method="distill", hwa=hwa, distill=DistillConfig(**d), **kw)


def _losses(res) -> list[float]:
    return [r["value"] for r in res.history if r["metric"] == "loss"]


def test_distill_loss_decreases(tok):
    res = fit(
        _base(tok),
        analog_mapping("pcm", PCM_IO),
        _cfg(steps=40, lr=5e-4, log_every=5),
        progress=False,
    )
    loss = _losses(res)
    assert len(loss) == 8 and all(math.isfinite(v) for v in loss)
    assert loss[-1] < 0.85 * loss[0], loss
    assert res.metrics["synthetic_tokens"] == 512
    assert res.metrics["train_tokens"] == 40 * 4 * 32


def test_synthetic_tokens_are_seeded_and_cached(tok, tmp_path):
    net = make_gpt2(0, vocab=len(tok), n_positions=64, sharpen=8.0)
    cfg = DistillConfig(tokens=200, seq_len=20, gen_batch=4)
    a = synthetic_tokens(net, len(tok), cfg, seed=0, progress=False)
    assert a.shape == (10, 20) and int(a.max()) < len(tok)
    files = list((tmp_path / "cache" / "synthetic").iterdir())
    assert len(files) == 1
    assert torch.equal(a, synthetic_tokens(net, len(tok), cfg, seed=0, cache=False, progress=False))
    b = synthetic_tokens(net, len(tok), cfg, seed=1, progress=False)
    assert not torch.equal(a, b)


def test_clipping_bounds_hold_per_channel():
    """Every row within +-k std of that row (before clipping); rows without outliers kept;
    GPT-2 Conv1D clipped along its output channels."""
    net = make_gpt2(0, vocab=50, n_positions=16)
    am = convert(net, analog_mapping("pcm"))
    layers = dict(analog_layers(am.model, embeddings=False))
    before = {n: la.matrix().detach().clone() for n, la in layers.items()}
    c_fc = layers["transformer.h.0.mlp.c_fc"]
    with torch.no_grad():
        c_fc.matrix()[3, 5] = 10.0  # an outlier in output channel 3
        before["transformer.h.0.mlp.c_fc"] = c_fc.matrix().detach().clone()
    clip_per_channel(am, 2.5)
    for n, la in layers.items():
        w0, w = before[n], la.matrix().detach()
        bound = 2.5 * w0.std(dim=1, keepdim=True)
        assert bool((w.abs() <= bound * (1 + 1e-6)).all()), n
        inside = (w0.abs() <= bound).all(dim=1)
        assert torch.equal(w[inside], w0[inside]), n
    assert float(c_fc.matrix()[3, 5].detach()) < 10.0


def test_fit_clips_every_step(tok):
    """An outlier shrinks step after step (each step clips at 2.5 std of the row as it is
    then), below the bound of one clipping; without clipping it stays."""
    base = _base(tok)
    with torch.no_grad():
        base.model.transformer.h[0].mlp.c_fc.weight[5, 3] = 5.0  # Conv1D: (in, out)
    row0 = base.model.transformer.h[0].mlp.c_fc.weight[:, 3].detach().clone()
    one_clip = 2.5 * float(row0.std())
    res = fit(
        base,
        analog_mapping("pcm", PCM_IO),
        _cfg(steps=3, distill=dict(clip_sigma=2.5)),
        progress=False,
    )
    got = float(res.model.transformer.h[0].mlp.c_fc.weight[5, 3])
    assert got < 0.9 * one_clip
    res = fit(
        base,
        analog_mapping("pcm", PCM_IO),
        _cfg(steps=3, distill=dict(clip_sigma=None)),
        progress=False,
    )
    assert float(res.model.transformer.h[0].mlp.c_fc.weight[5, 3]) > 4.9


def _ranged_model(tok, io=PCM_IO):
    net = make_gpt2(0, vocab=len(tok), n_positions=64, dropout=0.0, sharpen=8.0)
    am = convert(net, analog_mapping("ideal", io))
    ctx = install_hwa(am.model, fast_hwa())
    ranges = install_input_ranges(am.model, ctx, DistillConfig(init_steps=1))
    return net, am, ranges


def test_input_ranges_start_from_data_and_move(tok):
    net, am, ranges = _ranged_model(tok)
    ids = torch.randint(0, len(tok), (4, 32), generator=torch.Generator().manual_seed(0))
    am.model.train()
    am.model(input_ids=ids)  # the first forward initialises every range
    r0 = ranges.values()
    assert all(v > 0 for v in r0.values())
    with torch.no_grad():  # a range far too small: most inputs clipped
        ranges.get("transformer.h.0.mlp.c_fc").fill_(0.05)
    opt = torch.optim.Adam(ranges.parameters(), lr=0.02)
    with torch.no_grad():
        target = net(input_ids=ids).logits
    for _ in range(15):
        loss = (am.model(input_ids=ids).logits - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    r1 = ranges.values()
    assert r1["transformer.h.0.mlp.c_fc"] > 0.05 + 0.1  # clipped inputs push it out
    moved = [n for n in r1 if abs(r1[n] - r0[n]) > 1e-3]
    assert len(moved) >= len(r1) // 2


def test_learned_range_deploys_as_the_static_dac_range(tok):
    """Noise off, DAC and ADC on: the training forward with range r equals the inference
    tile with dac_range = r (the deployment)."""
    io = dict(PCM_IO, out_noise=0.0)
    net, am, ranges = _ranged_model(tok, io)
    ids = torch.randint(0, len(tok), (2, 16), generator=torch.Generator().manual_seed(1))
    am.model.train()
    with torch.no_grad():
        pass
    y_train = am.model(input_ids=ids).logits.detach()  # initialises and uses the ranges
    dep = convert(net, analog_mapping("ideal", io))
    assert apply_input_ranges(dep, ranges.values()) == len(ranges.names)
    dep.program(0)
    with torch.no_grad():
        y_dep = dep(input_ids=ids).logits
    assert torch.allclose(y_train, y_dep, atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="input_ranges"):
        apply_input_ranges(dep, {"no.such.layer": 1.0})


def test_lora_trains_only_its_factors(tok):
    base = _base(tok)
    res = fit(
        base,
        analog_mapping("pcm", PCM_IO),
        _cfg(steps=4, lr=1e-2, distill=dict(lora_rank=2, clip_sigma=None)),
        progress=False,
    )
    a, b = base.model.state_dict(), res.model.state_dict()
    assert set(a) == set(b)  # merged: no LoRA tensors left
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert "transformer.h.0.mlp.c_fc.weight" in changed
    assert not any("ln_" in k or "bias" in k or "wpe" in k for k in changed), changed


def test_bad_settings_name_the_key():
    with pytest.raises(ConfigError, match=r"distill\.tokens"):
        DistillConfig(tokens=10, seq_len=32)
    with pytest.raises(ConfigError, match=r"distill\.lora_rank"):
        DistillConfig(lora_rank=-1)
    with pytest.raises(ConfigError, match="causal language models"):
        from tests.train.conftest import mlp

        fit(
            LoadedModel("m", "classifier", mlp(), None, None, {}),
            analog_mapping("pcm"),
            TrainConfig(method="distill"),
            progress=False,
        )


# ---------------------------------------------------------------------------- robustness
def test_answers_are_matched_exactly_or_leniently():
    assert rob.exact_match(" Paris.\nMore text", ("paris",))
    assert not rob.exact_match("The capital is Paris", ("paris",))
    assert rob.contains_match("The capital is Paris!", ("paris",))
    assert rob.exact_match("Carbon dioxide", ("carbon dioxide", "co2"))
    assert not rob.contains_match("Parisian", ("paris",))


def test_t_interval_width_follows_student_t():
    mean, half, std = rob.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == 1.0
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)  # t(0.975, 2)
    assert math.isnan(rob.t_interval([5.0])[1])


def test_rtn_quantises_weights_and_activations():
    net = make_gpt2(0, vocab=50, n_positions=16)
    q = rob.rtn_quantize(net, analog_mapping("pcm"), w_bits=4, a_bits=8)
    layer = q.transformer.h[0].mlp.c_fc
    assert isinstance(layer, rob._ActQuant)
    assert max(len(torch.unique(row)) for row in layer.w_q) <= 15  # 4-bit: 2*7+1 levels
    ids = torch.arange(8)[None]
    with torch.no_grad():
        a, b = net(input_ids=ids).logits, q(input_ids=ids).logits
    assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.5)


def test_lm_robustness_compares_trained_off_the_shelf_and_rtn(tok, tmp_path, monkeypatch):
    from analogsim.report.rundir import RunDir
    from analogsim.studies.train import train
    from analogsim.train.checkpoint import save_checkpoint

    base_dir = tmp_path / "base"
    net = make_gpt2(0, vocab=len(tok), n_positions=64, dropout=0.0, sharpen=8.0)
    save_checkpoint(
        net,
        base_dir,
        name="tiny",
        kind="causal-lm",
        method="plain",
        mapping="all_analog",
        device="pcm",
        seed=0,
        tokenizer=tok,
    )
    mapping = analog_mapping("pcm", PCM_IO)
    res = train(
        str(base_dir),
        mapping,
        "pcm",
        "distill",
        steps=2,
        out=tmp_path / "run",
        hwa=fast_hwa(),
        distill=DistillConfig(tokens=128, seq_len=32, gen_batch=4),
        progress=False,
    )
    ck = res.checkpoint
    assert "input_ranges" in res.loaded.info.get("sidecar", {}) or (
        ck / "analogsim.json"
    ).read_text().count("input_ranges")
    monkeypatch.setattr(
        rob, "load_model", lambda name, progress=True: rob.load_checkpoint(base_dir)
    )
    qs = (("What is 2 + 3?", ("5",)),)
    kw = dict(questions=qs, max_tokens=64, progress=False)
    cols, keys = rob.LM_COLUMNS, rob.LM_KEYS
    with RunDir(tmp_path / "rob", "robustness", {}, cols, keys) as run:
        out = rob.lm_robustness(ck, mapping, "pcm", [3600.0], [300.0, 358.15], 2, run=run, **kw)
    chip = [r for r in out["summary"] if r["axis"] == "chip" and r["metric"] == "perplexity"]
    assert {r["model"] for r in chip} == {"trained", "off-the-shelf"}
    assert all(r["n"] == 2 and math.isfinite(r["ci95"]) for r in chip)
    axes = {r["axis"] for r in out["summary"]}
    assert axes == {"chip", "digital", "rtn-w4a8"}
    n_rows = len(out["rows"])
    assert n_rows == 3 * (2 * 2 + 2 * 2 * 2)  # 3 metrics x (2 models x (2 digital + 4 chip))
    with RunDir(tmp_path / "rob", "robustness", {}, cols, keys) as run:  # resume: nothing new
        again = rob.lm_robustness(ck, mapping, "pcm", [3600.0], [300.0, 358.15], 2, run=run, **kw)
    assert len(again["rows"]) == n_rows


def test_questions_are_asked_through_the_chat_template(monkeypatch):
    """An instruct model is asked each question as a user message (its chat template),
    not as raw text to continue: the prompt ids are the template's."""
    from analogsim.models.base import prompt_ids

    class ChatTok:
        chat_template = "{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}<a>"
        eos_token_id = 0
        pad_token_id = 0

        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
            return "".join(f"<u>{m['content']}</u>" for m in messages) + "<a>"

        def __call__(self, text, add_special_tokens=True, return_tensors=None):
            return {"input_ids": torch.tensor([[ord(c) for c in text]])}

    seen: list = []

    def fake_generate(model, tokenizer, prompts, n):
        seen.extend(prompts)
        return ["Paris"] * len(prompts)

    monkeypatch.setattr(rob, "generate_samples", fake_generate)
    loaded = LoadedModel("chat", "causal-lm", torch.nn.Linear(1, 1), ChatTok(), None)
    q = (("What is the capital of France?", ("paris",)),)
    assert rob._answers(loaded.model, loaded, q) == ["Paris"]
    want = prompt_ids(ChatTok(), "What is the capital of France?" + rob.QA_INSTRUCTION)
    assert seen == [want.tolist()]
    assert "".join(chr(c) for c in seen[0]).startswith("<u>What is the capital")
