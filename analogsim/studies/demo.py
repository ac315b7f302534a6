"""The offline demo study that ``make demo`` runs: a real LLM answers questions on
simulated analog chips.

SmolLM2-135M-Instruct (the built-in ``smollm2``; its weights were 4-bit Q4_1 before
dequantisation, so the digital baseline is the 4-bit model) answers a few short questions
through its chat template, greedily:

* on the all-digital chip (float, the reference; answered and scored once: it does not age);
* on simulated PCM chips with digital attention and analog MLP
  (``digital_attention_analog_mlp``) and with every weight layer analog (``all_analog``),
  read some time after programming at 27 C (300 K) or 85 C (358.15 K).

For every chip it measures held-out perplexity (the first :data:`PPL_TOKENS` held-out
tokens of :func:`analogsim.models.quality.quality_metric`) and prices each partition with
the cost model (:func:`analogsim.cost.estimate.estimate_cost`, as ``analogsim compare``
does). One converted model per partition is programmed once (seed ``seed``) and moved
through the ages with ``AnalogModel.at``.

The chips (:data:`GRID`): the time budget of ``make demo`` (about 6 minutes on 2 idle
cores, the one-time smollm2 build included) allows about six analog chip states (each
costs ~20 s to age the all-analog chip, a perplexity and the answers at ~3 tokens/s).
The hybrid partition, the one a user would build, gets all three ages at 27 C and the
worst case (1 year at 85 C); the all-analog chip, already unusable an hour after
programming, gets 1 hour and 1 year at 27 C. ``full=True`` runs every age at both
temperatures for both partitions (:data:`FULL_GRID`, about twice the time).

The run directory holds ``results.csv`` (one row per answer, perplexity and energy
estimate), ``manifest.json``, ``report.md`` (the answers side by side, one table per
question) and two plots. Rerunning with the same ``out`` resumes.
"""

from __future__ import annotations

import gc
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from analogsim.cost.attention import attention_macs_per_token
from analogsim.cost.estimate import estimate_cost
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import cards_of, load_mapping, resolve_plan
from analogsim.metrics.language import generate_samples
from analogsim.models import LoadedModel, has_chat_template, load_model, pending_build, prompt_ids
from analogsim.models.quality import quality_metric
from analogsim.report.plots import plot_metric_vs_time, plot_quality_vs_energy
from analogsim.report.rundir import RunDir, default_out
from analogsim.studies.compare import _context_tokens
from analogsim.units import ZERO_CELSIUS_K, format_time

__all__ = [
    "DEMO_COLUMNS",
    "DEMO_KEYS",
    "FULL_GRID",
    "GRID",
    "MODEL",
    "PARTITIONS",
    "QUESTIONS",
    "Chip",
    "run_demo",
]

MODEL = "smollm2"
DEVICE = "pcm"
DIGITAL = "all_digital"
HYBRID = "digital_attention_analog_mlp"
ANALOG = "all_analog"
PARTITIONS = (DIGITAL, HYBRID, ANALOG)
PARTITION_NAMES = {
    DIGITAL: "all digital",
    HYBRID: "digital attention + analog MLP",
    ANALOG: "all analog",
}
QUESTIONS = (
    "What is the capital of France?",
    "What is the chemical symbol for gold?",
    "How many days are there in a week?",
)
NEW_TOKENS = 16
"""New tokens per answer (greedy; an answer may stop earlier at the end-of-turn token)."""
PPL_TOKENS = 512
"""Held-out tokens of the perplexity (two overlapping 256-token windows and a third)."""
ROOM_K, HOT_K = 300.0, 358.15
HOUR, DAY, YEAR = 3600.0, 86400.0, 365.25 * 86400.0


@dataclass(frozen=True)
class Chip:
    """One simulated chip: a partition read ``time_s`` after programming at
    ``temperature_K`` (held there all along). The all-digital chip has neither (0, 0)."""

    mapping: str
    time_s: float = 0.0
    temperature_K: float = 0.0

    @property
    def analog(self) -> bool:
        return self.mapping != DIGITAL

    def label(self) -> str:
        """``digital attention + analog MLP, 1d, 27 C``."""
        name = PARTITION_NAMES.get(self.mapping, self.mapping)
        if not self.analog:
            return name
        return f"{name}, {format_time(self.time_s)}, {_celsius(self.temperature_K)}"

    def point(self) -> dict[str, Any]:
        return {"mapping": self.mapping, "time_s": self.time_s, "temperature_K": self.temperature_K}


