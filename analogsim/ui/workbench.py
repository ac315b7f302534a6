"""The workbench behind ``analogsim ui``: one loaded model, one chip, and every action of
the page as plain Python over the same API the command line calls (no Gradio here;
:mod:`analogsim.ui.app` draws the page).

The chip is converted and programmed once per *structure* (mapping, device, tile
settings, seed) from a copy of the digital model, so the digital model and the chip
answer side by side. Moving the age or temperature slider only re-states it
(:meth:`AnalogModel.at <analogsim.mapping.analog_model.AnalogModel.at>`: the programmed
state is kept, the conductances are recomputed at the new ages), the cheapest path the
API has; statistical noise is re-applied on top (:class:`~analogsim.mapping.perturb.WeightNoise`).

Actions and the API they call:

* placement table: :func:`analogsim.mapping.rules.resolve_plan` (as ``analogsim map``);
* Talk: Hugging Face ``generate`` of the digital model and of the chip, greedy, with the
  shared :func:`analogsim.clock.hook.generation_config`; the digital model's
  teacher-forced view of the chip's answer scores each chip token;
* save run: :func:`analogsim.studies.generate.run_generate` (as ``analogsim generate``);
* Age while it talks: :func:`~analogsim.studies.generate.run_generate` with a token time
  and a temperature profile (event clock, trace, cliff detector);
* Compare: :func:`analogsim.studies.compare.run_compare` in a
  :class:`~analogsim.report.rundir.RunDir` with the configuration ``analogsim compare``
  writes, and its two plots;
* Device: :func:`analogsim.studies.evaluate.device_datasheet` and
  :func:`analogsim.report.plots.plot_datasheet` (as ``analogsim device show --plot``).
"""

from __future__ import annotations

import math
import queue
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from analogsim.clock.hook import generation_config
from analogsim.devices import list_devices, load_device
from analogsim.devices.noise import list_noises
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import AnalogModel
from analogsim.mapping.convert import convert
from analogsim.mapping.perturb import WeightNoise
from analogsim.mapping.roles import ROLES
from analogsim.mapping.rules import Mapping, cards_of, list_mappings, load_mapping, resolve_plan
from analogsim.models import LoadedModel, load_model, prompt_ids
from analogsim.models.quality import DEFAULT_MAX_TOKENS
from analogsim.report.plots import plot_datasheet, plot_metric_vs_time, plot_quality_vs_energy
from analogsim.report.rundir import RunDir, default_out
from analogsim.studies.clocked import parse_noise_schedule
from analogsim.studies.compare import COMPARE_COLUMNS, COMPARE_KEYS, run_compare
from analogsim.studies.evaluate import device_datasheet
from analogsim.studies.generate import run_generate
from analogsim.tiles.config import TileConfig
from analogsim.units import (
    TEMPERATURE_RANGE_K,
    ZERO_CELSIUS_K,
    check_temperature_K,
    check_time_s,
    format_time,
    parse_temperatures,
    parse_time,
    parse_times,
)

__all__ = [
    "IDEAL_TILE",
    "TILE_FIELDS",
    "ChipSettings",
    "TalkResult",
    "TalkStep",
    "Workbench",
    "profile_text",
]

#: The tile settings the Chip panel shows (the rest keep the mapping's values).
TILE_FIELDS = ("dac_bits", "adc_bits", "out_noise", "read_noise", "drift_compensation")
#: Every input/output non-ideality off: with the ideal card, the chip equals the digital model.
IDEAL_TILE = {
    "dac_bits": 0,
    "adc_bits": 0,
    "out_noise": 0.0,
    "read_noise": 0.0,
    "drift_compensation": "none",
}
TOP_K = 5
PROFILES = ("constant", "ramp", "sine")


