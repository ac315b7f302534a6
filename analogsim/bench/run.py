"""Benchmarks: speed and memory ratios measured in one run (``make bench``).

Each case times the digital model and the converted model on the same inputs,
interleaved round by round (so a busy machine slows both alike), and reports the
median time of each and their ratio. aihwkit's pure-torch inference tile
(``TorchInferenceRPUConfig``) runs the same model with the closest settings it
supports. Targets are in DESIGN.md; results go to a run directory and docs/benchmarks.md.
The io regimes are timed with both tile epilogues (``analogsim``: fused, the default;
``analogsim-torch-epilogue``: the torch chain) and split into stages
(:mod:`analogsim.bench.split`); ``--only decode`` times batch-1 decoding
(:mod:`analogsim.bench.decode`).

Regimes:
* ``state``: device state only (programmed, drifted to 1 h; every tile non-ideality off)
* ``io``: plus 8-bit DAC, 8-bit ADC per 512-row tile (bound 10), output noise 0.04
* ``io+read``: plus per-MVM read noise 0.0175 (aihwkit's torch tile does not support it)
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.table import Table
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from analogsim.bench.clock import run_generation_bench
from analogsim.bench.decode import decode_rows
from analogsim.bench.regimes import REGIMES, mapping_for
from analogsim.bench.smollm2 import run_smollm2_bench
from analogsim.bench.split import split_rows, split_times
from analogsim.bench.timing import interleaved
from analogsim.bench.training import bench_training_step
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.models import load_model
from analogsim.report.rundir import RunDir
from analogsim.tiles.io import get_epilogue, set_epilogue
from analogsim.tiles.layer import free_shared_workspace, shared_workspace_bytes

_mapping_for = mapping_for  # the name experiments/gpu_check.py imports
BENCH_COLUMNS = ["case", "regime", "engine", "median_ms", "digital_ms", "ratio", "note"]


@dataclass
class Case:
    name: str
    model: nn.Module
    inputs: tuple
    note: str = ""
    kwargs: dict | None = None

    def __call__(self, model: nn.Module) -> Any:
        return model(*self.inputs, **(self.kwargs or {}))


def wide_mlp_case(width: int = 4096, layers: int = 3, batch: int = 256) -> Case:
    g = torch.Generator().manual_seed(0)
    mods: list[nn.Module] = []
    for _ in range(layers):
        lin = nn.Linear(width, width)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(width, width, generator=g) / width**0.5)
        mods.append(lin)
    return Case(
        f"wide MLP {layers}x{width}x{width}, batch {batch}",
        nn.Sequential(*mods).eval(),
        (torch.randn(batch, width, generator=g),),
    )


def digits_case(batch: int = 256) -> Case:
    lm = load_model("digits-mlp", progress=False)
    x = lm.data["x_test"][:batch]
    return Case(f"digits-mlp, batch {batch}", lm.model.eval(), (x,))


def tiny_gpt2_case(batch: int = 8, seq: int = 128) -> Case:
    lm = load_model("tiny-gpt2", progress=False)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, lm.model.config.vocab_size, (batch, seq), generator=g)
    return Case(
        f"tiny-gpt2 ({sum(p.numel() for p in lm.model.parameters()) / 1e6:.2f}M), batch {batch} x {seq} tokens",
        lm.model.eval(),
        (),
        note="aihwkit's convert_to_analog skips GPT-2 Conv1D: only lm_head is analog there",
        kwargs={"input_ids": ids},
    )


def minilm_case(batch: int = 64, seq: int = 64) -> Case:
    lm = load_model("minilm", progress=False)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, lm.model.config.vocab_size, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    return Case(
        f"MiniLM-L6 (22.7M), batch {batch} x {seq} tokens",
        lm.model.eval(),
        (),
        kwargs={"input_ids": ids, "attention_mask": mask},
    )


def convert_program_rows(n_layer: int = 12, n_embd: int = 768) -> list[dict[str, Any]]:
    """Seconds to convert and to program a GPT-2-small-sized model (random init)."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=max(1, n_embd // 64))
    ).eval()
    params = sum(p.numel() for p in model.parameters())
    digital_bytes = tensor_bytes(model)
    t0 = time.perf_counter()
    am = convert(model, "all_analog")
    t1 = time.perf_counter()
    am.program(0)
    t2 = time.perf_counter()
    am.at(86400.0)
    t3 = time.perf_counter()
    analog = sum(layer.w_eff.numel() for _, layer in am.analog_layers())
    name = (
        f"GPT-2 {params / 1e6:.0f}M params ({analog / 1e6:.0f}M analog incl. tied head), all_analog"
    )
    conv_bytes = tensor_bytes(am)
    rows = [
        {
            "case": name,
            "regime": "convert",
            "engine": "analogsim",
            "median_ms": (t1 - t0) * 1e3,
            "digital_ms": float("nan"),
            "ratio": float("nan"),
            "note": "deep copy + wrap",
        },
        {
            "case": name,
            "regime": "program",
            "engine": "analogsim",
            "median_ms": (t2 - t1) * 1e3,
            "digital_ms": float("nan"),
            "ratio": float("nan"),
            "note": "sample every device (t = 0)",
        },
        {
            "case": name,
            "regime": "at(1 day)",
            "engine": "analogsim",
            "median_ms": (t3 - t2) * 1e3,
            "digital_ms": float("nan"),
            "ratio": float("nan"),
            "note": "recompute the state at 1 day",
        },
        {
            "case": name,
            "regime": "memory",
            "engine": "analogsim-memory",
            "median_ms": float("nan"),
            "digital_ms": float("nan"),
            "ratio": conv_bytes / digital_bytes,
            "note": f"converted model {conv_bytes / 2**20:.0f} MiB / digital {digital_bytes / 2**20:.0f} MiB (converted copy + effective weights)",
        },
    ]
    del am, model
    return rows


