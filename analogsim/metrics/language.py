"""Language-model metrics: sliding-window perplexity, next-token entropy, text samples.

All functions run the model in eval mode under ``torch.no_grad`` and restore its
previous train/eval mode; none touches torch's global RNG state on exit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import GenerationConfig

from analogsim.errors import ConfigError
from analogsim.metrics._util import context_length, eval_mode, is_hf_model, logits_of, model_device

LN2 = math.log(2.0)


def perplexity_windows(n_tokens: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """The windows that :func:`perplexity` evaluates, as ``(begin, end, first_target)``.

    Window ``k`` covers tokens ``[begin, end)`` with ``begin = k * stride`` and
    ``end = min(begin + max_length, n_tokens)``; the last window is the first that
    reaches ``n_tokens``. Inside a window the targets ``[first_target, end)`` are scored,
    where ``first_target = max(previous end, begin + 1)``: tokens already scored by an
    earlier window are not scored again, and a window's first token has no context in
    that window so it is never a target. With ``stride < max_length`` every token but
    the very first is scored exactly once (``n_tokens - 1`` targets); with
    ``stride == max_length`` (disjoint windows) the first token of each window is not
    scored.
    """
    windows: list[tuple[int, int, int]] = []
    prev_end = 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + max_length, n_tokens)
        first = max(prev_end, begin + 1)
        if first < end:
            windows.append((begin, end, first))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def _forward_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a causal LM on a batch of token ids. x: (B, T) -> (B, T, V)."""
    if is_hf_model(model):
        return logits_of(model(input_ids=x, use_cache=False))
    return logits_of(model(x))


