"""The page of ``analogsim ui``: five panels (Chip, Talk, Age while it talks, Compare,
Device) over one :class:`~analogsim.ui.workbench.Workbench`.

Gradio is the convention for ML demos (and what the public noisy-LLM study shipped);
every handler here only turns widget values into the workbench's arguments and its
results into widget values. analogsim's errors (and any other exception) become one
message in the page (:class:`gradio.Error`), never a traceback.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from analogsim.clock.profile_spec import parse_profile
from analogsim.errors import AnalogsimError
from analogsim.mapping.roles import ROLES
from analogsim.models import builtin_models
from analogsim.ui.workbench import (
    IDEAL_TILE,
    PROFILES,
    TILE_FIELDS,
    ChipSettings,
    TalkResult,
    Workbench,
    profile_text,
    temperature_limits_C,
)
from analogsim.units import ZERO_CELSIUS_K, format_time, parse_time

__all__ = ["AGE_MAX_LOG10_S", "build_app", "serve"]

#: The age slider runs over log10(seconds) from 1 s to 10 years.
AGE_MAX_LOG10_S = round(math.log10(10 * 365.25 * 86400.0), 2)
#: Default age: one year (log10 s).
AGE_DEFAULT = round(math.log10(365.25 * 86400.0), 2)
NO_DEVICE = "(the mapping's)"
NO_NOISE = "none"
#: The gap (nats) at which a chip token is shaded fully.
GAP_FULL_NATS = 5.0
DEFAULT_PROMPT = "What is an analog in-memory computing chip?"


def _message(exc: BaseException) -> str:
    """The page's message for ``exc``, also printed as one line on the server's stderr."""
    text = str(exc) if isinstance(exc, AnalogsimError) else f"{type(exc).__name__}: {exc}"
    print(f"error: {text}", file=sys.stderr, flush=True)
    return text


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with every exception shown as one message in the page (no traceback)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise gr.Error(_message(exc), print_exception=False) from None

        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise gr.Error(_message(exc), print_exception=False) from None

    return call


def age_seconds(log10_s: float) -> float:
    return float(10.0 ** float(log10_s))


def _int(value: Any, key: str) -> int:
    """A whole number from a Number widget (None or 2.5 is refused with the key named)."""
    if value is None or float(value) != int(value):
        from analogsim.errors import ConfigError

        raise ConfigError("must be a whole number", key=key, value=value)
    return int(value)


def chip_settings(
    mapping: str,
    device: str,
    override: bool,
    dac_bits: Any,
    adc_bits: Any,
    out_noise: Any,
    read_noise: Any,
    compensation: str,
    age_log10: float,
    temperature_C: float,
    noise: str,
    sigma: Any,
    roles: list[str],
    relative: bool,
    seed: Any,
) -> ChipSettings:
    """The Chip panel's widgets as :class:`ChipSettings` (checked)."""
    tile = None
    if override:
        tile = {
            "dac_bits": _int(dac_bits, "DAC bits"),
            "adc_bits": _int(adc_bits, "ADC bits"),
            "out_noise": float(out_noise if out_noise is not None else math.nan),
            "read_noise": float(read_noise if read_noise is not None else math.nan),
            "drift_compensation": compensation,
        }
    return ChipSettings(
        mapping=mapping,
        device=None if device in (None, "", NO_DEVICE) else device,
        tile=tile,
        age_s=age_seconds(age_log10),
        temperature_K=float(temperature_C) + ZERO_CELSIUS_K,
        noise=None if noise in (None, "", NO_NOISE) else noise,
        sigma=float(sigma if sigma is not None else math.nan),
        noise_roles=tuple(roles or ()),
        relative=bool(relative),
        seed=_int(seed, "seed"),
    ).check()


def _answer(steps: list[Any], gaps: list[float] | None = None) -> list[tuple[str, Any]]:
    """HighlightedText value: each token with its shade (gap / GAP_FULL_NATS, at most 1)."""
    out: list[tuple[str, Any]] = []
    for k, s in enumerate(steps):
        shade = None
        if gaps is not None and k < len(gaps):
            shade = round(min(gaps[k] / GAP_FULL_NATS, 1.0), 3)
        out.append((s.text if s.text else "\u2400", shade))
    return out


