r"""The ``generate`` study: text generated on a simulated chip whose state moves with
deployment time, one token per clock step.

The mechanism (the clock hooked into an unmodified Hugging Face ``generate``) is
:mod:`analogsim.clock.hook`; the setup shared with ``stream`` is
:mod:`analogsim.studies.clocked`; the trace format :mod:`analogsim.studies.trace`; the
cliff detector :mod:`analogsim.studies.detector`; the plots
:mod:`analogsim.report.trace_plots`. This module loads the model, checks the settings,
runs the generation in a run directory and writes its trace, metrics and plots.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import TextStreamer

from analogsim.clock.core import Clock
from analogsim.clock.hook import (
    GenerationInterrupted,
    GenerationResult,
    digital_scores,
    generate_with_clock,
)
from analogsim.errors import ConfigError
from analogsim.metrics._util import context_length
from analogsim.models import LoadedModel, has_chat_template, load_model, prompt_ids
from analogsim.plasticity.config import DEFAULT_LM_TARGETS, PlasticityConfig, plasticity_config
from analogsim.plasticity.session import PLASTICITY_COLUMNS, PlasticSession
from analogsim.plasticity.targets import Target, resolve_targets
from analogsim.report.figure import new_figure, save_figure
from analogsim.report.rundir import RunDir, read_csv, write_csv
from analogsim.report.trace_plots import plot_trace
from analogsim.studies.clocked import (
    RESULT_COLUMNS,
    RESULT_KEYS,
    ChipOptions,
    chip_config,
    chip_mapping,
    resolve_chip,
    running_chip,
    with_settings,
)
from analogsim.studies.detector import CUSUM_H_NATS, CUSUM_K_NATS, detect_cliff
from analogsim.studies.trace import EVENT_COLUMNS, event_rows, trace_columns, trace_rows

__all__ = ["DEFAULT_PROMPT", "GenerateOptions", "run_generate"]

DEFAULT_PROMPT = "The return statement"


@dataclass(frozen=True)
class GenerateOptions(ChipOptions):
    """Settings of a ``generate`` run (with the chip settings of :class:`ChipOptions`).

    Attributes:
        prompt: text (needs the model's tokenizer) or token ids. A text prompt to a model
            whose tokenizer has a chat template (instruct models: ``smollm2``) is one
            user message formatted by that template, and the model's answer follows.
        raw_prompt: tokenize a text prompt as it is, without the chat template.
        tokens: new tokens (exactly that many unless ``stop_at_eos``).
        token_time: simulated time per token, s or ``"1h"``.
        sample, softmax_temperature, top_k, top_p: sampling (default greedy).
        include_embeddings: statistical noise on the embeddings too.
        stop_at_eos: stop at the EOS token.
        cusum_k, cusum_h, window: cliff detector settings (nats, nats, tokens).
        plasticity: a local rule (``oja``, ``hebbian``, ``bcm``, ``predictive``, ``energy``,
            one registered with :func:`analogsim.plasticity.register_rule`) or ``hybrid``:
            plastic LoRA adapters updated once per token at that token's time
            (docs/plasticity.md). None (and no config): no adapters, today's generation.
        plasticity_config: a plasticity TOML file (or its table): mix, mechanisms,
            stability, update model.
        plasticity_every: one update every N tokens.
    """

    prompt: str | Sequence[int] = DEFAULT_PROMPT
    raw_prompt: bool = False
    tokens: int = 100
    token_time: float | str = 1.0
    sample: bool = False
    softmax_temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    include_embeddings: bool = False
    stop_at_eos: bool = False
    cusum_k: float = CUSUM_K_NATS
    cusum_h: float = CUSUM_H_NATS
    window: int = 16
    plasticity: str | None = None
    plasticity_config: str | Path | dict[str, Any] | None = None
    plasticity_every: int | None = None


def plasticity_setup(opts: Any, mapping: Any) -> PlasticityConfig | None:
    """The plasticity settings of a clocked run (None: off), checked before any work
    (shared with ``stream``): the options ``plasticity``, ``plasticity_config``,
    ``plasticity_every`` and the mapping's ``plastic`` table."""
    return plasticity_config(
        opts.plasticity,
        opts.plasticity_config,
        plastic=mapping.raw.get("plastic") if mapping is not None else None,
        every=opts.plasticity_every,
        mapping_file=(mapping.path or mapping.name) if mapping is not None else None,
    )


def plasticity_targets(
    cfg: PlasticityConfig, mapping: Any, model: Any, default_targets: Sequence[str]
) -> list[Target]:
    """The layers of the digital ``model`` that get adapters."""
    where = None
    if mapping is not None and cfg.targets is not None:
        where = mapping.path or mapping.name
    return resolve_targets(model, cfg.targets or default_targets, file=where)


def plasticity_metrics(session: PlasticSession) -> dict[str, float]:
    """The run's plasticity summary for ``results.csv``."""
    recs = session.records
    upd = [r for r in recs if r["plasticity_updated"]]
    if not recs:
        return {}
    return {
        "plasticity_updates": float(len(upd)),
        "final_adapter_norm": float(recs[-1]["plasticity_adapter_norm"]),
        "max_spectral_norm": max(float(r["plasticity_spectral_norm"]) for r in recs),
        "mean_update_norm": sum(r["plasticity_update_norm"] for r in upd) / len(upd)
        if upd
        else 0.0,
        "plasticity_clipped": float(sum(r["plasticity_clipped"] for r in recs)),
        "plasticity_pulses": float(sum(r["plasticity_pulses"] for r in recs)),
    }


def plot_plasticity(trace_csv: Path, out_dir: Path, *, index: str, title: str = "") -> Path:
    """``plasticity.png`` from a trace with the plasticity columns: adapter norm, largest
    singular value and size of each update (log scale) against the step index, clipped or
    capped updates marked."""
    rows = read_csv(trace_csv)
    x = [int(r[index]) for r in rows]

    def col(name: str) -> list[float]:
        out = []
        for r in rows:
            try:
                v = float(r[name])
            except (TypeError, ValueError):
                v = math.nan
            out.append(v if v > 0 else math.nan)
        return out

    fig, ax = new_figure((8, 4))
    ax.plot(x, col("plasticity_adapter_norm"), label="adapter norm ||s A B||_F")
    ax.plot(x, col("plasticity_spectral_norm"), label="largest singular value")
    ax.plot(x, col("plasticity_update_norm"), ".", ms=3, label="update written")
    clipped = [xi for xi, r in zip(x, rows, strict=True) if float(r["plasticity_clipped"] or 0) > 0]
    if clipped:
        lo = min((v for v in col("plasticity_update_norm") if v == v), default=1e-12)
        ax.plot(clipped, [lo] * len(clipped), "|", color="red", ms=8, label="clipped / capped")
    ax.set_yscale("log")
    ax.set_xlabel(index.replace("_", " "))
    ax.set_ylabel("norm")
    ax.set_title((f"{title}: " if title else "") + "plastic adapters over the run")
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, out_dir / "plasticity.png")