GRID: tuple[Chip, ...] = (
    Chip(DIGITAL),
    *(Chip(HYBRID, t, ROOM_K) for t in (HOUR, DAY, YEAR)),
    Chip(HYBRID, YEAR, HOT_K),
    Chip(ANALOG, HOUR, ROOM_K),
    Chip(ANALOG, YEAR, ROOM_K),
)
"""The chips of ``make demo`` (why these: the module docstring)."""
FULL_GRID: tuple[Chip, ...] = (
    Chip(DIGITAL),
    *(
        Chip(m, t, temp)
        for m in (HYBRID, ANALOG)
        for temp in (ROOM_K, HOT_K)
        for t in (HOUR, DAY, YEAR)
    ),
)
"""Every partition at 1 h, 1 d and 1 y at 27 C and 85 C (``analogsim demo --full``)."""

DEMO_COLUMNS = [
    "model",
    "mapping",
    "device",
    "seed",
    "time_s",
    "temperature_K",
    "question",
    "metric",
    "value",
    "text",
]
"""``results.csv``: ``metric`` is ``perplexity``, ``answer`` (``text``: the answer,
``value``: its length in tokens), or, once per partition with empty time and temperature,
``energy_per_token_J`` and ``analog_param_share`` (the cost model's estimate)."""
DEMO_KEYS = ["mapping", "time_s", "temperature_K", "question", "metric"]


def run_demo(
    out: str | Path | None = None,
    *,
    questions: Sequence[str] = QUESTIONS,
    tokens: int = NEW_TOKENS,
    full: bool = False,
    seed: int = 0,
    progress: bool = True,
    console: Any = None,
) -> Path:
    """Ask smollm2 ``questions`` on the chips of :data:`GRID` (``full``: :data:`FULL_GRID`)
    and write the run directory (default ``runs/<timestamp>-demo``); returns its path.

    ``progress`` prints each step with the time left on stderr; ``console`` (a rich
    Console) gets each answer as it comes. Answers are ``tokens`` new tokens at most.
    """
    questions = [q.strip() for q in questions]
    if not questions or any(not q for q in questions):
        raise ConfigError("need at least one non-empty question", key="question", value=questions)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise ConfigError("need at least one new token", key="tokens", value=tokens, allowed=">= 1")
    chips = FULL_GRID if full else GRID
    root = Path(out) if out is not None else default_out("demo")
    steps = _Steps(progress)
    steps.plan("load", 25.0 if pending_build(MODEL) else 3.0)
    for key, seconds in _plan(chips, questions, tokens):
        steps.plan(key, seconds)
    steps.begin("load", f"loading {MODEL}")
    loaded = load_model(MODEL, progress=progress)
    steps.end("load")
    config = {
        "model": loaded.name,
        "weights": loaded.info.get("weights"),
        "device": DEVICE,
        "chips": [c.point() for c in chips],
        "questions": questions,
        "new_tokens": tokens,
        "perplexity_tokens": PPL_TOKENS,
        "seed": seed,
        "chat_template": has_chat_template(loaded.tokenizer),
    }
    maps = {m: load_mapping(m).with_device(None if m == DIGITAL else DEVICE) for m in PARTITIONS}
    cards: dict[str, Any] = {}
    for m in maps.values():
        cards.update(cards_of(m))
    t0 = time.perf_counter()
    with RunDir(root, "demo", config, DEMO_COLUMNS, DEMO_KEYS, cards=cards) as run:
        run.expect(len(PARTITIONS) + len(chips) * (1 + len(questions)))
        _costs(loaded, maps, run)
        todo = {c: _todo(c, questions, run) for c in chips}
        for key, _ in _plan(chips, questions, tokens):  # resumed: what is done is not planned
            if not _needed(key, todo):
                steps.drop(key)
        _measure(loaded, maps, chips, questions, todo, tokens, seed, run, steps, console)
        steps.begin(("report",), "writing report.md and plots")
        plots = _plots(run.rows, run.path)
        report = _report(run.rows, chips, questions, config, plots)
        (run.path / "report.md").write_text(report)
        run.note(
            report="report.md", plots=[p.name for p in plots], seconds=time.perf_counter() - t0
        )
        steps.end(("report",))
    return run.path