def _trace_frame(res: TalkResult) -> pd.DataFrame:
    rows = []
    for k, s in enumerate(res.chip):
        rows.append({"token": k, "value": s.logprob, "series": "chip logprob (nats)"})
        rows.append({"token": k, "value": s.entropy_bits, "series": "chip entropy (bits)"})
        if k < len(res.digital_view):
            rows.append(
                {
                    "token": k,
                    "value": res.digital_view[k]["logprob"],
                    "series": "digital logprob of chip token",
                }
            )
    for k, s in enumerate(res.digital):
        rows.append({"token": k, "value": s.entropy_bits, "series": "digital entropy (bits)"})
    return pd.DataFrame(rows, columns=["token", "value", "series"])


def build_app(wb: Workbench) -> gr.Blocks:
    """The page over ``wb``."""
    tile0 = wb.tile_defaults()
    t_lo, t_hi = temperature_limits_C()
    plots_dir = Path(tempfile.mkdtemp(prefix="analogsim-ui-"))

    with gr.Blocks(title="analogsim workbench") as demo:
        gr.Markdown(
            f"## analogsim workbench: **{Path(wb.name).name or wb.name}** on a simulated analog chip\n"
            "Set the chip, ask it something next to the digital model, let it age while it "
            "talks, compare partitions, read a device's datasheet."
        )
        chip_status = gr.Markdown(
            "chip: not built yet (built on the first question)", elem_id="chip-status"
        )
        with gr.Tabs():
            # ---------------------------------------------------------------- Chip
            with gr.Tab("Chip", id="chip"):
                with gr.Row():
                    model = gr.Dropdown(
                        sorted({*builtin_models(), wb.name}),
                        value=wb.name,
                        label="model",
                        allow_custom_value=True,
                        elem_id="model",
                    )
                    mapping = gr.Dropdown(
                        wb.mappings(), value="all_analog", label="mapping", elem_id="mapping"
                    )
                    device = gr.Dropdown(
                        [NO_DEVICE, *wb.devices()],
                        value=NO_DEVICE,
                        label="device card",
                        elem_id="device",
                    )
                    seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
                with gr.Row():
                    age = gr.Slider(
                        0.0,
                        AGE_MAX_LOG10_S,
                        value=AGE_DEFAULT,
                        step=0.01,
                        label="chip age: log10(seconds since programming), 1 s to 10 y",
                        elem_id="age",
                    )
                    temperature = gr.Slider(
                        math.ceil(t_lo),
                        math.floor(t_hi),
                        value=27,
                        step=1,
                        label="temperature (°C)",
                        elem_id="temperature",
                    )
                age_text = gr.Markdown(
                    f"age **{format_time(age_seconds(AGE_DEFAULT))}**", elem_id="age-text"
                )
                with gr.Accordion("tile settings", open=False):
                    override = gr.Checkbox(
                        False, label="replace the mapping's tile settings", elem_id="tile-override"
                    )
                    with gr.Row():
                        dac = gr.Number(
                            tile0["dac_bits"],
                            label="DAC bits (0 = ideal)",
                            precision=0,
                            elem_id="dac-bits",
                        )
                        adc = gr.Number(
                            tile0["adc_bits"],
                            label="ADC bits (0 = ideal)",
                            precision=0,
                            elem_id="adc-bits",
                        )
                        out_noise = gr.Number(
                            tile0["out_noise"], label="output noise", elem_id="out-noise"
                        )
                        read_noise = gr.Number(
                            tile0["read_noise"], label="read noise", elem_id="read-noise"
                        )
                        comp = gr.Dropdown(
                            ["none", "global", "column"],
                            value=tile0["drift_compensation"],
                            label="drift compensation",
                        )
                with gr.Accordion("statistical noise", open=False):
                    with gr.Row():
                        noise = gr.Dropdown(
                            [NO_NOISE, *wb.noises()], value=NO_NOISE, label="noise", elem_id="noise"
                        )
                        sigma = gr.Number(0.02, label="sigma", elem_id="sigma")
                        relative = gr.Checkbox(False, label="relative to each layer's weight std")
                    roles = gr.CheckboxGroup(
                        list(ROLES), value=[r for r in ROLES if r != "embedding"], label="roles"
                    )
                with gr.Row():
                    build = gr.Button("build chip", variant="primary", elem_id="build")
                    ideal = gr.Button(
                        "ideal chip (ideal card, every tile non-ideality off)", elem_id="ideal"
                    )
                placement = gr.Dataframe(
                    label="placement (as analogsim map)", elem_id="placement", wrap=True
                )
                totals = gr.Markdown(elem_id="totals")
                with gr.Accordion("device cards", open=False):
                    card = gr.JSON(label="device cards", elem_id="card")

            chip_inputs = [
                mapping, device, override, dac, adc, out_noise, read_noise, comp,
                age, temperature, noise, sigma, roles, relative, seed,
            ]  # fmt: skip

            # ---------------------------------------------------------------- Talk
            with gr.Tab("Talk", id="talk"):
                with gr.Row():
                    prompt = gr.Textbox(DEFAULT_PROMPT, label="prompt", scale=4, elem_id="prompt")
                    tokens = gr.Number(24, label="new tokens", precision=0, elem_id="tokens")
                    ask = gr.Button("ask both", variant="primary", elem_id="ask")
                with gr.Row():
                    digital_out = gr.HighlightedText(
                        label="digital model", elem_id="digital-answer", show_legend=False
                    )
                    chip_out = gr.HighlightedText(
                        label="chip (shade: how much less likely the digital model finds the token; click one)",
                        elem_id="chip-answer",
                        show_legend=False,
                    )
                verdict = gr.Markdown(elem_id="talk-verdict")
                asked = gr.State(0)  # questions asked in this browser session
                with gr.Group(visible=False, elem_id="top5") as top5:
                    top5_title = gr.Markdown(elem_id="top5-title")
                    with gr.Row():
                        top5_chip = gr.Dataframe(label="chip: top 5", elem_id="top5-chip")
                        top5_digital = gr.Dataframe(
                            label="digital model on the chip's text: top 5", elem_id="top5-digital"
                        )
                talk_plot = gr.LinePlot(
                    x="token",
                    y="value",
                    color="series",
                    title="log-probability and entropy per token",
                    elem_id="talk-plot",
                )
                with gr.Row():
                    save = gr.Button("save run", elem_id="save")
                    saved = gr.Markdown(elem_id="saved")

            # ---------------------------------------------------------------- Age
            with gr.Tab("Age while it talks", id="age"):
                with gr.Row():
                    age_prompt = gr.Textbox(
                        DEFAULT_PROMPT, label="prompt", scale=3, elem_id="age-prompt"
                    )
                    age_tokens = gr.Number(24, label="tokens", precision=0, elem_id="age-tokens")
                    token_time = gr.Textbox(
                        "1h", label="time per token (1s, 1h, 1d)", elem_id="token-time"
                    )
                with gr.Row():
                    profile = gr.Radio(
                        list(PROFILES), value="ramp", label="temperature profile", elem_id="profile"
                    )
                    t_low = gr.Number(27, label="T start / low (°C)", elem_id="t-low")
                    t_high = gr.Number(85, label="T end / high (°C)", elem_id="t-high")
                    period = gr.Textbox("1d", label="ramp duration / sine period", elem_id="period")
                run_age = gr.Button("run on the event clock", variant="primary", elem_id="run-age")
                age_text_out = gr.Textbox(
                    label="chip answer (streamed)", elem_id="age-answer", lines=3
                )
                cliff = gr.Markdown(elem_id="cliff")
                age_live = gr.LinePlot(
                    x="token",
                    y="temperature (°C)",
                    title="temperature at each token (live, from the profile)",
                    elem_id="age-live",
                )
                age_plots = gr.Gallery(
                    label="trace", columns=2, object_fit="contain", height=720, elem_id="age-plots"
                )
                age_run_dir = gr.Markdown(elem_id="age-run-dir")

            # ---------------------------------------------------------------- Compare
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    partitions = gr.CheckboxGroup(
                        wb.mappings(),
                        value=[
                            m
                            for m in ("all_digital", "digital_attention_analog_mlp", "all_analog")
                            if m in wb.mappings()
                        ],
                        label="partitions",
                        elem_id="partitions",
                    )
                    cmp_device = gr.Dropdown(
                        [NO_DEVICE, *wb.devices()], value=NO_DEVICE, label="device card"
                    )
                with gr.Row():
                    cmp_times = gr.Textbox("1h,1d,1y", label="ages", elem_id="cmp-times")
                    cmp_temps = gr.Textbox("27C,85C", label="temperatures", elem_id="cmp-temps")
                    cmp_seeds = gr.Number(1, label="seeds", precision=0, elem_id="cmp-seeds")
                    cmp_tokens = gr.Number(
                        512, label="evaluation tokens", precision=0, elem_id="cmp-tokens"
                    )
                run_cmp = gr.Button("compare", variant="primary", elem_id="run-compare")
                with gr.Row():
                    cmp_time_plot = gr.Image(label="quality over age", elem_id="cmp-time-plot")
                    cmp_energy_plot = gr.Image(
                        label="quality against energy per token", elem_id="cmp-energy-plot"
                    )
                cmp_table = gr.Dataframe(label="partitions", elem_id="cmp-table")
                cmp_run_dir = gr.Markdown(elem_id="cmp-run-dir")

            # ---------------------------------------------------------------- Device
            with gr.Tab("Device", id="device"):
                with gr.Row():
                    ds_card = gr.Dropdown(
                        wb.devices(), value="pcm", label="card", elem_id="ds-card"
                    )
                    ds_levels = gr.Textbox(
                        "0.1,0.5,1", label="levels (G/G_max)", elem_id="ds-levels"
                    )
                    ds_times = gr.Textbox("1s,1h,1d,1y", label="ages", elem_id="ds-times")
                    ds_temps = gr.Textbox("27C,85C", label="temperatures", elem_id="ds-temps")
                    ds_samples = gr.Number(
                        20000, label="devices per level", precision=0, elem_id="ds-samples"
                    )
                run_ds = gr.Button("datasheet", variant="primary", elem_id="run-datasheet")
                ds_plot = gr.Image(label="G(t, T) / G_target", elem_id="ds-plot")
                ds_table = gr.Dataframe(label="statistics", elem_id="ds-table")

        # ==================================================================== handlers
        def describe_chip() -> str:
            parts = []
            if wb.last_build_s is not None:
                parts.append(f"built in {wb.last_build_s:.2f} s")
            if wb.last_restate_s is not None:
                parts.append(f"last re-state {wb.last_restate_s:.2f} s")
            return ", ".join(parts)

        @guarded
        def on_model(name: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
            if name != wb.name:
                progress(0, desc=f"loading {name}")
                wb.set_model(name)
            return (f"model **{wb.name}** loaded; chip: not built yet",)

        @guarded
        def on_plan(*values: Any) -> tuple[Any, ...]:
            s = chip_settings(*values)
            rows, tot = wb.placement(s)
            text = (
                f"analog: {tot['analog_layers']}/{tot['layers']} layers, "
                f"{tot['analog_param_share']:.1%} of {tot['params']:,} parameters, "
                f"{tot['analog_mac_share']:.1%} of MACs, {tot['tiles']} tiles"
            )
            return pd.DataFrame(rows), text, wb.device_cards(s)

        @guarded
        def on_build(*values: Any, progress: gr.Progress = gr.Progress()) -> str:
            s = chip_settings(*values)
            progress(0, desc="converting and programming the chip")
            wb.chip(s)
            return f"chip: {s.describe()} ({describe_chip()})"

        @guarded
        def on_restate(*values: Any) -> tuple[str, str]:
            s = chip_settings(*values)
            age_line = f"age **{format_time(s.age_s)}**, {s.temperature_K - ZERO_CELSIUS_K:.4g} °C"
            took = wb.restate(s)
            if took is None:
                return age_line, f"chip: {s.describe()}; built on the next question"
            return age_line, f"chip: {s.describe()} (re-stated in {took:.2f} s; {describe_chip()})"

        def on_ideal() -> tuple[Any, ...]:
            return ("ideal", True, *(IDEAL_TILE[k] for k in TILE_FIELDS))

        @guarded
        def on_ask(
            *values: Any, progress: gr.Progress = gr.Progress()
        ) -> Iterator[tuple[Any, ...]]:
            *chip_values, text, n, count = values
            s = chip_settings(*chip_values)
            n_tokens = _int(n, "new tokens")
            count = int(count or 0) + 1
            progress(0, desc="preparing the chip")
            hidden = gr.update(visible=False)
            res = None
            for res in wb.talk(s, text, n_tokens):
                if res.digital_view:
                    break
                status = (
                    f"question {count}: digital {len(res.digital)} / chip {len(res.chip)} tokens"
                )
                yield (
                    _answer(res.digital), _answer(res.chip), status, hidden, gr.skip(), gr.skip(), count
                )  # fmt: skip
            assert res is not None
            gaps = [v["gap_nats"] for v in res.digital_view]
            if res.identical:
                same = "the chip answers **identically** to the digital model"
            else:
                same = (
                    f"the chip answers **differently**: {sum(g > 0 for g in gaps)} of {len(gaps)} "
                    "chip tokens are not the digital model's first choice"
                )
            ft = res.first_token_s
            timing = (
                f" (first token: digital {ft.get('digital', math.nan):.2f} s, "
                f"chip {ft.get('chip', math.nan):.2f} s)"
            )
            yield (
                _answer(res.digital),
                _answer(res.chip, gaps),
                f"question {count}: {same}{timing}",
                hidden,
                _trace_frame(res),
                f"chip: {s.describe()} ({describe_chip()})",
                count,
            )

        @guarded
        def on_token(evt: gr.SelectData) -> tuple[Any, ...]:
            res = wb.last_talk
            k = evt.index if isinstance(evt.index, int) else evt.index[0]
            if res is None or k >= len(res.chip):
                return gr.update(visible=False), gr.skip(), gr.skip(), gr.skip()
            step = res.chip[k]
            view = res.digital_view[k] if k < len(res.digital_view) else None
            chip_df = pd.DataFrame([{"token": repr(t), "p": f"{p:.3g}"} for t, p in step.top])
            dig_df = pd.DataFrame(
                [{"token": repr(t), "p": f"{p:.3g}"} for t, p in (view["top"] if view else [])]
            )
            title = f"**step {k}**: chip chose {step.text!r} (logprob {step.logprob:.3f})"
            if view is not None:
                title += (
                    f"; the digital model gives it logprob {view['logprob']:.3f}, "
                    f"{view['gap_nats']:.3f} nats below its own first choice"
                )
            return gr.update(visible=True), title, chip_df, dig_df

        @guarded
        def on_save(progress: gr.Progress = gr.Progress()) -> str:
            progress(0, desc="writing the run directory (generating the chip's answer again)")
            res = wb.save_talk()
            return f"run directory `{res['run_dir']}`, as written by\n\n`{res['command']}`"

        @guarded
        def on_age_run(
            *values: Any, progress: gr.Progress = gr.Progress()
        ) -> Iterator[tuple[Any, ...]]:
            *chip_values, text, n, step, kind, lo, hi, per = values
            s = chip_settings(*chip_values)
            n_tokens = _int(n, "tokens")
            spec = profile_text(
                kind,
                float(lo),
                float(hi),
                str(per),
                start_age_s=s.age_s,
                held_K=s.temperature_K,
            )
            profile = parse_profile(spec)
            step_s = parse_time(str(step), key="token time")
            live: list[dict[str, Any]] = []
            stream = _QueueStreamer(wb)
            box: dict[str, Any] = {}

            def work() -> None:
                try:
                    box["res"] = wb.age_run(s, text, n_tokens, str(step), spec, streamer=stream)
                except BaseException as exc:
                    box["exc"] = exc
                finally:
                    stream.close()

            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            for piece_count, so_far in stream.updates():
                # the clock's time and temperature of each token, live (token k at age + k step)
                while len(live) < piece_count:
                    t = s.age_s + len(live) * step_s
                    live.append(
                        {
                            "token": len(live),
                            "temperature (°C)": float(profile.temperature(t)) - ZERO_CELSIUS_K,
                        }
                    )
                progress(
                    piece_count / n_tokens,
                    desc=f"token {piece_count} / {n_tokens} at {format_time(s.age_s + (piece_count - 1) * step_s)}",
                )
                yield so_far, gr.skip(), gr.skip(), gr.skip(), pd.DataFrame(live)
            worker.join()
            if "exc" in box:
                raise box["exc"]
            res = box["res"]
            c = res["cliff"]
            if c["alarm_index"] is None:
                verdict = "cliff detector: **no alarm** (CUSUM of logprob - digital logprob)"
            else:
                row = res["rows"][c["alarm_index"]]
                verdict = (
                    f"cliff detector: **alarm at token {c['alarm_index']}** "
                    f"(t = {format_time(float(row['time_s']))}), onset estimated at token {c['onset_index']}"
                )
            m = res["metrics"]
            verdict += (
                f"; mean logprob {m['mean_logprob']:.3f} vs digital {m['mean_digital_logprob']:.3f} nats, "
                f"{int(m['state_updates'])} state updates"
            )
            run_dir = Path(res["run_dir"])
            pngs = [
                str(run_dir / f)
                for f in ("temperature_time.png", "logprob.png", "entropy.png", "weight_error.png")
            ]
            yield (
                res["text"],
                verdict,
                [p for p in pngs if Path(p).exists()],
                f"run directory `{run_dir}`, as written by\n\n`{res['command']}`",
                pd.DataFrame(
                    [
                        {
                            "token": int(r["token_index"]),
                            "temperature (°C)": float(r["temperature_K"]) - ZERO_CELSIUS_K,
                        }
                        for r in res["rows"]
                    ]
                ),
            )

        @guarded
        def on_compare(
            parts: list[str], dev: str, times: str, temps: str, seeds: Any, n_tok: Any,
            progress: gr.Progress = gr.Progress(),
        ) -> tuple[Any, ...]:  # fmt: skip
            def tick(done: int, total: int) -> None:
                progress(done / max(total, 1), desc=f"{done} / {total} points")

            res = wb.compare(
                parts,
                None if dev in (None, "", NO_DEVICE) else dev,
                times,
                temps,
                _int(seeds, "seeds"),
                _int(n_tok, "evaluation tokens"),
                progress=tick,
            )
            rows = [
                {
                    "partition": r["mapping"],
                    "age": format_time(float(r["time_s"])),
                    "T (°C)": round(float(r["temperature_K"]) - ZERO_CELSIUS_K, 2),
                    res["metric"]: round(r["mean"], 4),
                    "std": round(r["std"], 4),
                    "energy/token (uJ)": None
                    if r.get("energy_per_token_J") is None
                    else round(r["energy_per_token_J"] * 1e6, 4),
                    "tiles": r.get("tiles"),
                }
                for r in sorted(
                    res["summary"],
                    key=lambda r: (r["mapping"], float(r["temperature_K"]), float(r["time_s"])),
                )
            ]
            digital = (
                "" if res["digital"] is None else f"digital {res['metric']}: {res['digital']:.4g}; "
            )
            return (
                str(res["plots"][0]),
                str(res["plots"][1]),
                pd.DataFrame(rows),
                f"{digital}run directory `{res['run_dir']}`",
            )

        @guarded
        def on_datasheet(
            c: str, levels: str, times: str, temps: str, samples: Any, seed_v: Any
        ) -> tuple[Any, ...]:
            rows, path = wb.datasheet(
                c,
                levels,
                times,
                temps,
                _int(samples, "devices per level"),
                _int(seed_v, "seed"),
                plots_dir,
            )
            table = pd.DataFrame(
                [
                    {
                        "g_rel": r["g_rel"],
                        "age": format_time(r["time_s"]),
                        "T (°C)": round(r["temperature_K"] - ZERO_CELSIUS_K, 2),
                        "mean": round(r["mean"], 4),
                        "std": round(r["std"], 4),
                        "1%": round(r["p01"], 4),
                        "99%": round(r["p99"], 4),
                    }
                    for r in rows
                ]
            )
            return str(path), table

        # ==================================================================== wiring
        plan_outputs = [placement, totals, card]
        model.change(on_model, [model], [chip_status]).then(on_plan, chip_inputs, plan_outputs)
        for w in (mapping, device, override, dac, adc, out_noise, read_noise, comp):
            w.change(on_plan, chip_inputs, plan_outputs)
        demo.load(on_plan, chip_inputs, plan_outputs)
        ideal.click(
            on_ideal,
            None,
            [
                device,
                override,
                *(
                    dict(
                        zip(TILE_FIELDS, (dac, adc, out_noise, read_noise, comp), strict=True)
                    ).values()
                ),
            ],
        )
        build.click(on_build, chip_inputs, [chip_status])
        for w in (age, temperature):  # a drag sends many changes: only the last one runs
            w.change(
                on_restate,
                chip_inputs,
                [age_text, chip_status],
                show_progress="hidden",
                trigger_mode="always_last",
            )
        ask.click(
            on_ask,
            [*chip_inputs, prompt, tokens, asked],
            [digital_out, chip_out, verdict, top5, talk_plot, chip_status, asked],
        )
        prompt.submit(
            on_ask,
            [*chip_inputs, prompt, tokens, asked],
            [digital_out, chip_out, verdict, top5, talk_plot, chip_status, asked],
        )
        chip_out.select(on_token, None, [top5, top5_title, top5_chip, top5_digital])
        save.click(on_save, None, [saved])
        run_age.click(
            on_age_run,
            [*chip_inputs, age_prompt, age_tokens, token_time, profile, t_low, t_high, period],
            [age_text_out, cliff, age_plots, age_run_dir, age_live],
        )
        run_cmp.click(
            on_compare,
            [partitions, cmp_device, cmp_times, cmp_temps, cmp_seeds, cmp_tokens],
            [cmp_time_plot, cmp_energy_plot, cmp_table, cmp_run_dir],
        )
        run_ds.click(
            on_datasheet,
            [ds_card, ds_levels, ds_times, ds_temps, ds_samples, seed],
            [ds_plot, ds_table],
        )
    demo.queue(default_concurrency_limit=1)
    demo.plots_dir = plots_dir  # type: ignore[attr-defined]
    return demo


class _QueueStreamer:
    """A ``generate`` streamer for the Age panel: collects the answer's tokens and hands
    the text so far to the page as it grows."""

    def __init__(self, wb: Workbench) -> None:
        import queue

        self.wb = wb
        self.q: queue.Queue[list[int] | None] = queue.Queue()
        self.ids: list[int] = []
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        ids = [int(v) for v in value.reshape(-1)]
        if not self.prompt_seen:  # generate hands the prompt first
            self.prompt_seen = True
            return
        self.q.put(ids)

    def end(self) -> None:
        pass

    def close(self) -> None:
        self.q.put(None)

    def updates(self) -> Iterator[tuple[int, str]]:
        tok = self.wb.loaded.tokenizer
        while True:
            item = self.q.get()
            if item is None:
                return
            self.ids += item
            yield len(self.ids), tok.decode(self.ids, skip_special_tokens=True)


def serve(
    model: str = "smollm2",
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    runs: str | Path = "runs",
    block: bool = True,
) -> gr.Blocks:
    """Load ``model`` and serve the page on ``host:port`` (blocking unless ``block`` is
    False); returns the Gradio app."""
    wb = Workbench(model, runs=runs)
    demo = build_app(wb)
    demo.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        show_error=True,
        quiet=False,
        allowed_paths=[str(Path(runs).resolve()), str(demo.plots_dir)],  # type: ignore[attr-defined]
        footer_links=[],
    )
    return demo