def run_generate(
    model: Any,
    options: GenerateOptions | None = None,
    *,
    out: str | Path | None = None,
    streamer: Any = None,
    print_text: bool = False,
    plots: bool = True,
    **settings: Any,
) -> dict[str, Any]:
    """Generate text on a simulated chip whose state moves with deployment time.

    Writes a run directory (``trace.csv``, ``events.csv``, ``results.csv``,
    ``manifest.json``, four PNG plots) and returns
    ``{"run_dir", "text", "rows", "cliff", "clock", "metrics"}``. Running again with the
    same ``out`` redraws a finished run's plots from its trace (``"resumed": True``).

    Args:
        model: a model name for :func:`analogsim.models.load_model` or a ``LoadedModel``
            (a causal LM).
        options: the settings (:class:`GenerateOptions`); ``settings`` given as keywords
            (``tokens=20, mapping="all_analog"``) replace its fields.
        out: run directory (default ``runs/<timestamp>-generate``).
        streamer: passed to ``generate`` (e.g. ``transformers.TextStreamer``).
        print_text: print the prompt and the text to stdout as it is generated (a
            ``TextStreamer``; token ids for a model without tokenizer).
        plots: draw the PNGs.
    """
    opts = with_settings(options or GenerateOptions(), settings)
    # ---- validate everything before any work
    if not isinstance(opts.tokens, int) or opts.tokens < 1:
        raise ConfigError(
            "need at least one token", key="tokens", value=opts.tokens, allowed=">= 1"
        )
    setup, sched = resolve_chip(opts, opts.token_time, "token_time", schedule_steps=opts.tokens)
    mapping, mapping_name, cards = chip_mapping(opts.mapping, opts.device)
    pcfg = plasticity_setup(opts, mapping)  # checked before the model loads
    loaded = model if isinstance(model, LoadedModel) else load_model(model, progress=False)
    if loaded.kind != "causal-lm":
        raise ConfigError(
            "generate needs a causal language model",
            key="model",
            value=loaded.name,
            allowed="tiny-gpt2 or a Hugging Face causal LM; classifiers use `analogsim stream`",
        )
    tok = loaded.tokenizer
    chat = isinstance(opts.prompt, str) and not opts.raw_prompt and has_chat_template(tok)
    ids = _prompt_tensor(opts.prompt, tok, raw=opts.raw_prompt)
    _check_context(loaded, ids, opts.tokens)
    if print_text and streamer is None:
        streamer = _stdout_streamer(tok, chat_message=opts.prompt if chat else None)
    eos = getattr(tok, "eos_token_id", None) if tok is not None else None
    if eos is None:
        eos = getattr(getattr(loaded.model, "config", None), "eos_token_id", None)
    targets = (
        plasticity_targets(pcfg, mapping, loaded.model, DEFAULT_LM_TARGETS)
        if pcfg is not None
        else []
    )
    plastic_extra = {}
    if pcfg is not None:
        plastic_extra["plasticity"] = pcfg.summary() | {"layers": [t.name for t in targets]}
    config = chip_config(
        opts,
        loaded.name,
        mapping_name,
        setup,
        sched,
        "token_time_s",
        inputs={
            "prompt": opts.prompt if isinstance(opts.prompt, str) else list(opts.prompt),
            "raw_prompt": opts.raw_prompt,
            "chat_template": chat,
            "tokens": opts.tokens,
        },
        study={
            "sample": opts.sample,
            "softmax_temperature": opts.softmax_temperature,
            "top_k": opts.top_k,
            "top_p": opts.top_p,
        },
        extra={
            "include_embeddings": opts.include_embeddings,
            "stop_at_eos": opts.stop_at_eos,
            "cusum_k_nats": opts.cusum_k,
            "cusum_h_nats": opts.cusum_h,
            "window": opts.window,
            **plastic_extra,
        },
    )
    point = {
        "model": loaded.name,
        "mapping": mapping_name,
        "device": opts.device or "",
        "seed": opts.seed,
    }

    with RunDir(out, "generate", config, RESULT_COLUMNS, RESULT_KEYS, cards=cards) as run:
        run.expect(1)
        if run.done(**point, metric="tokens") and (run.path / "trace.csv").exists():
            return _resumed(run, loaded.name, plots)
        digital = loaded.model
        interrupted: GenerationInterrupted | None = None
        with running_chip(
            digital, opts, setup, mapping, sched, include_embeddings=opts.include_embeddings
        ) as (am, clock):
            session = None
            if pcfg is not None:
                hf = am.model if am is not digital else digital
                session = PlasticSession(hf, pcfg, targets, opts.seed)
            try:
                with session.attach() if session is not None else contextlib.nullcontext():
                    result = generate_with_clock(
                        am,
                        ids,
                        clock,
                        opts.tokens,
                        sample=opts.sample,
                        seed=opts.seed,
                        softmax_temperature=opts.softmax_temperature,
                        top_k=opts.top_k,
                        top_p=opts.top_p,
                        streamer=streamer,
                        stop_at_eos=opts.stop_at_eos,
                        eos_token_id=eos,
                    )
            except GenerationInterrupted as exc:
                interrupted = exc
                result = exc.partial
        dig = digital_scores(digital, result.ids, result.prompt_len) if result.tokens else ([], [])
        roles = clock.roles
        rows = trace_rows(result, dig, roles, tok)
        columns = trace_columns(roles)
        if session is not None:
            for row, rec in zip(rows, session.records, strict=False):
                row.update(rec)
            columns = [*columns, *PLASTICITY_COLUMNS]
        write_csv(run.path / "trace.csv", rows, columns)
        write_csv(run.path / "events.csv", event_rows(clock.events), EVENT_COLUMNS)
        # a chat answer ends with the template's end-of-turn token: the text is the answer
        text = tok.decode(result.tokens, skip_special_tokens=chat) if tok is not None else ""
        if interrupted is not None:
            # keep what was generated: the partial trace is written, the run stays
            # unfinished (no metrics), so running again with the same --out redoes it
            run.note(interrupted_after_tokens=len(result.tokens), text=text)
            raise interrupted
        cliff = detect_cliff(
            [r["logprob"] for r in rows],
            [r["digital_logprob"] for r in rows],
            k_ref=opts.cusum_k,
            h=opts.cusum_h,
            window=opts.window,
        )
        if plots:
            plot_trace(run.path / "trace.csv", run.path, cliff=cliff, title=loaded.name)
            if session is not None:
                plot_plasticity(
                    run.path / "trace.csv", run.path, index="token_index", title=loaded.name
                )
        metrics = _metrics(rows, result, clock, cliff, roles)
        if session is not None:
            metrics |= plasticity_metrics(session)
        run.write([{**point, "metric": k, "value": v} for k, v in metrics.items()])
        csum = clock.summary()
        run.note(
            clock=csum,
            cliff=_cliff_note(cliff, rows),
            text=text,
            prompt_ids=result.ids[0, : result.prompt_len].tolist(),
            faults_column="counted with DeviceModel.fault_masks at state updates",
            metrics=metrics,
            **({"plasticity": session.summary()} if session is not None else {}),
        )
    return {
        "run_dir": run.path,
        "text": text,
        "rows": rows,
        "cliff": cliff,
        "clock": csum,
        "metrics": metrics,
    }