@dataclass(frozen=True)
class ChipSettings:
    """What the Chip panel sets.

    Attributes:
        mapping: a shipped mapping name or a path to a mapping TOML.
        device: the card for every analog placement (None: the mapping's own).
        tile: tile settings that replace the mapping's (None: the mapping's own).
        age_s: time since programming, s (the chip was held at ``temperature_K`` all along).
        temperature_K: temperature, K.
        noise: a registered statistical noise (None: none), ``sigma`` its scale (relative
            to each layer's weight std with ``relative``), on ``noise_roles``.
        seed: programs the chip and draws the statistical noise.
    """

    mapping: str = "all_analog"
    device: str | None = None
    tile: dict[str, Any] | None = None
    age_s: float = 3600.0
    temperature_K: float = 300.0
    noise: str | None = None
    sigma: float = 0.0
    noise_roles: tuple[str, ...] | None = None
    relative: bool = False
    seed: int = 0

    def structure(self) -> tuple[Any, ...]:
        """What needs a new conversion and programming when it changes."""
        return (self.mapping, self.device, tuple(sorted((self.tile or {}).items())), self.seed)

    def noise_key(self) -> tuple[Any, ...]:
        return (self.noise, self.sigma, self.noise_roles, self.relative, self.seed)

    def check(self) -> ChipSettings:
        """Every value checked (one :class:`ConfigError` naming it) before any work."""
        check_time_s(self.age_s, "age")
        check_temperature_K(self.temperature_K, "temperature")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("must be an integer >= 0", key="seed", value=self.seed)
        if self.device is not None:
            load_device(self.device)
        if self.tile:
            TileConfig().replace(**self.tile)  # validates every setting
        if self.noise is not None:
            if not math.isfinite(self.sigma) or self.sigma < 0:
                raise ConfigError("must be finite and >= 0", key="sigma", value=self.sigma)
            parse_noise_schedule(self.noise, f"{self.sigma!r}", 1)
            for r in self.noise_roles or ():
                if r not in ROLES:
                    raise ConfigError(
                        "unknown role", key="noise roles", value=r, allowed=", ".join(ROLES)
                    )
            if self.noise_roles is not None and not self.noise_roles:
                raise ConfigError(
                    "statistical noise needs at least one role",
                    key="noise roles",
                    allowed=", ".join(ROLES),
                )
        return self

    def describe(self) -> str:
        """``all_analog on pcm, 1y at 85 C, seed 0``."""
        dev = f" on {self.device}" if self.device else ""
        tile = " (tile overridden)" if self.tile else ""
        noise = f", {self.noise} sigma {self.sigma:g}" if self.noise else ""
        return (
            f"{self.mapping}{dev}{tile}, {format_time(self.age_s)} at "
            f"{self.temperature_K - ZERO_CELSIUS_K:.4g} C{noise}, seed {self.seed}"
        )


def profile_text(
    kind: str,
    t_low_C: float,
    t_high_C: float,
    period: str,
    *,
    start_age_s: float = 0.0,
    held_K: float | None = None,
) -> str:
    """The temperature profile of the Age panel in the command-line form of
    :func:`analogsim.clock.profile_spec.parse_profile`.

    A profile runs on deployment time since programming, so a chip that starts at
    ``start_age_s`` (> 0) is held at ``held_K`` (the Chip panel's temperature) until then
    and the chosen profile starts there: ``31557600s=358.15K+ramp:300.15K:358.15K:1d``.
    """
    lo = f"{t_low_C + ZERO_CELSIUS_K:g}K"
    hi = f"{t_high_C + ZERO_CELSIUS_K:g}K"
    if kind == "constant":
        term = lo
    elif kind in PROFILES:
        term = f"{kind}:{lo}:{hi}:{period.strip()}"
    else:
        raise ConfigError(
            "unknown temperature profile", key="profile", value=kind, allowed=", ".join(PROFILES)
        )
    if start_age_s > 0 and held_K is not None:
        # fixed-point seconds: an exponent's '+' would split the sequence
        return f"{start_age_s:.6f}s={held_K:g}K+{term}"
    return term


@dataclass
class TalkStep:
    """One generated token: its text, log-probability (nats), entropy (bits) and the top-5
    ``(text, probability)`` of the model that produced it."""

    token: int
    text: str
    logprob: float
    entropy_bits: float
    top: list[tuple[str, float]]


