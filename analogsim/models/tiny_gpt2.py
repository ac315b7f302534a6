"""``tiny-gpt2``: a ~1M-parameter GPT-2 trained once on CPU on Python's own help texts.

Corpus: ``pydoc_data.topics.topics`` (the English help texts behind ``help("if")``,
shipped with every CPython), joined in sorted key order with blank lines. The last
~10 % of the characters (cut at a line break) are held out for perplexity.

Tokenizer: a byte-level BPE (the GPT-2 scheme: any byte sequence round-trips) with
``vocab_size`` entries, trained with the ``tokenizers`` library on the training part
only; ``<|endoftext|>`` is its BOS/EOS/UNK token, as in GPT-2.

Model: ``transformers.GPT2LMHeadModel`` with the LM head tied to the token embedding,
trained with AdamW (linear warm-up, cosine decay), random windows of ``block_size``
tokens drawn with an explicit ``torch.Generator``. Weight initialisation and dropout
use torch's global RNG inside ``torch.random.fork_rng`` seeded from the recipe, so a
build is deterministic on a given machine and leaves the caller's RNG untouched.

The result (``save_pretrained`` safetensors weights, config, tokenizer files and a
``meta.json``) is written to a temporary folder and renamed into place, so an
interrupted build leaves nothing that looks valid; the next load rebuilds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import tokenizers
import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers import models as bpe_models
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from analogsim.errors import ConfigError
from analogsim.metrics import perplexity
from analogsim.models._cache import (
    atomic_dir,
    count_params,
    read_meta,
    seeded_global_rng,
    write_meta,
)
from analogsim.models.base import LoadedModel
from analogsim.paths import cache_dir
from analogsim.progress import progress_bar, quiet_transformers

NAME = "tiny-gpt2"
EOS = "<|endoftext|>"
RECIPE_VERSION = 1


@dataclass(frozen=True)
class TinyGPT2Recipe:
    """Everything that determines a tiny-gpt2 build. Defaults are the built-in model.

    A cached build is reused only if its recorded recipe equals the requested one.
    """

    version: int = RECIPE_VERSION
    vocab_size: int = 2048
    n_positions: int = 256
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    dropout: float = 0.2
    steps: int = 1000
    batch_size: int = 16
    block_size: int = 256
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    heldout_fraction: float = 0.1
    eval_stride: int = 128

    def validate(self) -> TinyGPT2Recipe:
        """Raise ConfigError naming the first invalid field; return self."""
        positive = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "batch_size")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError("must be positive", key=key, value=getattr(self, key))
        if self.vocab_size < 257:
            raise ConfigError(
                "byte-level BPE needs the 256 byte symbols plus <|endoftext|>",
                key="vocab_size",
                value=self.vocab_size,
                allowed=">= 257",
            )
        if self.n_embd % self.n_head:
            raise ConfigError(
                "n_embd must be divisible by n_head",
                key="n_embd",
                value=self.n_embd,
                allowed=f"a multiple of n_head={self.n_head}",
            )
        if not 2 <= self.block_size <= self.n_positions:
            raise ConfigError(
                "training window out of range",
                key="block_size",
                value=self.block_size,
                allowed=f"2..n_positions={self.n_positions}",
            )
        if self.steps < 0 or self.warmup_steps < 0:
            raise ConfigError("must be >= 0", key="steps", value=(self.steps, self.warmup_steps))
        if not 0.0 < self.heldout_fraction < 0.5:
            raise ConfigError(
                "held-out fraction out of range",
                key="heldout_fraction",
                value=self.heldout_fraction,
                allowed="0 < fraction < 0.5",
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                "dropout out of range", key="dropout", value=self.dropout, allowed="[0, 1)"
            )
        if not 1 <= self.eval_stride <= self.n_positions:
            raise ConfigError(
                "eval stride out of range",
                key="eval_stride",
                value=self.eval_stride,
                allowed=f"1..n_positions={self.n_positions}",
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        """The recipe as a plain JSON-able dict."""
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> TinyGPT2Recipe:
        """A copy with ``overrides``; unknown keys raise ConfigError listing the valid ones."""
        valid = [f.name for f in dataclasses.fields(self)]
        for key in overrides:
            if key not in valid:
                raise ConfigError("unknown tiny-gpt2 recipe key", key=key, allowed=", ".join(valid))
        return dataclasses.replace(self, **overrides).validate()


DEFAULT_RECIPE = TinyGPT2Recipe()

# Seconds per training step of the built-in recipe on the 2-core development machine, idle
# (docs/models.md); other recipes scale by their multiply-accumulates per step.
_SECONDS_PER_STEP = 0.45
_MEASURED_RECIPE = TinyGPT2Recipe()


def estimated_build_seconds(recipe: TinyGPT2Recipe | None = None) -> float:
    """A rough CPU build time: ``steps`` times 0.45 s scaled by the recipe's MACs per step
    (``batch_size * block_size * (12 n_layer n_embd^2 + n_embd vocab_size)``) relative to
    the built-in recipe's (default: :data:`DEFAULT_RECIPE`). Measured 8-10 min for the
    built-in recipe on 2 cores; a busy or slower machine takes longer (the progress bar
    shows the real ETA)."""
    recipe = recipe or DEFAULT_RECIPE

    def macs(r: TinyGPT2Recipe) -> float:
        per_token = 12 * r.n_layer * r.n_embd**2 + r.n_embd * r.vocab_size
        return r.batch_size * r.block_size * per_token

    return recipe.steps * _SECONDS_PER_STEP * macs(recipe) / macs(_MEASURED_RECIPE)


def build_notice(folder: Path, recipe: TinyGPT2Recipe | None = None) -> str:
    """The line printed before a build: what is built, how long it takes, where it goes."""
    recipe = recipe or DEFAULT_RECIPE
    minutes = estimated_build_seconds(recipe) / 60.0
    eta = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
    return (
        f"analogsim: building {NAME} once: {recipe.steps} training steps on CPU, {eta} on "
        f"2 idle cores (longer on a busy machine; the bar shows the ETA); cached in {folder}"
    )


def pydoc_corpus(heldout_fraction: float = 0.1) -> tuple[str, str]:
    """``(train_text, heldout_text)`` from ``pydoc_data.topics``.

    The topics are joined in sorted key order with blank lines; the held-out part starts
    at the first line break after ``(1 - heldout_fraction)`` of the characters.
    """
    text = "\n\n".join(topics[key] for key in sorted(topics))
    cut = text.find("\n", int(len(text) * (1.0 - heldout_fraction)))
    cut = len(text) if cut < 0 else cut + 1
    return text[:cut], text[cut:]


def corpus_sha256() -> str:
    """Hash of the full corpus (it changes with the Python version that ships it)."""
    train, heldout = pydoc_corpus()
    return hashlib.sha256((train + heldout).encode()).hexdigest()


def train_tokenizer(train_text: str, vocab_size: int, model_max_length: int = 256) -> Any:
    """Train a byte-level BPE on ``train_text``; return it as a HF fast tokenizer.

    Training input is the text's blank-line separated paragraphs. ``<|endoftext|>`` is
    token 0 and serves as BOS, EOS and UNK (GPT-2's convention); no PAD token.
    """
    tok = Tokenizer(bpe_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train_text.split("\n\n"), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        model_max_length=model_max_length,
    )


def encode_text(tokenizer: Any, text: str) -> torch.Tensor:
    """Token ids of a long text as a 1-D LongTensor, without special tokens and without
    the "longer than model_max_length" warning (the text is not fed to the model whole)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        ids = backend.encode(text, add_special_tokens=False).ids
    else:
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)  # (N,)