def _prompt_tensor(prompt: Any, tokenizer: Any, *, raw: bool = False) -> Tensor:
    """``(1, P)`` ids of a text prompt (through the chat template unless ``raw``, see
    :func:`analogsim.models.prompt_ids`) or of token ids; an empty one is BOS (or EOS)."""
    if isinstance(prompt, str):
        if tokenizer is None:
            raise ConfigError(
                "a text prompt needs the model's tokenizer, and this model has none",
                key="prompt",
                allowed="a model folder with tokenizer files, or token ids (e.g. 1,2,3)",
            )
        ids = prompt_ids(tokenizer, prompt, raw=raw or not prompt)
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


def _check_context(loaded: LoadedModel, ids: Tensor, tokens: int) -> None:
    """The prompt and the new tokens must fit the model's context (when it states one)."""
    ctx = context_length(loaded.model, default=0)  # 0: the model states no context
    if ctx and ids.shape[1] + tokens > ctx:
        raise ConfigError(
            f"prompt ({ids.shape[1]} tokens) + new tokens exceed the model's context of {ctx}",
            key="tokens",
            value=tokens,
            allowed=f"<= {ctx - ids.shape[1]} with this prompt",
        )


class _IdStreamer:
    """Prints token ids as they come (for models without a tokenizer)."""

    def put(self, value: Tensor) -> None:
        print(" ".join(str(int(v)) for v in value.reshape(-1)), end=" ", flush=True)

    def end(self) -> None:
        print(flush=True)


