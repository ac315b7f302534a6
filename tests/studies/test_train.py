"""End-to-end tests of analogsim.studies.train.train: small training runs (seconds) with
their run directory, checkpoint and plots."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from transformers import GPT2LMHeadModel

import analogsim.train.loop as loop
from analogsim.studies.robustness import robustness
from analogsim.studies.train import train
from analogsim.train import load_checkpoint
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


def test_interrupted_training_keeps_its_weights(tmp_path, monkeypatch) -> None:
    """Ctrl-C mid-training: the weights so far are saved as a loadable checkpoint beside the
    run, the run is marked interrupted, and a rerun with the same --out trains from the
    start to a complete checkpoint."""
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