def _lr_at(step: int, recipe: TinyGPT2Recipe) -> float:
    """Learning rate: linear warm-up to ``lr``, then cosine decay to ``lr*min_lr_ratio``."""
    warmup = min(recipe.warmup_steps, max(recipe.steps - 1, 0))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, recipe.steps - warmup)
    floor = recipe.min_lr_ratio
    return recipe.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac)))


def _make_model(recipe: TinyGPT2Recipe, eos_id: int) -> torch.nn.Module:
    config = GPT2Config(
        vocab_size=recipe.vocab_size,
        n_positions=recipe.n_positions,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        resid_pdrop=recipe.dropout,
        embd_pdrop=recipe.dropout,
        attn_pdrop=recipe.dropout,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,
    )
    with seeded_global_rng(recipe.seed), quiet_transformers():
        return GPT2LMHeadModel(config)


def build_tiny_gpt2(
    cache_root: Path | str | None = None,
    *,
    recipe: TinyGPT2Recipe | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Path:
    """Train tiny-gpt2 and save it to ``cache_root/tiny-gpt2`` (default ``cache_dir()``).

    ``overrides`` change single recipe fields (``steps``, ``n_layer``, ``n_embd``,
    ``vocab_size``, ``block_size``, ``batch_size``, ...; see :class:`TinyGPT2Recipe`),
    so tests can build a seconds-scale model: ``build_tiny_gpt2(tmp_path, steps=30,
    n_layer=1, n_embd=32, vocab_size=512, block_size=64, n_positions=64)``.
    Returns the folder. An existing folder is replaced only when the build completes.
    """
    recipe = (recipe or DEFAULT_RECIPE).replace(**overrides)
    root = Path(cache_root) if cache_root is not None else cache_dir()
    folder = root / NAME
    t0 = time.perf_counter()

    train_text, heldout_text = pydoc_corpus(recipe.heldout_fraction)
    tokenizer = train_tokenizer(train_text, recipe.vocab_size, recipe.n_positions)
    train_ids = encode_text(tokenizer, train_text)  # (N_train,)
    heldout_ids = encode_text(tokenizer, heldout_text)  # (N_heldout,)
    if train_ids.numel() <= recipe.block_size + 1:
        raise ConfigError(
            "training text shorter than one window", key="block_size", value=recipe.block_size
        )
    eos_id = int(tokenizer.eos_token_id)
    model = _make_model(recipe, eos_id)
    vocab = model.config.vocab_size

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": recipe.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=recipe.lr,
        betas=(0.9, 0.95),
    )
    batch_gen = torch.Generator().manual_seed(recipe.seed)
    offsets = torch.arange(recipe.block_size + 1)  # (T+1,)
    loss_log: list[tuple[int, float]] = []
    ema = float("nan")
    log_every = max(1, recipe.steps // 20)

    model.train()
    with (
        progress_bar(f"building {NAME}", recipe.steps, progress) as advance,
        seeded_global_rng(recipe.seed + 1),  # dropout masks
    ):
        for step in range(recipe.steps):
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, recipe)
            starts = torch.randint(
                0,
                train_ids.numel() - recipe.block_size - 1,
                (recipe.batch_size,),
                generator=batch_gen,
            )  # (B,)
            chunk = train_ids[starts[:, None] + offsets]  # (B, T+1)
            x, y = chunk[:, :-1], chunk[:, 1:]  # (B, T), (B, T)
            logits = model(input_ids=x, use_cache=False).logits  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            opt.step()
            value = loss.item()
            ema = value if math.isnan(ema) else 0.95 * ema + 0.05 * value
            if (step + 1) % log_every == 0 or step + 1 == recipe.steps:
                loss_log.append((step + 1, round(ema, 4)))
            advance(1, f"loss {ema:.3f}")
    model.eval()
    train_seconds = time.perf_counter() - t0
    if progress:
        print(f"analogsim: {NAME}: scoring held-out perplexity, then saving", file=sys.stderr)
    ppl = perplexity(model, heldout_ids, max_length=recipe.n_positions, stride=recipe.eval_stride)
    meta = {
        "name": NAME,
        "recipe": recipe.as_dict(),
        "corpus_sha256": corpus_sha256(),
        "params": count_params(model),
        "train_steps": recipe.steps,
        "train_tokens": int(train_ids.numel()),
        "heldout_tokens": int(heldout_ids.numel()),
        "tokens_seen": recipe.steps * recipe.batch_size * recipe.block_size,
        "train_loss_ema": loss_log,
        "heldout_perplexity": ppl,
        "heldout_perplexity_window": [recipe.n_positions, recipe.eval_stride],
        "train_seconds": train_seconds,
        "build_seconds": time.perf_counter() - t0,
        "torch_num_threads": torch.get_num_threads(),
        "versions": _versions(),
        "machine": platform.machine(),
    }
    with atomic_dir(folder) as tmp, quiet_transformers():
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_meta(tmp, meta)
    return folder