def _stdout_streamer(tokenizer: Any, chat_message: str | None = None) -> Any:
    """Prints the text as it comes: the prompt and its continuation; for a chat prompt,
    the user's message on one line and the answer without the template's tokens."""
    if tokenizer is None:
        return _IdStreamer()
    if chat_message is None:
        return TextStreamer(tokenizer, skip_prompt=False)
    return _ChatStreamer(tokenizer, chat_message)


class _ChatStreamer:
    """Prints the user's message when generation starts, then the answer as it comes
    (the chat template's system turn and special tokens are not printed)."""

    def __init__(self, tokenizer: Any, message: str) -> None:
        self.inner = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.message: str | None = message

    def put(self, value: Tensor) -> None:
        if self.message is not None:
            print(self.message, flush=True)
            self.message = None
        self.inner.put(value)

    def end(self) -> None:
        self.inner.end()


def _cliff_note(cliff: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The detector's settings and result for the manifest."""
    alarm = cliff["alarm_index"]
    return {k: cliff[k] for k in ("method", "k_ref_nats", "h_nats", "window")} | {
        "alarm_token": alarm,
        "onset_token": cliff["onset_index"],
        "alarm_time_s": rows[alarm]["time_s"] if alarm is not None else None,
    }


def _resumed(run: RunDir, name: str, plots: bool) -> dict[str, Any]:
    """A finished run directory: redraw the plots from trace.csv, nothing recomputed."""
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
        if rows and "plasticity_adapter_norm" in rows[0]:
            plot_plasticity(run.path / "trace.csv", run.path, index="token_index", title=name)
    return {
        "run_dir": run.path,
        "text": man.get("text", ""),
        "rows": rows,
        "cliff": cliff,
        "clock": man.get("clock", {}),
        "metrics": man.get("metrics", {}),
        "resumed": True,
    }


def _metrics(
    rows: list[dict[str, Any]],
    result: GenerationResult,
    clock: Clock,
    cliff: dict[str, Any],
    roles: Sequence[str],
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


# --------------------------------------------------------------------------------------
# the plasticity study's point (experiments/plasticity.toml)

PLASTICITY_POINT_METRICS = (
    "perplexity_before",
    "perplexity_after",
    "mean_gap_nats",
    "late_gap_nats",
    "final_adapter_norm",
    "max_spectral_norm",
    "plasticity_clipped",
    "plasticity_pulses",
    "diverged",
)


def plasticity_point(
    settings: dict[str, Any], point: Any, loaded: LoadedModel | None = None
) -> list[dict[str, Any]]:
    """One point of the plasticity study: a long generation on an ageing chip with one
    rule (or none), then the held-out perplexity with the adapters as they ended.

    ``point.coords``: ``model``, ``plasticity`` (``none`` or a rule / ``hybrid``),
    ``update`` (``ideal`` or ``device``), ``temperature``; ``point.seed`` programs the chip
    and seeds everything. ``settings``: ``tokens``, ``token_time``, ``start_age``,
    ``mapping``, ``device``, ``max_tokens``, ``prompt`` (a text; or the first of
    ``prompts``), and optionally ``plasticity_config`` (a table merged under the rule).

    Rows (``{"metric", "value", "text"}``): ``perplexity_before`` (the chip at the start
    age, no adapter), ``perplexity_after`` (the chip at the last token's time, adapters
    as they ended), ``mean_gap_nats`` and ``late_gap_nats`` (mean of logprob - digital
    logprob over all tokens and over the last quarter), the adapter norms, clip count,
    pulses, ``diverged`` (1 when a norm or the perplexity is not finite).
    """
    from analogsim.models.quality import quality_metric  # lazy: only the study needs it

    c = dict(point.coords)
    rule = None if c["plasticity"] == "none" else str(c["plasticity"])
    table = dict(settings.get("plasticity_config") or {})
    table["update"] = c.get("update", "device")
    opts = GenerateOptions(
        mapping=settings.get("mapping", "all_analog"),
        device=settings.get("device", "pcm"),
        tokens=int(settings.get("tokens", 256)),
        token_time=settings.get("token_time", "1h"),
        start_age=settings.get("start_age", "1h"),
        temperature=str(c.get("temperature", "300K")),
        seed=int(point.seed),
        plasticity=rule,
        plasticity_config=table if rule is not None else None,
    )
    setup, sched = resolve_chip(opts, opts.token_time, "token_time", schedule_steps=opts.tokens)
    mapping, _, _ = chip_mapping(opts.mapping, opts.device)
    pcfg = plasticity_setup(opts, mapping)
    if loaded is None:
        loaded = load_model(c["model"], progress=False)
    targets = plasticity_targets(pcfg, mapping, loaded.model, DEFAULT_LM_TARGETS) if pcfg else []
    quality = quality_metric(loaded, max_tokens=int(settings.get("max_tokens", 512)))
    prompt = settings.get("prompt") or (settings.get("prompts") or [DEFAULT_PROMPT])[0]
    ids = _prompt_tensor(prompt, loaded.tokenizer)
    _check_context(loaded, ids, opts.tokens)
    digital = loaded.model
    with running_chip(digital, opts, setup, mapping, sched) as (am, clock):
        session = PlasticSession(am.model, pcfg, targets, opts.seed) if pcfg else None
        with session.attach() if session is not None else contextlib.nullcontext():
            result = generate_with_clock(am, ids, clock, opts.tokens, seed=opts.seed)
        with session.attach(learn=False) if session else contextlib.nullcontext():
            ppl_after = float(quality.score(am))
        first = clock.steps[0]  # the chip at the start age, held at its temperature
        am.at(setup.start_age_s, first.temperature_K)
        ppl_before = float(quality.score(am))
    dig, _ = digital_scores(digital, result.ids, result.prompt_len)
    gaps = [lp - d for lp, d in zip(result.logprobs, dig, strict=True)]
    late = gaps[-max(1, len(gaps) // 4) :]
    rows = {
        "perplexity_before": ppl_before,
        "perplexity_after": ppl_after,
        "mean_gap_nats": sum(gaps) / len(gaps),
        "late_gap_nats": sum(late) / len(late),
    }
    if session is not None:
        pm = plasticity_metrics(session)
        rows |= {k: pm[k] for k in PLASTICITY_POINT_METRICS if k in pm}
        finite = all(math.isfinite(v) for v in (*rows.values(), pm["final_adapter_norm"]))
    else:
        finite = all(math.isfinite(v) for v in rows.values())
    rows["diverged"] = float(not finite)
    return [{"metric": k, "value": v, "text": None} for k, v in rows.items()]