def perplexity(
    model: torch.nn.Module,
    input_ids: torch.Tensor | Sequence[int],
    *,
    max_length: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
) -> float:
    """Sliding-window perplexity of a causal language model on one token sequence.

    Definition: ``PPL = exp( (1/N) * sum_i -ln p(x_i | context_i) )`` over the scored
    tokens ``i`` (natural log inside, so the result is in "effective choices per token",
    unitless, >= 1). The sequence is cut into windows of ``max_length`` tokens that start
    every ``stride`` tokens (the Hugging Face "perplexity of fixed-length models"
    recipe); each token is scored once, in the first window that contains it with some
    context, so it sees between ``max_length - stride`` and ``max_length - 1`` tokens of
    context (except near the start). See :func:`perplexity_windows` for the exact rule:
    with ``stride < max_length``, N = len(input_ids) - 1.

    Args:
        model: a causal LM returning logits of shape (B, T, V) (a Hugging Face model or
            a module returning a tensor / an object with ``.logits``).
        input_ids: 1-D token ids, at least 2 of them.
        max_length: window length in tokens, at most the model's context length
            (``config.n_positions`` / ``max_position_embeddings``; 1024 for a model
            without a config), which is also the default.
        stride: how far each window advances, 1 <= stride <= max_length; default
            ``max_length // 2``. Smaller strides give more context per token and cost
            about ``max_length / stride`` forward passes per token.
        batch_size: windows per forward pass (memory ~ batch_size * max_length * V).

    Returns:
        The perplexity as a float; ``inf`` when the loss is not finite (overflowing or
        NaN logits) or when ``exp`` overflows. Never raises for numerical reasons.
    """
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ConfigError(
            "perplexity needs a 1-D sequence of token ids",
            key="input_ids",
            value=tuple(ids.shape),
            allowed="shape (N,) with N >= 2",
        )
    n = ids.numel()
    if n < 2:
        raise ConfigError(
            "perplexity needs at least 2 tokens", key="input_ids", value=n, allowed="N >= 2"
        )
    context = context_length(model)
    max_length = int(max_length) if max_length is not None else context
    if not 2 <= max_length <= context:
        raise ConfigError(
            "window length out of range (at most the model's context)",
            key="max_length",
            value=max_length,
            allowed=f"2..{context}",
        )
    stride = int(stride) if stride is not None else max(1, max_length // 2)
    if not 1 <= stride <= max_length:
        raise ConfigError(
            "stride out of range", key="stride", value=stride, allowed=f"1..{max_length}"
        )
    if batch_size < 1:
        raise ConfigError(
            "batch size too small", key="batch_size", value=batch_size, allowed=">= 1"
        )

    windows = perplexity_windows(n, max_length, stride)
    # Windows of equal length can share a forward pass; only the last may be shorter.
    groups = _batches_of_equal_length(windows, lambda w: w[1] - w[0], batch_size)

    device = model_device(model)
    ids = ids.to(device)
    nll_sum = 0.0
    n_scored = 0
    with eval_mode(model):
        for group in groups:
            x = torch.stack([ids[b:e] for b, e, _ in group])  # (B, T)
            logits = _forward_logits(model, x)  # (B, T, V)
            for row, (b, e, first) in enumerate(group):
                # logits at position j predict token j + 1
                pred = logits[row, first - b - 1 : e - b - 1].float()  # (n_sel, V)
                target = ids[first:e]  # (n_sel,)
                nll = F.cross_entropy(pred, target, reduction="none")  # (n_sel,)
                nll_sum += float(nll.double().sum())
                n_scored += target.numel()
    return _exp_mean(nll_sum, n_scored)


def _exp_mean(nll_sum: float, n_scored: int) -> float:
    """``exp(nll_sum / n_scored)``; ``inf`` for a non-finite mean or an overflowing exp."""
    mean_nll = nll_sum / n_scored
    if not math.isfinite(mean_nll):
        return float("inf")
    try:
        return math.exp(mean_nll)
    except OverflowError:
        return float("inf")


def seq2seq_windows(n_tokens: int, window: int) -> list[tuple[int, int, int]]:
    """The (source, target) pairs :func:`seq2seq_perplexity` scores, as
    ``(source_begin, target_begin, target_end)``.

    The sequence is cut into consecutive windows of ``window`` tokens; pair ``k`` (k >= 1)
    puts window ``k - 1`` (``[source_begin, target_begin)``, always ``window`` tokens) in
    the encoder and scores window ``k`` (``[target_begin, target_end)``; the last one may be
    shorter) in the decoder. Every token after the first window is scored exactly once:
    ``n_tokens - window`` targets.
    """
    return [
        (begin - window, begin, min(begin + window, n_tokens))
        for begin in range(window, n_tokens, window)
    ]


def seq2seq_perplexity(
    model: torch.nn.Module,
    input_ids: torch.Tensor | Sequence[int],
    *,
    window: int = 128,
    batch_size: int = 8,
) -> float:
    """Teacher-forced decoder perplexity of an encoder-decoder LM (T5, BART, ...) on text.

    The text continues itself: for each pair of :func:`seq2seq_windows`, the encoder reads
    ``window`` tokens and the decoder, fed the true previous target tokens (teacher
    forcing: ``decoder_input_ids = [decoder_start_token_id, y_0, ..., y_{n-2}]``), predicts
    the next ``window`` tokens ``y``. ``PPL = exp((1/N) sum_i -ln p(y_i | source, y_<i))``
    over the N scored tokens (natural log; unitless, >= 1); every layer (encoder, decoder,
    cross-attention, LM head) is on the path of every score.

    Args:
        model: a Hugging Face ``*ForConditionalGeneration`` model (or an ``AnalogModel``
            around one) whose config has ``decoder_start_token_id``.
        input_ids: 1-D token ids, more than ``window`` of them.
        window: tokens per encoder input and per decoder target, at most the model's
            context (``max_position_embeddings``; T5's relative positions have none).
        batch_size: pairs per forward pass.

    Returns:
        The perplexity; ``inf`` when the loss is not finite or ``exp`` overflows.
    """
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ConfigError(
            "perplexity needs a 1-D sequence of token ids",
            key="input_ids",
            value=tuple(ids.shape),
            allowed="shape (N,)",
        )
    context = context_length(model, default=1 << 20)
    if not 1 <= window <= context:
        raise ConfigError(
            "window out of range (at most the model's context)",
            key="window",
            value=window,
            allowed=f"1..{context}",
        )
    n = ids.numel()
    if n <= window:
        raise ConfigError(
            "seq2seq perplexity needs more tokens than one window",
            key="input_ids",
            value=n,
            allowed=f"N > window={window}",
        )
    if batch_size < 1:
        raise ConfigError(
            "batch size too small", key="batch_size", value=batch_size, allowed=">= 1"
        )
    start = getattr(getattr(model, "config", None), "decoder_start_token_id", None)
    if start is None:
        raise ConfigError(
            "the model's config has no decoder_start_token_id",
            key="decoder_start_token_id",
            allowed="an encoder-decoder model (T5, BART, ...) with decoder_start_token_id set",
        )
    pairs = seq2seq_windows(n, window)
    # Pairs with targets of equal length share a forward pass; only the last is shorter.
    groups = _batches_of_equal_length(pairs, lambda p: p[2] - p[1], batch_size)

    device = model_device(model)
    ids = ids.to(device)
    nll_sum = 0.0
    n_scored = 0
    with eval_mode(model):
        for group in groups:
            src = torch.stack([ids[s:b] for s, b, _ in group])  # (B, S)
            tgt = torch.stack([ids[b:e] for _, b, e in group])  # (B, T)
            first = torch.full_like(tgt[:, :1], int(start))  # (B, 1)
            dec = torch.cat([first, tgt[:, :-1]], dim=1)  # (B, T)
            out = model(
                input_ids=src,
                attention_mask=torch.ones_like(src),
                decoder_input_ids=dec,
                use_cache=False,
            )
            logits = logits_of(out).float()  # (B, T, V)
            flat = logits.reshape(-1, logits.shape[-1])  # (B*T, V)
            nll = F.cross_entropy(flat, tgt.reshape(-1), reduction="none")  # (B*T,)
            nll_sum += float(nll.double().sum())
            n_scored += tgt.numel()
    return _exp_mean(nll_sum, n_scored)


def _prompt_ids(tokenizer: Any | None, prompt: Any, device: torch.device) -> torch.Tensor:
    """One prompt as token ids of shape (1, T): a string (needs a tokenizer) or ids."""
    if isinstance(prompt, str):
        if tokenizer is None:
            raise ConfigError(
                "text prompts need a tokenizer", key="tokenizer", allowed="a HF tokenizer"
            )
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    else:
        ids = torch.as_tensor(prompt, dtype=torch.long).reshape(-1)
    if ids.numel() == 0:
        start = None
        if tokenizer is not None:
            start = getattr(tokenizer, "bos_token_id", None)
            if start is None:
                start = getattr(tokenizer, "eos_token_id", None)
        if start is None:
            raise ConfigError("empty prompt and no BOS/EOS token to start from", key="prompts")
        ids = torch.tensor([start], dtype=torch.long)
    return ids.to(device).view(1, -1)


def next_token_entropy_bits(
    model: torch.nn.Module,
    tokenizer: Any | None,
    prompts: Sequence[str] | Sequence[Sequence[int]] | Sequence[torch.Tensor],
    steps: int = 10,
) -> float:
    """Mean entropy, in bits, of the model's full next-token distribution along greedy
    continuations of the prompts.

    For each prompt, ``steps`` greedy decoding steps are taken; before each step the
    entropy ``H = -sum_v p_v log2 p_v`` of ``p = softmax(logits of the last position)``
    over the whole vocabulary is recorded, then the arg-max token is appended. The
    result is the mean over all prompts and steps (the definition of the public
    noisy-LLM study, which uses 10 greedy steps). Range: 0 (certain) to ``log2(V)``
    (uniform over V tokens).

    Args:
        model: causal LM; Hugging Face models decode with their KV cache.
        tokenizer: HF tokenizer for text prompts; may be None when the prompts are
            already token ids (lists or 1-D tensors).
        prompts: strings or token-id sequences. Prompts longer than the model's context
            minus ``steps`` keep their last tokens. An empty prompt starts from BOS
            (or EOS, GPT-2 style).
        steps: greedy steps per prompt (>= 1).

    Returns:
        Mean entropy in bits; NaN if the model produced non-finite logits.
    """
    if steps < 1:
        raise ConfigError("need at least one step", key="steps", value=steps, allowed=">= 1")
    if len(prompts) == 0:
        raise ConfigError("no prompts given", key="prompts", allowed="at least one prompt")
    device = model_device(model)
    hf = is_hf_model(model)
    keep = max(1, context_length(model, default=10**9) - steps)
    entropies: list[float] = []
    with eval_mode(model):
        for prompt in prompts:
            ids = _prompt_ids(tokenizer, prompt, device)[:, -keep:]  # (1, T)
            step_input = ids
            past = None
            for _ in range(steps):
                if hf:
                    out = model(input_ids=step_input, past_key_values=past, use_cache=True)
                    past = out.past_key_values
                else:
                    out = model(ids)
                logits = logits_of(out)[0, -1].double()  # (V,)
                p = torch.softmax(logits, dim=-1)  # (V,)
                entropies.append(float(torch.special.entr(p).sum()) / LN2)
                nxt = logits.argmax().view(1, 1)  # (1, 1)
                ids = torch.cat([ids, nxt], dim=1)  # (1, T + 1)
                step_input = nxt
    return float(sum(entropies) / len(entropies))


def generate_samples(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 32,
    seed: int | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> list[str]:
    """Continue each prompt with ``model.generate``; return the decoded continuations.

    ``seed=None`` decodes greedily (deterministic, no RNG). With an integer ``seed`` the
    continuations are sampled (``temperature``, optional ``top_k`` / ``top_p``).
    Hugging Face's sampler draws from torch's global RNG and takes no generator, so the
    sampling runs inside ``torch.random.fork_rng`` seeded with ``seed``: the same seed
    gives the same samples, and the caller's RNG state is restored afterwards.

    Prompts are generated one at a time (no padding, so results do not depend on the
    batch). The returned strings hold only the new text, special tokens removed; the
    generation stops early if the model emits its EOS token.
    """
    if max_new_tokens < 1:
        raise ConfigError(
            "need at least one new token",
            key="max_new_tokens",
            value=max_new_tokens,
            allowed=">= 1",
        )
    sample = seed is not None
    eos = getattr(tokenizer, "eos_token_id", None)
    pad = getattr(tokenizer, "pad_token_id", None)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        temperature=temperature if sample else None,
        top_k=top_k if sample else None,
        top_p=top_p if sample else None,
        eos_token_id=eos,
        pad_token_id=pad if pad is not None else eos,
    )
    device = model_device(model)
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    texts: list[str] = []
    with eval_mode(model), torch.random.fork_rng(devices=rng_devices):
        if sample:
            torch.manual_seed(int(seed))
        for prompt in prompts:
            ids = _prompt_ids(tokenizer, prompt, device)  # (1, T)
            out = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
            )  # (1, T + new)
            texts.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    return texts


def _batches_of_equal_length(
    items: list[tuple[int, int, int]], length: Callable[[tuple[int, int, int]], int], size: int
) -> list[list[tuple[int, int, int]]]:
    """Consecutive ``items`` in batches of at most ``size`` whose ``length`` is equal (so
    their token slices stack into one forward pass)."""
    groups: list[list[tuple[int, int, int]]] = []
    for item in items:
        last = groups[-1] if groups else None
        if last and len(last) < size and length(last[0]) == length(item):
            last.append(item)
        else:
            groups.append([item])
    return groups
