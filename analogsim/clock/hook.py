r"""The generation hook: Hugging Face ``generate`` with the event clock advancing per token.

The clock is hooked into an unmodified ``model.generate`` call (mechanism only: no run
directory, no plots, no model loading; the study is :mod:`analogsim.studies.generate`):

* a **forward pre-hook** on the model advances the :class:`~analogsim.clock.core.Clock` one
  step before every forward. Forward ``k`` is the prefill for ``k = 0`` (the prompt) and
  the one-token decode step that produces token ``k`` otherwise, so **token k is computed
  with the chip at** ``start_age + k * token_time`` (temperature, equivalent age, device
  state and statistical noise of that instant). The KV cache keeps what earlier forwards
  computed at their own times, as a chip's digital cache would;
* a **logits processor** (:class:`TokenRecorder`) sees the raw logits of each step,
  records the chosen token's log-probability and the entropy of the distribution, and
  for sampling draws the token from its own seeded ``torch.Generator`` (inverse CDF of
  one uniform per token) and hands ``generate`` a distribution with all mass on it, so
  ``generate`` runs greedily and torch's global RNG is never touched;
* a **streamer** (optional, e.g. ``transformers.TextStreamer``) prints text as it comes.

After generation the model is restored to digital (weights bit for bit) and
:func:`digital_scores` gives the digital model's log-probability of every generated token,
teacher forced on the generated text, to separate sampling luck from hardware degradation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from analogsim.clock.core import Clock
from analogsim.clock.records import StepState
from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import AnalogModel

__all__ = [
    "GenerationInterrupted",
    "GenerationResult",
    "TokenRecorder",
    "digital_scores",
    "generate_with_clock",
    "generation_config",
]

LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------
# the logits processor


class TokenRecorder:
    """A ``LogitsProcessor`` that records each step and optionally samples.

    For the raw logits ``z`` of a step (shape ``(1, V)``) it keeps a reference to the row
    (``generate`` hands every processor a fresh float32 copy) and, in :meth:`finish`,
    computes in float64 the chosen token's natural log-probability
    ``log softmax(z)[token]`` (temperature 1: the model's own distribution) and the
    entropy ``-sum p log2 p`` in bits, for all steps at once. Per step the cost is a list
    append (greedy) or one draw (sampling); memory: ``n x V`` float32 logits.

    Greedy (``sample=False``): the scores pass through unchanged and ``generate`` takes
    the arg-max. Sampling: the token is drawn from ``softmax(z / temperature)`` restricted
    to the ``top_k`` most likely tokens and to the smallest set of mass ``top_p``, by the
    inverse CDF of one uniform from ``generator``; the returned scores put all mass on it.

    Args:
        sample: sample instead of greedy.
        generator: the seeded generator for sampling (one per run).
        temperature: softmax temperature for sampling (> 0).
        top_k: keep the k most likely tokens (None: all).
        top_p: nucleus mass in (0, 1] (None: 1).
    """

    def __init__(
        self,
        *,
        sample: bool = False,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
    ) -> None:
        if sample and generator is None:
            raise ValueError("sampling needs a seeded torch.Generator")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ConfigError("must be > 0", key="softmax_temperature", value=temperature)
        if top_k is not None and top_k < 1:
            raise ConfigError("must be >= 1", key="top_k", value=top_k)
        if top_p is not None and not 0 < top_p <= 1:
            raise ConfigError("must be in (0, 1]", key="top_p", value=top_p)
        self.sample = sample
        self.generator = generator
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self._rows: list[Tensor] = []
        self._drawn: list[int] = []
        self.tokens: list[int] = []
        self.logprobs: list[float] = []
        self.entropies: list[float] = []

    def _draw(self, z: Tensor) -> int:
        z = torch.nan_to_num(z / self.temperature, nan=-math.inf)  # (V,)
        if self.top_k is not None and self.top_k < z.numel():
            kth = torch.topk(z, self.top_k).values[-1]
            z = torch.where(z < kth, -math.inf, z)
        p = torch.softmax(z, dim=-1)
        if not torch.isfinite(p).all() or float(p.sum()) == 0.0:
            return int(torch.argmax(torch.nan_to_num(z, nan=-math.inf)))
        if self.top_p is not None and self.top_p < 1.0:
            sp, order = torch.sort(p, descending=True)
            keep = (torch.cumsum(sp, 0) - sp) < self.top_p  # mass before this token < top_p
            mask = torch.zeros_like(p, dtype=torch.bool)
            mask[order[keep]] = True
            p = torch.where(mask, p, 0.0)
        cdf = torch.cumsum(p, 0)
        u = torch.rand((), generator=self.generator, dtype=cdf.dtype) * cdf[-1]
        tok = int(torch.searchsorted(cdf, u.reshape(1), right=True)[0])
        return min(tok, p.numel() - 1)

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        if scores.shape[0] != 1:
            raise ValueError("the clocked generation runs one sequence at a time")
        self._rows.append(scores[0])
        if not self.sample:
            return scores
        tok = self._draw(scores[0].double())
        self._drawn.append(tok)
        out = torch.full_like(scores, -math.inf)
        out[0, tok] = 0.0
        return out

    def finish(self, tokens: Sequence[int] | None = None) -> TokenRecorder:
        """Compute ``tokens``, ``logprobs`` and ``entropies`` of the recorded steps.

        Args:
            tokens: the generated ids (greedy: read from ``generate``'s output); default
                the drawn tokens (sampling) or the arg-max of each row.
        """
        n = len(self._rows)
        if tokens is None:
            tokens = self._drawn if self.sample else [int(r.argmax()) for r in self._rows]
        tokens = list(tokens)[:n]
        self.tokens, self.logprobs, self.entropies = tokens, [], []
        for c0 in range(0, len(tokens), 256):
            z = torch.stack(self._rows[c0 : c0 + 256]).double()  # (c, V)
            logp = torch.log_softmax(z, dim=-1)  # (c, V)
            tok = torch.tensor(tokens[c0 : c0 + 256], dtype=torch.long, device=z.device)
            self.logprobs += logp.gather(1, tok[:, None])[:, 0].tolist()
            ent = torch.special.entr(logp.exp()).nansum(dim=-1) / LN2  # (c,)
            finite = torch.isfinite(logp).any(dim=-1)
            self.entropies += torch.where(finite, ent, math.nan).tolist()
        self._rows = []
        return self


class _RecorderProcessor(LogitsProcessor):
    """Hands ``generate``'s scores to a :class:`TokenRecorder` (a ``LogitsProcessor``)."""

    def __init__(self, rec: TokenRecorder) -> None:
        self.rec = rec

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        return self.rec(input_ids, scores)


# --------------------------------------------------------------------------------------
# one generation


@dataclass
class GenerationResult:
    """What a clocked generation produced.

    Attributes:
        ids: prompt and generated token ids, ``(1, P + n)``.
        prompt_len: ``P``.
        tokens, logprobs, entropies: per generated token (nats, bits).
        steps: the clock's :class:`StepState` per token.
        seconds: wall time of the ``generate`` call, s.
    """

    ids: Tensor
    prompt_len: int
    tokens: list[int]
    logprobs: list[float]
    entropies: list[float]
    steps: list[StepState]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def _hf_model(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, AnalogModel) else model


def generation_config(
    tokens: int, *, stop_at_eos: bool = False, eos: int | None = None
) -> GenerationConfig:
    """The ``GenerationConfig`` the clocked and the plain generation share: greedy on the
    (possibly recorder-sampled) scores, ``tokens`` new tokens, no EOS stop by default."""
    return GenerationConfig(
        max_new_tokens=int(tokens),
        do_sample=False,
        num_beams=1,
        eos_token_id=(eos if stop_at_eos and eos is not None else []),
        pad_token_id=eos if eos is not None else 0,
    )


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a clocked generation; ``partial`` holds the tokens generated so far
    (a :class:`GenerationResult`), so the caller can still write their trace."""

    def __init__(self, partial: GenerationResult) -> None:
        super().__init__(f"generation interrupted after {len(partial.tokens)} tokens")
        self.partial = partial


@torch.no_grad()
def generate_with_clock(
    model: nn.Module,
    prompt_ids: Tensor,
    clock: Clock,
    tokens: int,
    *,
    sample: bool = False,
    seed: int = 0,
    softmax_temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    streamer: Any = None,
    stop_at_eos: bool = False,
    eos_token_id: int | None = None,
) -> GenerationResult:
    """Run ``model.generate`` for ``tokens`` new tokens with ``clock`` advancing per token.

    Args:
        model: a Hugging Face causal LM or an ``AnalogModel`` wrapping one (the model the
            clock drives, or the digital model for a noise-only run).
        prompt_ids: ``(1, P)`` token ids.
        clock: a fresh :class:`Clock`; step ``k`` is token ``k``.
        tokens: new tokens (>= 1).
        sample: sample with a generator seeded from ``derive_seed(seed, "sampling")``.
        softmax_temperature, top_k, top_p: sampling settings.
        streamer: passed to ``generate`` (prints text as it is generated).
        stop_at_eos: stop at the EOS token (default: generate exactly ``tokens``).
        eos_token_id: the EOS id (also used as padding).
    """
    if tokens < 1:
        raise ConfigError("need at least one token", key="tokens", value=tokens, allowed=">= 1")
    gen = None
    if sample:
        gen = torch.Generator().manual_seed(derive_seed(seed, "sampling"))
    rec = TokenRecorder(
        sample=sample, generator=gen, temperature=softmax_temperature, top_k=top_k, top_p=top_p
    )
    hf = _hf_model(model)
    ids = prompt_ids.reshape(1, -1).to(torch.long)
    gc = generation_config(tokens, stop_at_eos=stop_at_eos, eos=eos_token_id)
    was_training = hf.training
    hf.eval()
    t0 = time.perf_counter()
    try:
        with clock.attach(hf):
            out = hf.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                generation_config=gc,
                logits_processor=LogitsProcessorList([_RecorderProcessor(rec)]),
                streamer=streamer,
            )
    except KeyboardInterrupt:
        # every recorded step chose its token (greedy: the arg-max of the unchanged scores;
        # sampling: the recorder's own draw), so the text so far is known
        rec.finish(rec._drawn if sample else None)
        new = rec.tokens
        partial = GenerationResult(
            ids=torch.cat(
                [ids, torch.tensor([new], dtype=torch.long, device=ids.device).reshape(1, -1)],
                dim=1,
            ),
            prompt_len=ids.shape[1],
            tokens=new,
            logprobs=rec.logprobs,
            entropies=rec.entropies,
            steps=clock.steps[: len(new)],
            seconds=time.perf_counter() - t0,
        )
        raise GenerationInterrupted(partial) from None
    finally:
        hf.train(was_training)
    seconds = time.perf_counter() - t0
    n = out.shape[1] - ids.shape[1]
    new = out[0, ids.shape[1] :].tolist()
    rec.finish(new)
    return GenerationResult(
        ids=out,
        prompt_len=ids.shape[1],
        tokens=new,
        logprobs=rec.logprobs[:n],
        entropies=rec.entropies[:n],
        steps=clock.steps[:n],
        seconds=seconds,
    )


@torch.no_grad()
def digital_scores(
    model: nn.Module, ids: Tensor, prompt_len: int
) -> tuple[list[float], list[float]]:
    """Teacher-forced log-probability (nats) and entropy (bits) of every generated token.

    One forward of the digital model over ``ids`` ``(1, P + n)``; token ``k`` (at position
    ``P + k``) is scored by the logits at position ``P + k - 1``.
    """
    hf = _hf_model(model)
    was_training = hf.training
    hf.eval()
    try:
        out = hf(input_ids=ids, use_cache=False)
    finally:
        hf.train(was_training)
    logits = out.logits if hasattr(out, "logits") else out[0]  # (1, L, V)
    logp = torch.log_softmax(logits[0, prompt_len - 1 : -1].double(), dim=-1)  # (n, V)
    target = ids[0, prompt_len:]  # (n,)
    lp = logp.gather(1, target[:, None])[:, 0]  # (n,)
    ent = torch.special.entr(logp.exp()).nansum(dim=-1) / LN2  # (n,)
    return lp.tolist(), ent.tolist()