@dataclass
class TalkResult:
    """Both answers; ``digital_view[k]``: the digital model's logprob of chip token ``k``,
    its gap to the digital model's own choice (nats, >= 0) and its top-5, teacher forced
    on the chip's answer up to ``k`` (filled once the chip has finished)."""

    digital: list[TalkStep] = field(default_factory=list)
    chip: list[TalkStep] = field(default_factory=list)
    digital_view: list[dict[str, Any]] = field(default_factory=list)
    digital_done: bool = False
    chip_done: bool = False
    first_token_s: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return [s.token for s in self.digital] == [s.token for s in self.chip]


class _Steps(LogitsProcessor):
    """Records each greedy step (token, logprob, entropy, top-5) and reports it at once."""

    def __init__(
        self, report: Callable[[int, float, float, list[tuple[int, float]]], None]
    ) -> None:
        self.report = report

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(scores[0].double(), dim=-1)  # (V,)
        tok = int(torch.argmax(scores[0]))  # generate's greedy choice on unchanged scores
        ent = float(torch.special.entr(logp.exp()).nansum() / math.log(2.0))
        top = torch.topk(logp, min(TOP_K, logp.numel()))
        self.report(
            tok,
            float(logp[tok]),
            ent,
            [(int(i), math.exp(float(v))) for v, i in zip(top.values, top.indices, strict=True)],
        )
        return scores