def _versions() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def load_tiny_gpt2_folder(folder: Path | str) -> LoadedModel:
    """Load a built tiny-gpt2 folder with ``from_pretrained`` (no training, no checks of
    the recipe); ``data`` is rebuilt from the corpus with the folder's tokenizer."""
    t0 = time.perf_counter()
    folder = Path(folder)
    meta = read_meta(folder) or {}
    recipe = meta.get("recipe", {})
    with quiet_transformers():
        model = GPT2LMHeadModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model.eval()
    train_text, heldout_text = pydoc_corpus(recipe.get("heldout_fraction", 0.1))
    data = {
        "train_ids": encode_text(tokenizer, train_text),
        "heldout_ids": encode_text(tokenizer, heldout_text),
        "heldout_text": heldout_text,
    }
    info = {
        "params": count_params(model),
        "train_steps": meta.get("train_steps"),
        "heldout_perplexity": meta.get("heldout_perplexity"),
        "heldout_perplexity_window": meta.get("heldout_perplexity_window"),
        "build_seconds": meta.get("build_seconds"),
        "cache_path": str(folder),
        "load_seconds": time.perf_counter() - t0,
        "recipe": recipe,
        "versions": meta.get("versions"),
    }
    return LoadedModel(
        name=NAME, kind="causal-lm", model=model, tokenizer=tokenizer, data=data, info=info
    )