_PEAK_SCRIPT = """
import sys, torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
n_layer, n_embd, analog = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "analog"
model = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=max(1, n_embd // 64))).eval()
ids = torch.randint(0, 50257, (1, 64))
with torch.no_grad():
    if analog:
        from analogsim.mapping.convert import convert
        model = convert(model, "all_analog", inplace=True).program(0)
    model(ids)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
print(sum(p.numel() * p.element_size() for p in model.parameters()), hwm)
"""


def peak_memory_rows(n_layer: int = 12, n_embd: int = 768) -> list[dict[str, Any]]:
    """Peak resident memory of a process running the digital vs the converted model.

    Each runs in a fresh subprocess (so peaks do not mix): build a random GPT-2, convert it
    in place (all_analog) and program it, one forward of 64 tokens; peak RSS (``VmHWM``).
    """
    peaks = {}
    for kind in ("digital", "analog"):
        res = subprocess.run(
            [sys.executable, "-c", _PEAK_SCRIPT, str(n_layer), str(n_embd), kind],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if res.returncode != 0:
            return [
                {
                    "case": "peak memory",
                    "regime": "memory",
                    "engine": "analogsim-peak-rss",
                    "median_ms": float("nan"),
                    "digital_ms": float("nan"),
                    "ratio": float("nan"),
                    "note": f"subprocess failed: {res.stderr.strip().splitlines()[-1:]}",
                }
            ]
        nbytes, hwm_kib = res.stdout.strip().splitlines()[-1].split()
        peaks[kind] = int(hwm_kib) * 1024
        if kind == "digital":
            weight_bytes = int(nbytes)
    return [
        {
            "case": f"GPT-2 {n_layer}x{n_embd} random init, all_analog in place",
            "regime": "memory",
            "engine": "analogsim-peak-rss",
            "median_ms": float("nan"),
            "digital_ms": float("nan"),
            "ratio": (peaks["analog"] - peaks["digital"]) / weight_bytes,
            "note": (
                f"extra peak RSS / digital weight bytes; peak {peaks['analog'] / 2**20:.0f} MiB "
                f"converted vs {peaks['digital'] / 2**20:.0f} MiB digital, weights "
                f"{weight_bytes / 2**20:.0f} MiB (effective weights of every analog array incl. "
                "the independently mapped tied head, bfloat16 |W| for read noise, and "
                "programming/forward transients)"
            ),
        }
    ]


def aihwkit_model(model: nn.Module, regime: str, t_inference: float = 3600.0) -> nn.Module | None:
    """The same model through aihwkit's TorchInferenceRPUConfig, programmed and drifted."""
    try:  # lazy: aihwkit is an optional dev extra
        from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
        from aihwkit.nn.conversion import convert_to_analog
        from aihwkit.simulator.configs import TorchInferenceRPUConfig
        from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType
    except Exception:  # aihwkit is a dev extra
        return None
    if regime == "io+read":
        return None  # aihwkit's torch tile raises ConfigError for forward.w_noise
    rpu = TorchInferenceRPUConfig()
    rpu.noise_model = PCMLikeNoiseModel(g_max=25.0)
    rpu.mapping.max_input_size = 512
    rpu.mapping.max_output_size = 512
    rpu.mapping.weight_scaling_omega = 1.0
    if regime == "state":
        rpu.forward.is_perfect = True
    else:
        rpu.forward.inp_res = 1 / 254  # 8 bit
        rpu.forward.out_res = 1 / 254  # 8 bit
        rpu.forward.out_bound = 10.0
        rpu.forward.out_noise = 0.04
        rpu.forward.noise_management = NoiseManagementType.ABS_MAX
        rpu.forward.bound_management = BoundManagementType.NONE
    am = convert_to_analog(copy.deepcopy(model), rpu).eval()
    am.program_analog_weights()
    am.drift_analog_weights(t_inference)
    return am


def tensor_bytes(module: nn.Module) -> int:
    """Bytes of every distinct tensor storage reachable from a module's params, buffers and attributes."""
    seen: set[int] = set()
    total = 0

    def add(t: torch.Tensor) -> None:
        nonlocal total
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen or ptr == 0:
            return
        seen.add(ptr)
        total += t.untyped_storage().nbytes()

    for m in module.modules():
        for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False)):
            if t is not None:
                add(t)
        for v in vars(m).values():
            if isinstance(v, torch.Tensor):
                add(v)
            elif isinstance(v, list | tuple):
                for x in v:
                    if isinstance(x, torch.Tensor):
                        add(x)
    return total