# ---------------------------------------------------------------------------- measuring
ANALOG_SHARE = {DIGITAL: 0.0, HYBRID: 0.6, ANALOG: 1.0}
"""Rough share of smollm2's weights each partition puts on the chip (for the time left)."""


def _plan(
    chips: Sequence[Chip], questions: Sequence[str], tokens: int
) -> list[tuple[tuple[Any, ...], float]]:
    """The steps of a whole run in order, with rough seconds on 2 idle cores (the time
    left is scaled by the speed of the finished steps): ``("convert", mapping)``,
    ``("age", chip)``, ``("perplexity", chip, "")``, ``("answer", chip, question)``,
    ``("report",)``."""
    out: list[tuple[tuple[Any, ...], float]] = []
    for m in PARTITIONS:
        share = ANALOG_SHARE.get(m, 1.0)
        mine = sorted((c for c in chips if c.mapping == m), key=_order)
        if m != DIGITAL and mine:
            out.append((("convert", m), 2.0 + 10.0 * share))
        for c in mine:
            if c.analog:
                out.append((("age", c), 1.0 + 20.0 * share))
            out.append((("perplexity", c, ""), 4.0 + 4.0 * share))
            out += [(("answer", c, q), tokens * (0.06 + 0.3 * share)) for q in questions]
    out.append((("report",), 3.0))
    return out


def _order(chip: Chip) -> tuple[float, float]:
    """Chips of a partition are read in order of temperature, then age."""
    return chip.temperature_K, chip.time_s


def _todo(chip: Chip, questions: Sequence[str], run: RunDir) -> list[tuple[str, str]]:
    """``(metric, question)`` points of ``chip`` not yet in ``run``."""
    points = [("perplexity", ""), *(("answer", q) for q in questions)]
    return [(k, q) for k, q in points if not run.done(**chip.point(), question=q, metric=k)]


def _needed(key: tuple[Any, ...], todo: dict[Chip, list[tuple[str, str]]]) -> bool:
    """Whether the step ``key`` of :func:`_plan` has work left (``todo``: per chip)."""
    kind = key[0]
    if kind == "report":
        return True
    if kind == "convert":
        return any(points for chip, points in todo.items() if chip.mapping == key[1])
    if kind == "age":
        return bool(todo[key[1]])
    return (kind, key[2]) in todo[key[1]]


def _costs(loaded: LoadedModel, maps: dict[str, Any], run: RunDir) -> None:
    """Energy per token and analog parameter share of each partition (the cost model, as
    ``compare`` prices it), written once per partition."""
    att = attention_macs_per_token(loaded.model, _context_tokens(loaded))
    for name, m in maps.items():
        point = {"mapping": name, "time_s": "", "temperature_K": "", "question": ""}
        if run.done(**point, metric="energy_per_token_J"):
            continue
        with warnings.catch_warnings():  # all digital is the reference: no analog layer meant
            warnings.filterwarnings("ignore", message="mapping .* places no layer analog")
            plan = resolve_plan(loaded.model, m)
        rep = estimate_cost(plan, attention_macs_per_token=att)
        row = {
            **point,
            "model": loaded.name,
            "device": "" if name == DIGITAL else DEVICE,
            "seed": "",
            "text": "",
        }
        run.write(
            [
                {**row, "metric": "energy_per_token_J", "value": rep.energy_per_token_J},
                {
                    **row,
                    "metric": "analog_param_share",
                    "value": plan.totals()["analog_param_share"],
                },
            ]
        )