class Workbench:
    """One model and its chip, shared by every panel of the page.

    Args:
        model: a model name for :func:`analogsim.models.load_model` or a ``LoadedModel``.
        runs: folder for run directories (``runs/<timestamp>-<command>`` as the CLI).
    """

    def __init__(self, model: str | LoadedModel, *, runs: str | Path = "runs") -> None:
        self.loaded = model if isinstance(model, LoadedModel) else load_model(model)
        self.runs = Path(runs)
        # a plain Lock, not an RLock: Gradio may run the steps of one streaming handler
        # on different threads, so the thread that releases may not be the one that took it
        self.lock = threading.Lock()
        self._chip: AnalogModel | None = None
        self._structure: tuple[Any, ...] | None = None
        self._state: tuple[float, float] | None = None
        self._noise: WeightNoise | None = None
        self._noise_key: tuple[Any, ...] | None = None
        self.last_restate_s: float | None = None
        self.last_build_s: float | None = None
        self.last_talk: TalkResult | None = None
        self.last_talk_args: tuple[ChipSettings, str, int] | None = None

    # ------------------------------------------------------------------ choices
    @property
    def name(self) -> str:
        return self.loaded.name

    @staticmethod
    def mappings() -> list[str]:
        return list_mappings()

    @staticmethod
    def devices() -> list[str]:
        return list_devices()

    @staticmethod
    def noises() -> list[str]:
        return list_noises()

    @staticmethod
    def tile_defaults() -> dict[str, Any]:
        t = TileConfig()
        return {k: getattr(t, k) for k in TILE_FIELDS}

    def set_model(self, name: str) -> None:
        """Load another model (:func:`analogsim.models.load_model`); the chip is rebuilt
        on the next action that needs it."""
        loaded = load_model(name)
        with self.lock:
            self._release()
            self.loaded = loaded
            self.last_talk = self.last_talk_args = None

    # ------------------------------------------------------------------ chip
    def mapping(self, s: ChipSettings) -> Mapping:
        """The mapping of ``s`` with its device and tile settings applied."""
        m = load_mapping(s.mapping).with_device(s.device)
        return m.with_tile(**s.tile) if s.tile else m

    def placement(self, s: ChipSettings) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Rows (layer, role, placement, device, tiles, rule) and totals, as ``analogsim map``."""
        plan = resolve_plan(self.loaded.model, self.mapping(s))
        rows = []
        for p in plan.layers:
            place = p.placement + (f" int{p.quantizer.bits}" if p.quantizer else "")
            rows.append(
                {
                    "layer": p.name,
                    "role": p.role,
                    "placement": place,
                    "device": p.device.name if p.device else "",
                    "tiles": p.tiles(),
                    "rule": p.rule,
                }
            )
        return rows, plan.totals()

    def device_cards(self, s: ChipSettings) -> dict[str, Any]:
        """The device cards the chip uses, by name (as the run directory records them)."""
        return cards_of(self.mapping(s), s.device)

    def chip(self, s: ChipSettings) -> AnalogModel:
        """The chip of ``s``: converted and programmed only when its structure changed,
        re-stated when its age or temperature changed, noise re-applied when needed."""
        with self.lock:
            return self._chip_of(s)

    def _chip_of(self, s: ChipSettings) -> AnalogModel:
        """:meth:`chip` with the lock held by the caller."""
        s.check()
        if self._chip is None or self._structure != s.structure():
            mapping = self.mapping(s)
            t0 = time.perf_counter()
            self._release()
            am = convert(self.loaded.model, mapping)  # a copy: the digital model stays
            am.program(s.seed)
            am.enable_time_cache()
            self._chip, self._structure = am, s.structure()
            self.last_build_s = time.perf_counter() - t0
        self._restate(s)
        self._apply_noise(s)
        return self._chip

    def restate(self, s: ChipSettings) -> float | None:
        """Move the built chip to ``s``'s age and temperature (the slider path): seconds
        taken, or None when no chip of this structure is built yet (it is built on the
        next action that needs it)."""
        s.check()
        with self.lock:
            if self._chip is None or self._structure != s.structure():
                return None
            t0 = time.perf_counter()
            self._restate(s)
            self._apply_noise(s)
            return time.perf_counter() - t0

    def _restate(self, s: ChipSettings) -> None:
        state = (float(s.age_s), float(s.temperature_K))
        if self._state == state:
            return
        t0 = time.perf_counter()
        assert self._chip is not None
        self._chip.at(*state)
        self._state = state
        self.last_restate_s = time.perf_counter() - t0
        if self._noise is not None:
            self._noise.refresh()  # the clean effective weights moved
            self._noise_key = None

    def _apply_noise(self, s: ChipSettings) -> None:
        assert self._chip is not None
        want = s.noise_key() if s.noise else None
        if want == self._noise_key:
            return
        if self._noise is not None:
            self._noise.restore()
            self._noise = None
        if s.noise:
            analog = any(True for _ in self._chip.analog_layers())
            wn = WeightNoise(
                self._chip if analog else self._chip.model,
                parse_noise_schedule(s.noise, f"{s.sigma!r}", 1),
                s.noise,
                s.seed,
                relative=s.relative,
                roles=s.noise_roles,
                analog=analog,
            )
            wn.refresh()
            wn.apply(0, force=True)
            self._noise = wn
        self._noise_key = want

    def _release(self) -> None:
        self._chip = self._structure = self._state = None
        self._noise = self._noise_key = None

    # ------------------------------------------------------------------ talk
    def _prompt(self, prompt: str) -> torch.Tensor:
        tok = self.loaded.tokenizer
        if self.loaded.kind != "causal-lm" or tok is None:
            raise ConfigError(
                "Talk needs a causal language model with a tokenizer",
                key="model",
                value=self.name,
                allowed="smollm2, tiny-gpt2 or a Hugging Face causal LM folder",
            )
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError("ask something: the prompt is empty", key="prompt", value=prompt)
        return prompt_ids(tok, prompt).view(1, -1)

    def piece(self, ids: Sequence[int], k: int) -> str:
        """Text that token ``k`` adds to ``ids[:k]`` (whole characters of byte-level BPE)."""
        tok = self.loaded.tokenizer
        return (
            tok.decode(list(ids[: k + 1]))
            if k == 0
            else (tok.decode(list(ids[: k + 1]))[len(tok.decode(list(ids[:k]))) :])
        )

    def _top(self, top: list[tuple[int, float]]) -> list[tuple[str, float]]:
        tok = self.loaded.tokenizer
        return [(tok.decode([i]), p) for i, p in top]

    def talk(self, s: ChipSettings, prompt: str, tokens: int = 24) -> Iterator[TalkResult]:
        """Ask the digital model and the chip the same prompt; yields the growing
        :class:`TalkResult` as tokens arrive (both generate at once, greedy, stopping at
        the end-of-text token), and finally with ``digital_view`` filled."""
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise ConfigError("need at least one token", key="tokens", value=tokens, allowed=">= 1")
        ids = self._prompt(prompt)
        ctx = getattr(
            getattr(self.loaded.model, "config", None), "max_position_embeddings", 0
        ) or getattr(getattr(self.loaded.model, "config", None), "n_positions", 0)
        if ctx and ids.shape[1] + tokens > ctx:
            raise ConfigError(
                f"prompt ({ids.shape[1]} tokens) + new tokens exceed the model's context of {ctx}",
                key="tokens",
                value=tokens,
                allowed=f"<= {ctx - ids.shape[1]} with this prompt",
            )
        with self.lock:
            chip = self._chip_of(s)
            tok = self.loaded.tokenizer
            eos = getattr(tok, "eos_token_id", None)
            gc = generation_config(tokens, stop_at_eos=eos is not None, eos=eos)
            events: queue.Queue[tuple[str, Any]] = queue.Queue()
            res = TalkResult()

            def run(side: str, model: torch.nn.Module) -> None:
                t0 = time.perf_counter()

                def report(token: int, lp: float, ent: float, top: list[tuple[int, float]]) -> None:
                    if side not in res.first_token_s:
                        res.first_token_s[side] = time.perf_counter() - t0
                    events.put((side, (token, lp, ent, top)))

                try:
                    with torch.no_grad():
                        model.generate(
                            input_ids=ids,
                            attention_mask=torch.ones_like(ids),
                            generation_config=gc,
                            logits_processor=LogitsProcessorList([_Steps(report)]),
                        )
                    res.seconds[side] = time.perf_counter() - t0
                    events.put((side, None))
                except BaseException as exc:  # shown in the page by the caller
                    events.put((side, exc))

            threads = [
                threading.Thread(target=run, args=("digital", self.loaded.model), daemon=True),
                threading.Thread(target=run, args=("chip", chip.model), daemon=True),
            ]
            for t in threads:
                t.start()
            done = 0
            ids_by = {"digital": [], "chip": []}
            while done < 2:
                side, item = events.get()
                if item is None:
                    done += 1
                    setattr(res, f"{side}_done", True)
                elif isinstance(item, BaseException):
                    for t in threads:
                        t.join()
                    raise item
                else:
                    token, lp, ent, top = item
                    ids_by[side].append(token)
                    k = len(ids_by[side]) - 1
                    step = TalkStep(token, self.piece(ids_by[side], k), lp, ent, self._top(top))
                    getattr(res, side).append(step)
                yield res
            for t in threads:
                t.join()
            res.digital_view = self._digital_view(ids, ids_by["chip"])
        self.last_talk = res
        self.last_talk_args = (s, prompt, tokens)
        yield res

    @torch.no_grad()
    def _digital_view(self, ids: torch.Tensor, chip_tokens: list[int]) -> list[dict[str, Any]]:
        """The digital model teacher forced on the chip's answer: per chip token its
        logprob, the gap to the digital model's own choice, and its top-5."""
        if not chip_tokens:
            return []
        full = torch.cat([ids, torch.tensor([chip_tokens], dtype=torch.long)], dim=1)
        p = ids.shape[1]
        out = self.loaded.model(input_ids=full, use_cache=False)
        logits = out.logits if hasattr(out, "logits") else out[0]  # (1, L, V)
        logp = torch.log_softmax(logits[0, p - 1 : -1].double(), dim=-1)  # (n, V)
        rows = []
        for k, t in enumerate(chip_tokens):
            top = torch.topk(logp[k], min(TOP_K, logp.shape[1]))
            lp = float(logp[k, t])
            rows.append(
                {
                    "logprob": lp,
                    "gap_nats": float(top.values[0]) - lp,
                    "top": self._top(
                        [
                            (int(i), math.exp(float(v)))
                            for v, i in zip(top.values, top.indices, strict=True)
                        ]
                    ),
                }
            )
        return rows

    def save_talk(self, tokens_time: str = "1s") -> dict[str, Any]:
        """Write the last Talk as ``analogsim generate`` writes it (the chip's answer with
        token k at age + k * ``tokens_time``): the run directory and its command line."""
        if self.last_talk_args is None:
            raise ConfigError("nothing to save yet: ask a question first", key="save run")
        s, prompt, tokens = self.last_talk_args
        return self.age_run(
            s, prompt, tokens, tokens_time, f"{s.temperature_K:g}K", start_age_s=s.age_s
        )

    # ------------------------------------------------------------------ age while it talks
    def age_run(
        self,
        s: ChipSettings,
        prompt: str,
        tokens: int,
        token_time: str,
        profile: str,
        *,
        start_age_s: float | None = None,
        streamer: Any = None,
        out: str | Path | None = None,
    ) -> dict[str, Any]:
        """``analogsim generate`` on the chip of ``s`` with the event clock: token ``k``
        at ``start_age + k * token_time`` under the temperature ``profile``. Returns
        :func:`run_generate`'s result and ``"command"``: the equivalent command line."""
        s.check()
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError("ask something: the prompt is empty", key="prompt", value=prompt)
        parse_time(token_time, key="token time")
        mapping: Any = self.mapping(s) if s.tile else s.mapping
        age = s.age_s if start_age_s is None else start_age_s
        out = out if out is not None else default_out("generate", self.runs)
        with self.lock:
            self._release()  # run_generate converts the digital model in place, then restores it
            res = run_generate(
                self.loaded,
                prompt=prompt,
                tokens=int(tokens),
                token_time=token_time,
                start_age=age,
                temperature=profile,
                mapping=mapping,
                device=s.device,
                seed=s.seed,
                noise=s.noise,
                schedule=f"{s.sigma!r}" if s.noise else None,
                relative=s.relative,
                noise_roles=s.noise_roles,
                stop_at_eos=True,
                out=out,
                streamer=streamer,
            )
        res["command"] = self._generate_command(
            s, prompt, tokens, token_time, profile, age, res["run_dir"]
        )
        return res

    def _generate_command(
        self,
        s: ChipSettings,
        prompt: str,
        tokens: int,
        token_time: str,
        profile: str,
        age_s: float,
        out: Path,
    ) -> str:
        parts = ["analogsim generate", self.name, "--mapping", s.mapping]
        if s.device:
            parts += ["--device", s.device]
        parts += [
            "--prompt",
            shlex.quote(prompt),
            "--tokens",
            str(tokens),
            "--token-time",
            token_time,
            "--start-age",
            f"{age_s:g}",
            "--temperature",
            profile,
            "--seed",
            str(s.seed),
            "--stop-at-eos",
        ]
        if s.noise:
            parts += ["--noise", s.noise, "--schedule", f"{s.sigma!r}"]
            if s.relative:
                parts.append("--relative")
            if s.noise_roles:
                parts += ["--noise-roles", ",".join(s.noise_roles)]
        parts += ["--out", str(out)]
        if s.tile:  # a shell comment at the end: generate takes tiles from a mapping file
            parts.append("# tile settings " + ", ".join(f"{k}={v}" for k, v in s.tile.items()))
        return " ".join(parts)

    # ------------------------------------------------------------------ compare
    def compare(
        self,
        mappings: Sequence[str],
        device: str | None,
        times: str,
        temperatures: str,
        seeds: int,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        *,
        out: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """``analogsim compare`` (same run directory: results.csv, manifest.json, the two
        plots): partitions over age and temperature. ``progress(done, total)`` is called
        while it runs (points finished)."""
        if not mappings:
            raise ConfigError("choose at least one partition", key="partitions")
        maps = [load_mapping(n) for n in mappings]
        tlist = parse_times(times, key="ages")
        temps = parse_temperatures(temperatures, key="temperatures")
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ConfigError("must be an integer >= 1", key="seeds", value=seeds)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
            raise ConfigError("must be an integer >= 2", key="tokens", value=max_tokens)
        if device is not None:
            load_device(device)
        # the configuration `analogsim compare` records (analogsim/cli/studies.py)
        config = {
            "model": self.name,
            "mappings": [m.name for m in maps],
            "device": device,
            "times_s": tlist,
            "temperatures_K": temps,
            "seeds": list(range(seeds)),
            "vary": None,
            "precision": "fp16",
            "weight_memory": "sram",
            "costs": None,
            "text": None,
            "max_tokens": max_tokens,
        }
        cards: dict[str, Any] = {}
        for m in maps:
            cards.update(cards_of(m, device))
        out = out if out is not None else default_out("compare", self.runs)
        box: dict[str, Any] = {}

        def work() -> None:
            # the run directory's journal belongs to the thread that opens it
            try:
                with RunDir(
                    out, "compare", config, COMPARE_COLUMNS, COMPARE_KEYS, cards=cards
                ) as run:
                    box["run"] = run
                    res = run_compare(
                        self.loaded,
                        maps,
                        device=device,
                        times=tlist,
                        temperatures=temps,
                        seeds=seeds,
                        run=run,
                        progress=False,
                        max_tokens=max_tokens,
                    )
                    res["plots"] = self._compare_plots(res, run.path)
                    run.note(
                        summary=res["summary"],
                        costs=res["costs"],
                        digital=res["digital"],
                        context_tokens=res["context_tokens"],
                        attention_macs_per_token=res["attention_macs_per_token"],
                    )
                    res["run_dir"] = run.path
                    box["res"] = res
            except BaseException as exc:  # raised again in the caller's thread
                box["exc"] = exc

        with self.lock:
            self._release()
            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(0.25)
                run = box.get("run")
                if progress is not None and run is not None and run.expected:
                    progress(run.points, run.expected)
        if "exc" in box:
            raise box["exc"]
        return box["res"]

    def _compare_plots(self, res: dict[str, Any], folder: Path) -> list[Path]:
        """The two plots ``analogsim compare`` draws."""
        metric = res["metric"]
        log_y = metric == "perplexity"
        return [
            plot_metric_vs_time(
                res["summary"],
                folder / f"{metric}_vs_time.png",
                metric=metric,
                series=("mapping",),
                baseline=res["digital"],
                title=f"{self.name}: {metric} per partition",
                log_y=log_y,
            ),
            plot_quality_vs_energy(
                res["summary"],
                folder / f"{metric}_vs_energy.png",
                metric=metric,
                baseline=res["digital"],
                title=f"{self.name}: {metric} against estimated energy per token",
                log_y=log_y,
            ),
        ]

    # ------------------------------------------------------------------ device
    def datasheet(
        self,
        card: str,
        levels: str,
        times: str,
        temperatures: str,
        samples: int,
        seed: int,
        out_dir: str | Path,
    ) -> tuple[list[dict[str, Any]], Path]:
        """The datasheet of ``card`` (``analogsim device show --plot``): rows and the PNG."""
        dev = load_device(card)
        lv = []
        for x in [v for v in str(levels).split(",") if v.strip()]:
            try:
                lv.append(float(x))
            except ValueError:
                raise ConfigError(
                    "not a number", key="levels", value=x, allowed="g_rel in [0, 1], e.g. 0.1,0.5,1"
                ) from None
        if not lv:
            raise ConfigError(
                "need at least one level", key="levels", value=levels, allowed="e.g. 0.1,0.5,1"
            )
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 100:
            raise ConfigError("must be an integer >= 100", key="samples", value=samples)
        temps = parse_temperatures(temperatures, key="temperatures")
        rows = device_datasheet(
            dev, lv, parse_times(times, key="ages"), temps, samples=samples, seed=seed
        )
        path = Path(out_dir) / f"datasheet-{dev.name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_datasheet(rows, path, title=f"{dev.name} datasheet")
        return rows, path


def temperature_limits_C() -> tuple[float, float]:
    """The allowed temperatures (:data:`~analogsim.units.TEMPERATURE_RANGE_K`) in degrees C."""
    lo, hi = TEMPERATURE_RANGE_K
    return lo - ZERO_CELSIUS_K, hi - ZERO_CELSIUS_K