def _with(epilogue: str, case: Case, am: Any) -> Callable[[], Any]:
    """``case(am)`` with the tile epilogue ``epilogue``."""

    def run() -> Any:
        set_epilogue(epilogue)
        return case(am)

    return run


def run_case(
    case: Case,
    regimes: tuple[str, ...] = REGIMES,
    rounds: int = 7,
    with_aihwkit: bool = True,
    split: bool = True,
) -> list[dict[str, Any]]:
    """Time digital vs analogsim (fused and torch epilogues; and aihwkit) for each regime;
    with ``split``, where the io regimes' time goes (:mod:`analogsim.bench.split`); memory
    ratios."""
    rows: list[dict[str, Any]] = []
    digital_bytes = tensor_bytes(case.model)
    with torch.no_grad():
        for regime in regimes:
            am = convert(case.model, _mapping_for(regime)).program(0).at(3600.0)
            fns = {"digital": lambda: case(case.model), "analogsim": _with("fused", case, am)}
            if regime != "state":  # the torch epilogue, the path before issue 18
                fns["analogsim-torch-epilogue"] = _with("torch", case, am)
            ak = aihwkit_model(case.model, regime) if with_aihwkit else None
            if ak is not None:
                fns["aihwkit"] = lambda ak=ak: case(ak)
            free_shared_workspace()  # measure this case's scratch buffers, not an earlier one's
            before = get_epilogue()
            try:
                med = interleaved(fns, rounds=rounds)
            finally:
                set_epilogue(before)
            for engine in fns:
                if engine == "digital":
                    continue
                rows.append(
                    {
                        "case": case.name,
                        "regime": regime,
                        "engine": engine,
                        "median_ms": med[engine] * 1e3,
                        "digital_ms": med["digital"] * 1e3,
                        "ratio": med[engine] / med["digital"],
                        "note": case.note
                        if engine == "aihwkit"
                        else (
                            "fused epilogue" if engine == "analogsim" and regime != "state" else ""
                        ),
                    }
                )
            if with_aihwkit and ak is None:
                rows.append(
                    {
                        "case": case.name,
                        "regime": regime,
                        "engine": "aihwkit",
                        "median_ms": float("nan"),
                        "digital_ms": med["digital"] * 1e3,
                        "ratio": float("nan"),
                        "note": "not supported by aihwkit's torch tile (forward.w_noise)",
                    }
                )
            if regime == "state":
                state = am.state_bytes()
                wbytes = am.weight_bytes()
                rows.append(
                    {
                        "case": case.name,
                        "regime": regime,
                        "engine": "analogsim-memory",
                        "median_ms": float("nan"),
                        "digital_ms": float("nan"),
                        "ratio": state / wbytes,
                        "note": f"device state {state / 2**20:.1f} MiB / analog weights {wbytes / 2**20:.1f} MiB",
                    }
                )
                if ak is not None:
                    extra = tensor_bytes(ak) - digital_bytes
                    rows.append(
                        {
                            "case": case.name,
                            "regime": regime,
                            "engine": "aihwkit-memory",
                            "median_ms": float("nan"),
                            "digital_ms": float("nan"),
                            "ratio": extra / wbytes,
                            "note": f"extra tensors {extra / 2**20:.1f} MiB",
                        }
                    )
            if regime != "state" and split:
                times = split_times(
                    am, lambda: case(case.model), lambda am=am: case(am), rounds=rounds
                )
                rows += split_rows(case.name, regime, times, torch.get_num_threads())
            if regime != "state":
                ws = shared_workspace_bytes() + sum(
                    layer.workspace_bytes() for _, layer in am.analog_layers()
                )
                rows.append(
                    {
                        "case": case.name,
                        "regime": regime,
                        "engine": "analogsim-workspace",
                        "median_ms": float("nan"),
                        "digital_ms": float("nan"),
                        "ratio": ws / am.weight_bytes(),
                        "note": f"forward scratch shared by all layers + bfloat16 |w| per layer {ws / 2**20:.1f} MiB (scratch scales with batch x widest layer)",
                    }
                )
            del am
    return rows


