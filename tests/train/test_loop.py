"""End-to-end tests of analogsim.train.train: small runs that finish in seconds."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.studies.robustness import robustness
from analogsim.train import TrainConfig, load_checkpoint, train
from tests.train.conftest import fast_hwa
from tests.train.test_data import _image_folder


def test_each_method_leaves_a_run_directory_and_a_checkpoint(digits_runs) -> None:
    for meth, res in digits_runs.items():
        run = res.run_dir
        assert (run / "manifest.json").is_file() and (run / "training.png").is_file()
        rows = list(csv.DictReader((run / "results.csv").open()))
        assert {r["metric"] for r in rows} >= {"loss", "digital_accuracy"}
        side = json.loads((res.checkpoint / "analogsim.json").read_text())
        assert side["method"] == meth and side["train"]["method"] == meth
        assert 0.5 < res.metrics["digital_accuracy"] <= 1.0
    noise_csv = digits_runs["learned-noise"].run_dir / "noise_log.csv"
    rows = list(csv.DictReader(noise_csv.open()))
    assert {r["layer"] for r in rows} == {"0", "2", "4"}
    sig = [float(r["sigma_mean"]) for r in rows if r["layer"] == "0"]
    assert sig[0] != sig[-1]  # the learned variance moved
    assert (digits_runs["learned-noise"].run_dir / "learned_sigma.png").is_file()
    assert not (digits_runs["plain"].run_dir / "noise_log.csv").exists()


def test_plain_training_stays_digital(digits_runs) -> None:
    """The plain model is an ordinary float MLP: no noise anywhere, same output twice."""
    model = digits_runs["plain"].model
    assert all(type(m).__module__.startswith("torch") for m in model.modules())
    x = torch.rand(4, 64)
    assert torch.equal(model(x), model(x))


def test_methods_see_the_same_batches_and_start(digits_runs) -> None:
    starts = {r.metrics["start_digital_accuracy"] for r in digits_runs.values()}
    assert len(starts) == 1


def test_finished_run_is_loaded_not_trained_again(digits_runs) -> None:
    res = digits_runs["hwa"]
    again = train(
        "digits-mlp",
        "all_analog",
        "pcm",
        "hwa",
        epochs=1,
        out=res.run_dir,
        hwa=fast_hwa(),
        progress=False,
    )
    assert again.metrics == json.loads(json.dumps(res.metrics))
    assert torch.equal(again.model[0].weight, res.model[0].weight)


def test_same_seed_same_weights(tmp_path) -> None:
    kw = dict(epochs=1, hwa=fast_hwa(), save=False, progress=False)
    a = train("digits-mlp", "all_analog", "pcm", "hwa", **kw)
    b = train("digits-mlp", "all_analog", "pcm", "hwa", **kw)
    c = train("digits-mlp", "all_analog", "pcm", "hwa", seed=1, **kw)
    assert torch.equal(a.model[0].weight, b.model[0].weight)
    assert not torch.equal(a.model[0].weight, c.model[0].weight)


def test_image_folder_trains_a_fresh_mlp(tmp_path) -> None:
    _image_folder(tmp_path / "ds", n=8)
    res = train(
        "digits-mlp",
        "all_analog",
        "pcm",
        "hwa",
        epochs=2,
        data=tmp_path / "ds",
        out=tmp_path / "run",
        hwa=fast_hwa(),
        progress=False,
    )
    assert res.model[0].in_features == 60 and res.model[-1].out_features == 2
    loaded = load_checkpoint(res.checkpoint)  # data rebuilt from the recorded folder
    assert loaded.data.x_test.shape == (4, 60)


def test_language_model_fine_tune_and_robustness(tiny_gpt2_folder, text_file, tmp_path) -> None:
    """A Hugging Face causal LM (GPT-2 Conv1D, tied head) fine-tuned on a text file with
    hwa, saved HF-style, and compared on the chip."""
    from transformers import GPT2LMHeadModel

    runs = {}
    for meth in ("plain", "hwa"):
        runs[meth] = train(
            str(tiny_gpt2_folder),
            "digital_attention_analog_mlp",
            "pcm",
            meth,
            steps=3,
            batch_size=2,
            text=text_file,
            config=None,
            hwa=fast_hwa(),
            out=tmp_path / meth,
            progress=False,
        )
    ck = runs["hwa"].checkpoint
    hf = GPT2LMHeadModel.from_pretrained(ck, local_files_only=True)
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()
    side = json.loads((ck / "analogsim.json").read_text())
    assert side["data"]["source"].endswith("corpus.txt")
    res = robustness([runs["plain"].checkpoint, ck], times=[3600.0], seeds=2, progress=False)
    ppl = [r for r in res["summary"] if r["metric"] == "perplexity"]
    assert len(ppl) == 2 and all(r["mean"] > 1 for r in ppl)
    assert not any(r["metric"] == "a_star" for r in res["summary"])  # accuracy only


def test_bad_method_and_nothing_analog_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown training method"):
        TrainConfig(method="magic")
    with pytest.raises(ConfigError, match="needs analog-placed layers"), pytest.warns(UserWarning):
        train("digits-mlp", "all_digital", None, "hwa", epochs=1, save=False, progress=False)


def test_dropout_override_is_for_training_only() -> None:
    from torch import nn

    from analogsim.train.loop import _set_dropout

    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2), nn.Linear(3, 2))
    saved = _set_dropout(net, 0.0)
    assert net[1].p == 0.0 and saved == [(net[1], 0.2)]
    assert _set_dropout(net, None) == []
    with pytest.raises(ConfigError, match="dropout"):
        TrainConfig(dropout=1.5)


def test_interrupted_training_keeps_its_weights(tmp_path, monkeypatch) -> None:
    """Ctrl-C mid-training: the weights so far are saved as a loadable checkpoint beside the
    run, the run is marked interrupted, and a rerun with the same --out trains from the
    start to a complete checkpoint."""
    import analogsim.train.loop as loop

    real = loop._loss
    calls = []

    def interrupting(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(loop, "_loss", interrupting)
    kw = dict(epochs=1, hwa=fast_hwa(), progress=False, out=tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        train("digits-mlp", "all_analog", "pcm", "hwa", **kw)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["interrupted_after_steps"] == 3
    partial = load_checkpoint(tmp_path / "run" / "checkpoint-interrupted")
    assert partial.info["sidecar"]["metrics"]["steps"] == 3
    assert not (tmp_path / "run" / "checkpoint").exists()

    monkeypatch.setattr(loop, "_loss", real)
    done = train("digits-mlp", "all_analog", "pcm", "hwa", **kw)
    assert done.checkpoint == tmp_path / "run" / "checkpoint"
    assert done.metrics["steps"] > 3
    # the interrupted weights are an earlier point of the same run, not the finished one
    w3 = partial.model[0].weight
    assert not torch.equal(w3, done.model[0].weight)
