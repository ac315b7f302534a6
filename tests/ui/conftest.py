"""Fixtures of the browser tests: a small random GPT-2 with a BPE tokenizer saved as a
Hugging Face folder, ``analogsim ui`` serving it on a free loopback port (a subprocess,
the real command), and headless Chromium from the system package manager driven by
Playwright.

Screenshots go to ``$ANALOGSIM_UI_SCREENSHOTS`` (default: a folder under pytest's
temporary directory, printed at the end of the session); with ``ANALOGSIM_UI_DOCS=1``
they are also copied into ``docs/images/ui/``. ``ANALOGSIM_UI_MODEL`` serves another
model instead (``smollm2`` for the screenshots of docs/ui.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images" / "ui"
#: Seconds to wait for the server, and for each step in the page (larger for smollm2).
STARTUP_S = int(os.environ.get("ANALOGSIM_UI_STARTUP_S", "180"))
STEP_S = int(os.environ.get("ANALOGSIM_UI_STEP_S", "60"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def random_gpt2_folder(folder: Path) -> Path:
    """A random GPT-2 (2 blocks, untied head, sharpened logits) with a 200-entry
    byte-level BPE trained on a few sentences, saved with ``save_pretrained`` (a second).

    The BPE's alphabet is only the characters of those sentences (no control bytes), so
    every token the random model writes is printable text."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    from analogsim.progress import quiet_transformers
    from tests.conftest import make_gpt2

    text = (
        "What is a chip? A chip is a small piece of silicon that computes.\n\n"
        "The quick brown fox jumps over the lazy dog.\n\n"
    ) * 40
    bpe = Tokenizer(BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=200, special_tokens=["<|endoftext|>"], show_progress=False
    )
    bpe.train_from_iterator(text.split("\n\n"), trainer=trainer)
    eos = "<|endoftext|>"
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=eos, eos_token=eos, unk_token=eos, model_max_length=128
    )
    model = make_gpt2(0, vocab=len(tok), n_positions=128, dropout=0.0, tied=False, sharpen=2.0)
    with quiet_transformers():
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the screenshots go; printed at the end, copied to docs with ANALOGSIM_UI_DOCS=1."""
    env = os.environ.get("ANALOGSIM_UI_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nbrowser test screenshots: {folder}")
    if os.environ.get("ANALOGSIM_UI_DOCS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy2(png, DOCS_IMAGES / png.name)
        print(f"copied into {DOCS_IMAGES}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """``analogsim ui`` on a free 127.0.0.1 port: ``{"url", "runs", "log", "model"}``.

    Its output goes to a log file; the tests assert it holds no traceback."""
    root = tmp_path_factory.mktemp("ui-server")
    model = os.environ.get("ANALOGSIM_UI_MODEL") or str(random_gpt2_folder(root / "gpt2"))
    runs = root / "runs"
    port = _free_port()
    log = root / "server.log"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    cmd = [sys.executable, "-c", "from analogsim.cli import main; main()", "ui"]
    cmd += ["--model", model, "--port", str(port), "--runs", str(runs)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"analogsim ui exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"analogsim ui did not serve in {STARTUP_S} s:\n{log.read_text()}")
                time.sleep(0.5)
        yield {"url": url, "runs": runs, "log": log, "model": model}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shots = os.environ.get("ANALOGSIM_UI_SCREENSHOTS")
        if shots:  # the server's log beside the screenshots
            Path(shots).mkdir(parents=True, exist_ok=True)
            shutil.copy2(log, Path(shots) / "server.log")


@pytest.fixture(scope="session")
def ui_browser() -> Iterator[object]:
    """Headless Chromium from the system package (``apt-get install chromium``)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no {CHROMIUM}: install it with `apt-get install -y chromium` (make test does)"
        )
    from playwright.sync_api import sync_playwright  # lazy: only when Chromium is there

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def ui_page(ui_browser: object, server: dict[str, object]) -> Iterator[object]:
    """A fresh page on the workbench, loaded (the placement table is drawn)."""
    context = ui_browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.set_default_timeout(STEP_S * 1000)
    expect.set_options(timeout=STEP_S * 1000)
    pg.goto(str(server["url"]))
    expect(pg.locator("#placement")).to_contain_text("default")
    try:
        yield pg
    finally:
        context.close()