def _measure(
    loaded: LoadedModel,
    maps: dict[str, Any],
    chips: Sequence[Chip],
    questions: Sequence[str],
    todo: dict[Chip, list[tuple[str, str]]],
    tokens: int,
    seed: int,
    run: RunDir,
    steps: _Steps,
    console: Any,
) -> None:
    """Perplexity and answers (the ``todo`` points) on every chip; one converted model per
    partition, programmed once and moved through the ages."""
    quality = quality_metric(loaded, max_tokens=PPL_TOKENS)
    prompts = [prompt_ids(loaded.tokenizer, q).tolist() for q in questions]
    for m in PARTITIONS:
        mine = sorted((c for c in chips if c.mapping == m and todo[c]), key=_order)
        if not mine:
            continue
        model: torch.nn.Module = loaded.model
        if m != DIGITAL:
            what = f"{PARTITION_NAMES[m]}: converting and programming the chip (seed {seed})"
            steps.begin(("convert", m), what)
            model = convert(loaded.model, maps[m]).program(seed)
            steps.end(("convert", m))
        for chip in mine:
            if chip.analog:
                steps.begin(("age", chip), f"{chip.label()}: reading the chip at this age")
                model.at(chip.time_s, chip.temperature_K)
                steps.end(("age", chip))
            for k, q in todo[chip]:
                row = {
                    **chip.point(),
                    "model": loaded.name,
                    "device": DEVICE if chip.analog else "",
                    "seed": seed if chip.analog else -1,
                    "question": q,
                    "metric": k,
                }
                if k == "perplexity":
                    steps.begin((k, chip, q), f"{chip.label()}: perplexity")
                    with torch.no_grad():
                        value = float(quality.score(model))
                    run.write([{**row, "value": value, "text": ""}])
                    steps.end((k, chip, q), f"perplexity {value:.4g}")
                    continue
                i = questions.index(q)
                steps.begin((k, chip, q), f"{chip.label()}: question {i + 1}")
                text = generate_samples(model, loaded.tokenizer, [prompts[i]], tokens)[0]
                n_new = len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
                run.write([{**row, "value": n_new, "text": text}])
                steps.end((k, chip, q))
                if console is not None:
                    console.print(
                        f"Q{i + 1} {chip.label()}: {_one_line(text)}",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
        if m != DIGITAL:
            del model  # one partition's chip in memory at a time
            gc.collect()


class _Steps:
    """Progress on stderr, one line per step: ``[3/24 0:41, ~3:10 left] what``.

    Each step has a rough cost in seconds; the time left is the cost of the steps to go
    scaled by how long the finished steps took against theirs (so a busy machine's
    estimate corrects itself after a step or two).
    """

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream
        self.cost: dict[Any, float] = {}
        self.finished: set[Any] = set()
        self.t0 = time.perf_counter()
        self.spent = 0.0  # seconds of finished steps
        self.started: float | None = None

    def plan(self, key: Any, seconds: float) -> None:
        self.cost[key] = seconds

    def drop(self, key: Any) -> None:
        """Take a planned step out (its work is already done)."""
        self.cost.pop(key, None)

    def left(self) -> float:
        done = sum(self.cost[k] for k in self.finished)
        todo = sum(v for k, v in self.cost.items() if k not in self.finished)
        return todo * (self.spent / done if done > 0 and self.spent > 0 else 1.0)

    def begin(self, key: Any, what: str) -> None:
        now = time.perf_counter()
        self.started = now
        if not self.enabled:
            return
        n = len(self.finished) + 1
        elapsed = now - self.t0
        line = f"[{n}/{len(self.cost)} {_clock(elapsed)}, ~{_clock(self.left())} left] {what}"
        print(line, file=self.stream or sys.stderr, flush=True)

    def end(self, key: Any, result: str = "") -> None:
        if self.started is not None:
            self.spent += time.perf_counter() - self.started
        self.started = None
        self.finished.add(key)
        if self.enabled and result:
            print(f"    {result}", file=self.stream or sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


# ---------------------------------------------------------------------------- report
def _celsius(kelvin: float) -> str:
    return f"{kelvin - ZERO_CELSIUS_K:.0f} C"


def _one_line(text: str) -> str:
    """An answer on one line: newlines as the return sign, outer spaces removed."""
    return " ⏎ ".join(part.strip() for part in text.strip().splitlines()) or "(empty answer)"


def _cell(text: str) -> str:
    """An answer as a Markdown table cell."""
    return _one_line(text).replace("|", "\\|")


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf"
    return f"{v:.4g}" if v < 1e5 else f"{v:.3g}"


def _index(rows: Sequence[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Rows by (mapping, time_s, temperature_K, question, metric); numbers as floats."""
    out = {}
    for r in rows:
        t = _num(r["time_s"]) if r["time_s"] != "" else ""
        temp = _num(r["temperature_K"]) if r["temperature_K"] != "" else ""
        out[(r["mapping"], t, temp, r["question"], r["metric"])] = r
    return out


def _summary(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], float | None]:
    """Perplexity per analog chip as plot summary rows (with the partition's energy per
    token), plus the all-digital chip at every (age, temperature) shown; and the digital
    perplexity."""
    idx = _index(rows)
    energy = {m: _num(r["value"]) for (m, *_, k), r in idx.items() if k == "energy_per_token_J"}
    digital = idx.get((DIGITAL, 0.0, 0.0, "", "perplexity"))
    base = _num(digital["value"]) if digital is not None else None
    summary = []
    for (m, t, temp, _, k), r in idx.items():
        if k != "perplexity" or m == DIGITAL:
            continue
        summary.append(
            dict(
                mapping=m,
                time_s=t,
                temperature_K=temp,
                metric="perplexity",
                mean=_num(r["value"]),
                std=0.0,
                energy_per_token_J=energy.get(m),
            )
        )
    if base is not None:
        for t, temp in sorted({(s["time_s"], s["temperature_K"]) for s in summary}):
            summary.append(
                dict(
                    mapping=DIGITAL,
                    time_s=t,
                    temperature_K=temp,
                    metric="perplexity",
                    mean=base,
                    std=0.0,
                    energy_per_token_J=energy.get(DIGITAL),
                )
            )
    return summary, base


def _plots(rows: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    """Perplexity against age per partition and against energy per token."""
    summary, base = _summary(rows)
    analog = [s for s in summary if s["mapping"] != DIGITAL]
    if not analog:
        return []
    return [
        plot_metric_vs_time(
            analog,
            folder / "perplexity_vs_age.png",
            metric="perplexity",
            series=("mapping",),
            baseline=base,
            title=f"{MODEL} on PCM: held-out perplexity per partition (digital: dashed)",
            log_y=True,
        ),
        plot_quality_vs_energy(
            summary,
            folder / "perplexity_vs_energy.png",
            metric="perplexity",
            baseline=base,
            title=f"{MODEL}: perplexity against estimated energy per token",
            log_y=True,
        ),
    ]


def _verdict(chips: Sequence[Chip], get: Any, base: float) -> list[str]:
    """One sentence: the analog chip closest to digital, by perplexity."""
    scored = []
    for chip in chips:
        r = get(chip, "", "perplexity") if chip.analog else None
        if r is not None and math.isfinite(_num(r["value"])):
            scored.append((_num(r["value"]), chip))
    if not scored or not math.isfinite(base) or base <= 0:
        return []
    ppl, best = min(scored, key=lambda x: x[0])
    return [
        f"**In short:** the analog chip closest to digital is {best.label()}, with"
        f" {_fmt(ppl / base)}x the digital perplexity ({_fmt(ppl)} against {_fmt(base)})."
    ]


def _report(
    rows: Sequence[dict[str, Any]],
    chips: Sequence[Chip],
    questions: Sequence[str],
    config: dict[str, Any],
    plots: Sequence[Path],
) -> str:
    """report.md from the rows of results.csv."""
    idx = _index(rows)
    energy = {m: _num(r["value"]) for (m, *_, k), r in idx.items() if k == "energy_per_token_J"}
    digital = idx.get((DIGITAL, 0.0, 0.0, "", "perplexity"))
    base = _num(digital["value"]) if digital is not None else float("nan")

    def get(chip: Chip, question: str, metric: str) -> dict[str, Any] | None:
        return idx.get(
            (chip.mapping, float(chip.time_s), float(chip.temperature_K), question, metric)
        )

    model = config["model"]
    weights = config.get("weights") or "float weights"
    template = "through its chat template" if config.get("chat_template") else "as raw text"
    lines = [
        f"# analogsim demo: {model} on simulated analog chips",
        "",
        f"What does {model} answer on an analog in-memory-computing chip, some time after the",
        f"chip was programmed, at 27 C or 85 C? Each question goes to the model {template};",
        f"the answer is decoded greedily, at most {config['new_tokens']} new tokens.",
        "",
        f"- Digital baseline: {weights}.",
        f"- Analog layers: phase-change memory (`{DEVICE}`) with the Rasch 2023 IO preset (8-bit",
        "  DAC/ADC per 512-row tile, output and read noise, global drift compensation). Each",
        f"  partition's chip is programmed once (seed {config['seed']}) at 27 C, held at the",
        "  temperature for that long and read there.",
        "- Chips: " + "; ".join(c.label() for c in chips) + ". The all-digital chip does not",
        "  age: it is answered and scored once.",
        "",
        *_verdict(chips, get, base),
        "",
        "## The answers",
        "",
    ]
    for i, q in enumerate(questions):
        lines += [f"### {i + 1}. {q}", "", "| chip | answer |", "|---|---|"]
        for chip in chips:
            r = get(chip, q, "answer")
            lines.append(f"| {chip.label()} | {'' if r is None else _cell(r['text'])} |")
        lines.append("")
    lines += [
        "## Perplexity and energy per token",
        "",
        f"Held-out perplexity on the first {config['perplexity_tokens']} held-out tokens of the",
        "Python help text (lower is better), and the energy per token the cost model estimates",
        "for each partition (batch-1 decoding, digital weights read from SRAM, fp16 digital",
        "arithmetic; `docs/cost.md`): compare partitions with it, do not read it as a chip",
        "measurement.",
        "",
        *(f"![{p.stem}]({p.name})" for p in plots),
        "",
        "| partition | age | T | perplexity | x digital | energy/token | analog share |",
        "|---|---|---|---|---|---|---|",
    ]
    shares = {m: _num(r["value"]) for (m, *_, k), r in idx.items() if k == "analog_param_share"}
    for chip in chips:
        r = get(chip, "", "perplexity")
        ppl = _num(r["value"]) if r is not None else float("nan")
        ratio = ppl / base if base and math.isfinite(base) else float("nan")
        e = energy.get(chip.mapping)
        lines.append(
            "| "
            + " | ".join(
                [
                    PARTITION_NAMES.get(chip.mapping, chip.mapping),
                    format_time(chip.time_s) if chip.analog else "-",
                    _celsius(chip.temperature_K) if chip.analog else "-",
                    "" if r is None else _fmt(ppl),
                    "" if r is None else _fmt(ratio),
                    "" if e is None else f"{e * 1e6:.3g} uJ",
                    "" if chip.mapping not in shares else f"{shares[chip.mapping]:.0%}",
                ]
            )
            + " |"
        )
    lines += [
        "",
        "## Reading the results",
        "",
        "- An analog weight is a programmed conductance: it is written with an error, drifts",
        "  after programming (faster when hot: Arrhenius-accelerated drift age) and is read",
        "  through a DAC, a noisy tile and an ADC. Global drift compensation corrects drift",
        "  only on average.",
        "- Where the quality goes, per layer and per non-ideality, and what fixes it:",
        f"  `analogsim attribute {model} --mapping {HYBRID} --device {DEVICE} --age 1d`.",
        f"- Your own question: `analogsim generate {model} --mapping {HYBRID} --device {DEVICE}",
        "  --start-age 1d --prompt '...' --tokens 20`; more ages and temperatures:",
        "  `analogsim demo --full`; other partitions and what-ifs: `analogsim compare`.",
        "",
        "Every number here is in `results.csv` (one row per answer, perplexity and energy",
        "estimate); configuration, versions, device cards and git revision: `manifest.json`.",
        "",
    ]
    return "\n".join(lines)