def machine() -> dict[str, Any]:
    """What the ratios depend on: threads, the CPU model and its vector flags (lscpu's
    names), the tile epilogue; recorded in each run's config."""
    flags: list[str] = []
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
            elif line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    vector = [f for f in flags if f.startswith(("avx", "amx", "fma"))]
    return {
        "threads": torch.get_num_threads(),
        "cpu": model,
        "cpu_vector_flags": " ".join(vector),
        "epilogue": get_epilogue(),
    }


ONLY = ("smollm2", "decode", "runner")
"""Benchmarks run alone with ``only=`` (``analogsim bench --only NAME``)."""


def run_benchmarks(
    out: str | Path | None = None,
    *,
    quick: bool = False,
    console: Any = None,
    only: str | None = None,
) -> Path:
    """All benchmark cases (or the one named by ``only``: ``smollm2``, the sweep point
    and clocked generation on SmolLM2-135M); results.csv + manifest in a run directory;
    returns its path."""
    if only is not None:
        if only not in ONLY:
            raise ConfigError("unknown benchmark", key="only", value=only, allowed=", ".join(ONLY))
        if only == "runner":  # its own run directory and columns (points/hour per worker count)
            from analogsim.bench.runner import run_runner_bench

            return run_runner_bench(out, quick=quick, console=console)
        config = {"quick": quick, "only": only, **machine()}
        with RunDir(out, "bench", config, BENCH_COLUMNS, ["case", "regime", "engine"]) as run:
            if not run.rows:
                if only == "decode":
                    rows = decode_rows(tokens=8 if quick else 32, rounds=1 if quick else 3)
                else:
                    rows = run_smollm2_bench(quick=quick, console=console)
                run.write(rows)
            if console is not None:  # rows read back from the run directory: text cells
                nums = ("median_ms", "digital_ms", "ratio")
                _print([{**r, **{k: float(r[k]) for k in nums}} for r in run.rows], console)
        return run.path
    cases: list[Callable[[], Case]] = [digits_case]
    cases.append((lambda: wide_mlp_case(1024, 3, 64)) if quick else wide_mlp_case)
    if not quick:
        cases += [tiny_gpt2_case, minilm_case]
    config = {"quick": quick, **machine()}
    with RunDir(out, "bench", config, BENCH_COLUMNS, ["case", "regime", "engine"]) as run:
        done_cases = {r["case"] for r in run.rows}
        for make in cases:
            case = make()
            if case.name in done_cases:  # resumed run: this case is already measured
                continue
            rows = run_case(case, rounds=3 if quick else 7)
            run.write(rows)
            if console is not None:
                _print(rows, console)
        if not any(r["regime"] == "program" for r in run.rows):
            rows = convert_program_rows(2, 128) if quick else convert_program_rows()
            rows += peak_memory_rows(2, 128) if quick else peak_memory_rows()
            run.write(rows)
            if console is not None:
                _print(rows, console)
        for extra in _extra_benches(quick, {(r["regime"], r["engine"]) for r in run.rows}):
            run.write(extra)
            if console is not None:
                _print(extra, console)
    return run.path


def _extra_benches(
    quick: bool, done: set[tuple[str, str]] | None = None
) -> list[list[dict[str, Any]]]:
    """Generation-with-clock and training-step benchmarks (skipped when ``done`` has them)."""
    done = done or set()
    out = []
    if not any(e == "clock" for _, e in done):
        out.append(run_generation_bench(quick=quick))
    if not any(r == "train-step" for r, _ in done):
        out.append(bench_training_step(quick=quick))
    return out


def _print(rows: list[dict[str, Any]], console: Any) -> None:
    table = Table(title=rows[0]["case"] if rows else "")
    for col in ("regime", "engine", "median ms", "digital ms", "ratio", "note"):
        table.add_column(col)
    for r in rows:
        ms = "" if r["median_ms"] != r["median_ms"] else f"{r['median_ms']:.2f}"
        dm = "" if r["digital_ms"] != r["digital_ms"] else f"{r['digital_ms']:.2f}"
        ratio = "n/a" if r["ratio"] != r["ratio"] else f"{r['ratio']:.2f}x"
        table.add_row(r["regime"], r["engine"], ms, dm, ratio, r["note"])
    console.print(table)