def cached_build_is_valid(folder: Path, recipe: TinyGPT2Recipe) -> bool:
    """True if ``folder`` holds a complete build of ``recipe`` from the current corpus."""
    meta = read_meta(folder)
    if meta is None or meta.get("recipe") != recipe.as_dict():
        return False
    if meta.get("corpus_sha256") != corpus_sha256():
        return False
    needed = ("config.json", "model.safetensors", "tokenizer.json")
    return all((folder / name).is_file() for name in needed)


def pending_notice(root: Path | str | None = None) -> str | None:
    """:func:`build_notice` when loading tiny-gpt2 from ``root`` (default ``cache_dir()``)
    would build it first; None when the cache holds a valid build."""
    folder = (Path(root) if root is not None else cache_dir()) / NAME
    return None if cached_build_is_valid(folder, DEFAULT_RECIPE) else build_notice(folder)


def load_tiny_gpt2(
    root: Path | str | None = None, *, progress: bool = True, recipe: TinyGPT2Recipe | None = None
) -> LoadedModel:
    """Load tiny-gpt2 from ``root/tiny-gpt2`` (default ``cache_dir()``), building it first
    (several minutes, once) when the cache is missing, stale or damaged."""
    recipe = (recipe or DEFAULT_RECIPE).validate()
    root = Path(root) if root is not None else cache_dir()
    folder = root / NAME
    built = False
    if not cached_build_is_valid(folder, recipe):
        if progress:
            print(build_notice(folder, recipe), file=sys.stderr, flush=True)
        build_tiny_gpt2(root, recipe=recipe, progress=progress)
        built = True
    try:
        loaded = load_tiny_gpt2_folder(folder)
    except Exception:  # damaged files (truncated safetensors, bad JSON): rebuild once
        if built:
            raise
        if progress:
            print(build_notice(folder, recipe), file=sys.stderr, flush=True)
        build_tiny_gpt2(root, recipe=recipe, progress=progress)
        built = True
        loaded = load_tiny_gpt2_folder(folder)
    loaded.info["from_cache"] = not built
    return loaded
