r"""Hugging Face ``generate`` with the event clock advancing per token.

The clock is hooked into an unmodified ``model.generate`` call:

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

After generation the model is restored to digital (weights bit for bit) and the digital
model's log-probability of every generated token is computed teacher forced on the
generated text, to separate sampling luck from hardware degradation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from analogsim.clock.core import DEFAULT_TOLERANCE, Clock
from analogsim.clock.profile_spec import parse_profile
from analogsim.clock.profiles import Profile
from analogsim.clock.records import StepState
from analogsim.clock.schedules import Schedule, parse_schedule
from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.studies.trace import (
    CUSUM_H_NATS,
    CUSUM_K_NATS,
    detect_cliff,
    plot_trace,
    trace_columns,
    write_csv,
)

__all__ = [
    "DEFAULT_PROMPT",
    "RESULT_COLUMNS",
    "RESULT_KEYS",
    "GenerationResult",
    "TokenRecorder",
    "build_model",
    "digital_scores",
    "generate_with_clock",
    "parse_fault_rates",
    "run_generate",
    "trace_rows",
]

LN2 = math.log(2.0)
DEFAULT_PROMPT = "The return statement"
RESULT_COLUMNS = ["model", "mapping", "device", "seed", "metric", "value"]
RESULT_KEYS = ["model", "mapping", "device", "seed", "metric"]
_FAULT_KEYS = {
    "gmin": "faults.onset_gmin_per_s",
    "gmax": "faults.onset_gmax_per_s",
    "outlier": "faults.onset_outlier_per_s",
}


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


def _as_processor(rec: TokenRecorder):
    from transformers import LogitsProcessor

    class _Proc(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return rec(input_ids, scores)

    return _Proc()


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
    from analogsim.mapping.analog_model import AnalogModel

    return model.model if isinstance(model, AnalogModel) else model


def generation_config(tokens: int, *, stop_at_eos: bool = False, eos: int | None = None):
    """The ``GenerationConfig`` the clocked and the plain generation share: greedy on the
    (possibly recorder-sampled) scores, ``tokens`` new tokens, no EOS stop by default."""
    from transformers import GenerationConfig

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
    from transformers import LogitsProcessorList

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
                logits_processor=LogitsProcessorList([_as_processor(rec)]),
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


def trace_rows(
    result: GenerationResult,
    digital: tuple[list[float], list[float]] | None,
    roles: Sequence[str],
    tokenizer: Any = None,
) -> list[dict[str, Any]]:
    """One dict per generated token with the columns of :func:`trace_columns`."""
    rows = []
    dlp, dent = digital if digital is not None else ([math.nan] * len(result.tokens),) * 2
    for k, tok in enumerate(result.tokens):
        s = result.steps[k]
        eq = next(iter(s.equivalent_s.values())) if s.equivalent_s else None
        text = ""
        if tokenizer is not None:
            text = tokenizer.decode([tok])
        row = {
            "token_index": k,
            "time_s": s.time_s,
            "temperature_K": s.temperature_K,
            "equivalent_age_s": eq,
            "token": tok,
            "token_text": text,
            "logprob": result.logprobs[k],
            "entropy_bits": result.entropies[k],
            "digital_logprob": dlp[k],
            "digital_entropy_bits": dent[k],
            "gap_nats": result.logprobs[k] - dlp[k],
            **s.trace_fields(roles),
        }
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------
# option parsing


def parse_fault_rates(text: str | dict[str, Any] | None) -> dict[str, float]:
    """``gmin=1e-9,gmax=2e-9,outlier=1e-10`` (per device per second of equivalent time) to
    device overrides ``{"faults.onset_gmin_per_s": 1e-9, ...}``."""
    from analogsim.units import parse_float

    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ConfigError(
                    "fault rates are KIND=RATE pairs",
                    key="fault_rate",
                    value=part.strip(),
                    allowed="gmin=RATE,gmax=RATE,outlier=RATE (per device per second)",
                )
            k, _, v = part.partition("=")
            items.append((k.strip(), v.strip()))
    out = {}
    for k, v in items:
        if k not in _FAULT_KEYS:
            raise ConfigError(
                "unknown fault kind", key="fault_rate", value=k, allowed=", ".join(_FAULT_KEYS)
            )
        rate = parse_float(v, key=f"fault_rate {k}")
        if not math.isfinite(rate) or rate < 0:
            raise ConfigError(
                "rate must be finite and >= 0", key=f"fault_rate {k}", value=v, allowed=">= 0 /s"
            )
        out[_FAULT_KEYS[k]] = rate
    return out


def _device_names(mapping: Any) -> list[str]:
    names = []
    for s in [mapping.default.settings, *[r.settings for r in mapping.rules]]:
        d = s.get("device")
        if d is not None and d not in names:
            names.append(d)
    return names


def build_clock(
    am: nn.Module,
    digital: nn.Module,
    step_s: float,
    start_age_s: float,
    profile: Profile,
    *,
    schedule: Schedule | None,
    noise: str | None,
    seed: int,
    relative: bool,
    roles: Sequence[str] | None,
    include_embeddings: bool = False,
    tolerance: float,
    recalibrate_every_s: float | None,
    time_cache: bool,
) -> Clock:
    """The clock of a ``generate`` or ``stream`` run on ``am`` (the model from
    :func:`build_model`; ``am is digital`` when nothing is analog), with statistical weight
    noise on ``schedule`` when one is given (then ``clock.noise``)."""
    analog = am is not digital
    wn = None
    if schedule is not None:
        wn = WeightNoise(
            am,
            schedule,
            noise,
            seed,
            relative=relative,
            roles=roles,
            include_embeddings=include_embeddings,
            analog=analog,
        )
    return Clock(
        am if analog else None,
        step_s,
        start_age_s,
        profile,
        tolerance=tolerance,
        recalibrate_every_s=recalibrate_every_s,
        time_cache=time_cache,
        noise=wn,
    )


def build_model(
    model: nn.Module,
    mapping: Any = None,
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> nn.Module:
    """Convert ``model`` in place with ``mapping`` (``all_analog`` when only ``device`` is
    given) and program it from ``seed``; the model itself when neither is given.

    ``overrides`` (``{"faults.onset_gmin_per_s": 1e-9}``) apply to every device card of the
    mapping and are validated like a card.
    """
    from analogsim.mapping.convert import convert
    from analogsim.mapping.rules import load_mapping

    if mapping is None and device is None:
        if overrides:
            raise ConfigError(
                "device settings need an analog mapping",
                key="fault_rate",
                allowed="add --mapping (or --device) to simulate devices",
            )
        return model
    m = load_mapping(mapping if mapping is not None else "all_analog").with_device(device)
    for name in _device_names(m) if overrides else []:
        m = m.with_device_overrides(name, dict(overrides))
    return convert(model, m, inplace=True).program(seed)


def _prompt_tensor(prompt: Any, tokenizer: Any) -> Tensor:
    if isinstance(prompt, str):
        if tokenizer is None:
            raise ConfigError(
                "a text prompt needs the model's tokenizer, and this model has none",
                key="prompt",
                allowed="a model folder with tokenizer files, or token ids (e.g. 1,2,3)",
            )
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    else:
        ids = torch.as_tensor(list(prompt), dtype=torch.long)
    if ids.numel() == 0:
        start = None
        if tokenizer is not None:
            start = tokenizer.bos_token_id
            if start is None:
                start = tokenizer.eos_token_id
        if start is None:
            raise ConfigError("empty prompt and no BOS/EOS token to start from", key="prompt")
        ids = torch.tensor([start], dtype=torch.long)
    return ids.view(1, -1)


def _context(model: nn.Module) -> int | None:
    cfg = getattr(model, "config", None)
    for k in ("n_positions", "max_position_embeddings"):
        v = getattr(cfg, k, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


# --------------------------------------------------------------------------------------
# the whole run


def run_generate(
    model: Any,
    *,
    prompt: str | Sequence[int] = DEFAULT_PROMPT,
    tokens: int = 100,
    token_time: float | str = 1.0,
    start_age: float | str = 0.0,
    temperature: str | Profile = "300K",
    mapping: Any = None,
    device: str | None = None,
    fault_rate: str | dict[str, Any] | None = None,
    device_overrides: dict[str, Any] | None = None,
    seed: int = 0,
    sample: bool = False,
    softmax_temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    recalibrate_every: float | str | None = None,
    time_cache: bool = True,
    noise: str | None = None,
    schedule: str | Schedule | None = None,
    relative: bool = False,
    noise_roles: Sequence[str] | None = None,
    include_embeddings: bool = False,
    stop_at_eos: bool = False,
    cusum_k: float = CUSUM_K_NATS,
    cusum_h: float = CUSUM_H_NATS,
    window: int = 16,
    out: str | Path | None = None,
    streamer: Any = None,
    print_text: bool = False,
    plots: bool = True,
) -> dict[str, Any]:
    """Generate text on a simulated chip whose state moves with deployment time.

    Writes a run directory (``trace.csv``, ``events.csv``, ``results.csv``,
    ``manifest.json``, four PNG plots) and returns
    ``{"run_dir", "text", "rows", "cliff", "clock", "metrics"}``.

    Args:
        model: a model name for :func:`analogsim.models.load_model` or a ``LoadedModel``
            (a causal LM).
        prompt: text (needs the model's tokenizer) or token ids.
        tokens: new tokens (exactly that many unless ``stop_at_eos``).
        token_time: simulated time per token, s or ``"1h"``.
        start_age: deployment age at the first token, s or ``"1d"``.
        temperature: temperature profile over deployment time (``"sine:300K:360K:1d"``).
        mapping, device: placement; neither gives the digital model.
        fault_rate: onset hazards ``gmin=..,gmax=..,outlier=..`` per device per second.
        device_overrides: further card overrides (``{"drift.scale": 2}``).
        seed: programs the chip, seeds sampling and the noise draws.
        sample, softmax_temperature, top_k, top_p: sampling (default greedy).
        tolerance: skip tolerance, fraction of g_max (:data:`DEFAULT_TOLERANCE`).
        recalibrate_every: drift-compensation recalibration period (None: every update).
        time_cache: keep the layers' per-device draws of the current noise interval while
            the clock runs (updates become a few elementwise passes; up to 20x the analog
            weight bytes of extra memory). Off: every update regenerates from the seeds.
            The numbers are identical either way.
        noise, schedule, relative, noise_roles, include_embeddings: statistical weight noise
            on a sigma schedule (``noise="gaussian", schedule="linear:0:0.02"``).
        stop_at_eos: stop at the EOS token.
        cusum_k, cusum_h, window: cliff detector settings (nats, nats, tokens).
        out: run directory (default ``runs/<timestamp>-generate``).
        streamer: passed to ``generate`` (e.g. ``transformers.TextStreamer``).
        print_text: print the prompt and the text to stdout as it is generated (a
            ``TextStreamer``; token ids for a model without tokenizer).
        plots: draw the PNGs.
    """
    from analogsim.models import LoadedModel, load_model
    from analogsim.report.rundir import RunDir
    from analogsim.units import parse_time

    # ---- validate everything before any work
    if not isinstance(tokens, int) or tokens < 1:
        raise ConfigError("need at least one token", key="tokens", value=tokens, allowed=">= 1")
    step = parse_time(token_time, key="token_time")
    if step <= 0:
        raise ConfigError("must be > 0", key="token_time", value=token_time)
    age = parse_time(start_age, key="start_age")
    profile = parse_profile(temperature) if isinstance(temperature, str) else temperature
    recal = (
        None
        if recalibrate_every is None
        else parse_time(recalibrate_every, key="recalibrate_every")
    )
    if (noise is None) != (schedule is None):
        raise ConfigError(
            "statistical noise needs both a distribution and a schedule",
            key="noise" if noise is None else "schedule",
            allowed="--noise gaussian --schedule linear:0:0.02 (or neither)",
        )
    sched = None
    if schedule is not None:
        sched = parse_schedule(schedule, tokens) if isinstance(schedule, str) else schedule
        from analogsim.devices.noise import get_noise

        get_noise(noise)
    overrides = {**parse_fault_rates(fault_rate), **(device_overrides or {})}
    if recal is not None and mapping is None and device is None:
        raise ConfigError(
            "recalibration needs an analog mapping",
            key="recalibrate_every",
            allowed="add --mapping (or --device), or drop --recalibrate-every",
        )

    loaded = model if isinstance(model, LoadedModel) else load_model(model, progress=False)
    if loaded.kind != "causal-lm":
        raise ConfigError(
            "generate needs a causal language model",
            key="model",
            value=loaded.name,
            allowed="tiny-gpt2 or a Hugging Face causal LM; classifiers use `analogsim stream`",
        )
    tok = loaded.tokenizer
    ids = _prompt_tensor(prompt, tok)
    ctx = _context(loaded.model)
    if ctx is not None and ids.shape[1] + tokens > ctx:
        raise ConfigError(
            f"prompt ({ids.shape[1]} tokens) + new tokens exceed the model's context of {ctx}",
            key="tokens",
            value=tokens,
            allowed=f"<= {ctx - ids.shape[1]} with this prompt",
        )
    if print_text and streamer is None:
        streamer = _stdout_streamer(tok)
    eos = getattr(tok, "eos_token_id", None) if tok is not None else None
    if eos is None:
        eos = getattr(getattr(loaded.model, "config", None), "eos_token_id", None)

    mapping_name = "digital"
    cards: dict[str, Any] = {}
    if mapping is not None or device is not None:
        from analogsim.mapping.rules import load_mapping
        from analogsim.mapping.rules import cards_of

        m = load_mapping(mapping if mapping is not None else "all_analog")
        mapping_name = m.name
        cards = cards_of(m, device)
        mapping = m
    config = {
        "model": loaded.name,
        "mapping": mapping_name,
        "device": device,
        "device_overrides": overrides,
        "prompt": prompt if isinstance(prompt, str) else list(prompt),
        "tokens": tokens,
        "token_time_s": step,
        "start_age_s": age,
        "temperature": profile.spec() if _has_spec(profile) else repr(profile),
        "seed": seed,
        "sample": sample,
        "softmax_temperature": softmax_temperature,
        "top_k": top_k,
        "top_p": top_p,
        "tolerance": tolerance,
        "recalibrate_every_s": recal,
        "noise": noise,
        "schedule": sched.spec() if sched is not None else None,
        "relative": relative,
        "noise_roles": list(noise_roles) if noise_roles else None,
        "include_embeddings": include_embeddings,
        "stop_at_eos": stop_at_eos,
        "cusum_k_nats": cusum_k,
        "cusum_h_nats": cusum_h,
        "window": window,
    }
    point = {"model": loaded.name, "mapping": mapping_name, "device": device or "", "seed": seed}

    with RunDir(out, "generate", config, RESULT_COLUMNS, RESULT_KEYS, cards=cards) as run:
        if run.done(**point, metric="tokens") and (run.path / "trace.csv").exists():
            return _resumed(run, loaded.name, plots)
        digital = loaded.model
        am = build_model(digital, mapping, device, overrides, seed)
        driven = am
        clock = None
        interrupted: GenerationInterrupted | None = None
        try:
            clock = build_clock(
                am,
                digital,
                step,
                age,
                profile,
                schedule=sched,
                noise=noise,
                seed=seed,
                relative=relative,
                roles=noise_roles,
                include_embeddings=include_embeddings,
                tolerance=tolerance,
                recalibrate_every_s=recal,
                time_cache=time_cache,
            )
            try:
                result = generate_with_clock(
                    driven,
                    ids,
                    clock,
                    tokens,
                    sample=sample,
                    seed=seed,
                    softmax_temperature=softmax_temperature,
                    top_k=top_k,
                    top_p=top_p,
                    streamer=streamer,
                    stop_at_eos=stop_at_eos,
                    eos_token_id=eos,
                )
            except GenerationInterrupted as exc:
                interrupted = exc
                result = exc.partial
        finally:
            if clock is not None:
                clock.close()
            if am is not digital:
                am.restore()
        if clock.noise is not None:
            clock.noise.check_restored()
        dig = digital_scores(digital, result.ids, result.prompt_len) if result.tokens else ([], [])
        roles = clock.roles
        rows = trace_rows(result, dig, roles, tok)
        write_csv(run.path / "trace.csv", rows, trace_columns(roles))
        write_csv(
            run.path / "events.csv",
            [{"time_s": e.time_s, "kind": e.kind, "detail": e.detail} for e in clock.events],
            ["time_s", "kind", "detail"],
        )
        if interrupted is not None:
            # keep what was generated: the partial trace is written, the run stays
            # unfinished (no metrics), so running again with the same --out redoes it
            run.note(
                interrupted_after_tokens=len(result.tokens),
                text=tok.decode(result.tokens) if tok is not None else "",
            )
            raise interrupted
        cliff = detect_cliff(
            [r["logprob"] for r in rows],
            [r["digital_logprob"] for r in rows],
            k_ref=cusum_k,
            h=cusum_h,
            window=window,
        )
        text = tok.decode(result.tokens) if tok is not None else ""
        if plots:
            plot_trace(run.path / "trace.csv", run.path, cliff=cliff, title=loaded.name)
        metrics = _metrics(rows, result, clock, cliff, roles)
        run.write([{**point, "metric": k, "value": v} for k, v in metrics.items()])
        csum = clock.summary()
        run.note(
            clock=csum,
            cliff={k: cliff[k] for k in ("method", "k_ref_nats", "h_nats", "window")}
            | {
                "alarm_token": cliff["alarm_index"],
                "onset_token": cliff["onset_index"],
                "alarm_time_s": rows[cliff["alarm_index"]]["time_s"]
                if cliff["alarm_index"] is not None
                else None,
            },
            text=text,
            prompt_ids=result.ids[0, : result.prompt_len].tolist(),
            faults_column="counted with DeviceModel.fault_masks at state updates",
            metrics=metrics,
        )
    return {
        "run_dir": run.path,
        "text": text,
        "rows": rows,
        "cliff": cliff,
        "clock": csum,
        "metrics": metrics,
    }


class _IdStreamer:
    """Prints token ids as they come (for models without a tokenizer)."""

    def put(self, value: Tensor) -> None:
        print(" ".join(str(int(v)) for v in value.reshape(-1)), end=" ", flush=True)

    def end(self) -> None:
        print(flush=True)


def _stdout_streamer(tokenizer: Any) -> Any:
    if tokenizer is None:
        return _IdStreamer()
    from transformers import TextStreamer

    return TextStreamer(tokenizer, skip_prompt=False)


def _resumed(run: Any, name: str, plots: bool) -> dict[str, Any]:
    """A finished run directory: redraw the plots from trace.csv, nothing recomputed."""
    from analogsim.studies.trace import read_csv

    rows = read_csv(run.path / "trace.csv")
    man = run.manifest
    cl = man.get("cliff", {})
    cliff = detect_cliff(
        [float(r["logprob"]) for r in rows],
        [float(r["digital_logprob"]) for r in rows],
        k_ref=cl.get("k_ref_nats", CUSUM_K_NATS),
        h=cl.get("h_nats", CUSUM_H_NATS),
        window=cl.get("window", 16),
    )
    if plots:
        plot_trace(run.path / "trace.csv", run.path, cliff=cliff, title=name)
    return {
        "run_dir": run.path,
        "text": man.get("text", ""),
        "rows": rows,
        "cliff": cliff,
        "clock": man.get("clock", {}),
        "metrics": man.get("metrics", {}),
        "resumed": True,
    }


def _has_spec(p: Profile) -> bool:
    try:
        p.spec()
    except ValueError:
        return False
    return True


def _metrics(
    rows: list[dict[str, Any]], result: GenerationResult, clock: Clock, cliff: dict, roles
) -> dict[str, float]:
    n = len(rows)

    def mean(key: str) -> float:
        vals = [float(r[key]) for r in rows if r[key] is not None]
        return sum(vals) / len(vals) if vals else math.nan

    out = {
        "tokens": float(n),
        "state_updates": float(clock.n_updates),
        "mean_logprob": mean("logprob"),
        "mean_digital_logprob": mean("digital_logprob"),
        "mean_gap_nats": mean("gap_nats"),
        "mean_entropy_bits": mean("entropy_bits"),
        "cliff_token": float(cliff["alarm_index"])
        if cliff["alarm_index"] is not None
        else math.nan,
        "generate_seconds": result.seconds,
        "tokens_per_s": n / result.seconds if result.seconds > 0 else math.nan,
    }
    if rows:
        for r in roles:
            out[f"final_weight_error_{r}"] = float(rows[-1][f"weight_error_{r}"])
        if rows[-1]["faults_so_far"] is not None:
            out["final_faults"] = float(rows[-1]["faults_so_far"])
    return out
