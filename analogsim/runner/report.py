"""report.md of an experiment run: our numbers, with 95 % intervals over seeds, beside the
numbers the public noisy-LLM study published (``../shared/REFERENCES.md``, "The
noisy-LLM experiments this project generalises"; distilgpt2/GPT-2, one unseeded run).

Every section is computed from ``results.csv`` (the journal), so a resumed run's report
covers every point, and ``summary.csv`` holds the same means and intervals as a table.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analogsim.report.rundir import RunDir, read_results, write_csv
from analogsim.runner.config import Experiment
from analogsim.runner.points import Point
from analogsim.runner.stats import crossings_by_seed, difference, estimate, fmt_ci

__all__ = ["PUBLISHED", "Data", "write_report"]

# The public study's numbers (REFERENCES.md): distilgpt2 unless said, gaussian noise on
# every Linear/Conv1D weight and bias (lm_head included), one unseeded draw per level.
PUBLISHED = {
    "model": "distilgpt2 (fp32)",
    "perplexity": {0.0: 60.96, 0.0125: 164.0, 0.025: 5074.0, 0.0375: 45.5e6},
    "ppl100_attention": 0.034,
    "ppl100_mlp": 0.040,
    "sigma_2x": {"distilgpt2": 0.0129, "gpt2-medium": 0.0086},
    "goldilocks": {"distinct_2_change_pct": 7.8, "perplexity_change_pct": 2.8},
}


class Data:
    """The rows of results.csv, parsed: coordinates, metric, value (float, NaN when
    empty), text."""

    def __init__(self, rows: Sequence[dict[str, str]], axes: Sequence[str]) -> None:
        self.axes = list(axes)
        self.rows = []
        for r in rows:
            v = r.get("value", "")
            self.rows.append(
                {
                    **{a: r[a] for a in self.axes},
                    "metric": r["metric"],
                    "value": float(v) if v not in ("", None) else math.nan,
                    "text": r.get("text") or "",
                }
            )

    def values(self, metric: str, **where: Any) -> list[dict[str, Any]]:
        """Rows of ``metric`` whose coordinates equal ``where`` (compared as text)."""
        want = {k: _txt(v) for k, v in where.items()}
        return [
            r
            for r in self.rows
            if r["metric"] == metric and all(r[k] == v for k, v in want.items())
        ]

    def distinct(self, axis: str, **where: Any) -> list[str]:
        want = {k: _txt(v) for k, v in where.items()}
        out: list[str] = []
        for r in self.rows:
            if all(r[k] == v for k, v in want.items()) and r[axis] not in out:
                out.append(r[axis])
        return out


def _txt(v: Any) -> str:
    from analogsim.report.rundir import _fmt

    return _fmt(v)


def _sigmas(exp: Experiment) -> list[float]:
    return sorted(float(s) for s in exp.axis("sigma"))


# ------------------------------------------------------------------ noise-study helpers
def baseline(data: Data, model: str, metric: str = "perplexity") -> float:
    """The model's unperturbed value (the sigma 0 point)."""
    rows = [r for r in data.values(metric, model=model) if float(r["sigma"]) == 0.0]
    return rows[0]["value"] if rows else math.nan


def curves(data: Data, metric: str, **where: Any) -> dict[str, list[tuple[float, float]]]:
    """Per seed: ``[(sigma, value)]`` of ``metric`` under ``where``, with the sigma 0
    baseline prepended to every seed's curve."""
    by_seed: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in data.values(metric, **where):
        if float(r["sigma"]) > 0:
            by_seed[r["seed"]].append((float(r["sigma"]), r["value"]))
    base = baseline(data, str(where["model"]), metric)
    if not math.isnan(base):
        for s in by_seed:
            by_seed[s].append((0.0, base))
    return {s: sorted(v) for s, v in by_seed.items()}


def at_sigma(data: Data, metric: str, sigma: float, **where: Any) -> list[float]:
    """Values of ``metric`` at ``sigma`` over seeds (the baseline for sigma 0)."""
    if sigma == 0.0:
        return [baseline(data, str(where["model"]), metric)]
    return [r["value"] for r in data.values(metric, **where) if float(r["sigma"]) == sigma]


def _combos(data: Data, axes: Sequence[str], **where: Any) -> list[dict[str, str]]:
    seen, out = set(), []
    want = {k: _txt(v) for k, v in where.items()}
    for r in data.rows:
        if float(r.get("sigma", 1) or 1) == 0.0:
            continue
        if not all(r[k] == v for k, v in want.items()):
            continue
        key = tuple(r[a] for a in axes)
        if key not in seen:
            seen.add(key)
            out.append(dict(zip(axes, key, strict=True)))
    return out


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append(
            "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |"
        )
    return [*out, ""]


def _pct_change(values: Sequence[float], base: float) -> list[float]:
    """Changes in % of ``base``; none when the base is 0 or not finite (no scale)."""
    if not (math.isfinite(base) and base != 0):
        return []
    return [100.0 * (v / base - 1.0) for v in values]


# ------------------------------------------------------------------ sections
def section_noise_sweep(data: Data, exp: Experiment, summary: list[dict[str, Any]]) -> list[str]:
    """The published table (perplexity, entropy, Distinct-2, a sample per sigma) and the
    entropy paradox check, per model, noise and roles."""
    out = ["## The published table, reproduced", ""]
    out.append(
        f"Published ({PUBLISHED['model']}, gaussian, one unseeded draw): perplexity "
        + ", ".join(f"{v:g} at sigma {s:g}" for s, v in PUBLISHED["perplexity"].items())
        + ". Our values: mean [95 % interval] over seeds; at sigma 0 nothing is drawn "
        "(one value)."
    )
    out.append("")
    metrics = [
        m for m in ("perplexity", "entropy_bits", "distinct_2") if m in exp.settings["metrics"]
    ]
    for combo in _combos(data, ["model", "noise", "roles", "relative"]):
        out.append(
            f"### {combo['model']}, {combo['noise']} noise, roles {combo['roles']}"
            + (" (sigma relative to each weight's std)" if combo["relative"] == "True" else "")
        )
        out.append("")
        table = []
        for sigma in _sigmas(exp):
            cells: list[Any] = [f"{sigma:g}"]
            for m in metrics:
                e = estimate(at_sigma(data, m, sigma, **combo), log=m == "perplexity")
                cells.append(fmt_ci(e))
                summary.append(
                    {
                        **combo,
                        "sigma": sigma,
                        "metric": m,
                        "mean": e.mean,
                        "lo": e.lo,
                        "hi": e.hi,
                        "n": e.n,
                    }
                )
            pub = PUBLISHED["perplexity"].get(sigma) if combo["noise"] == "gaussian" else None
            cells.append(f"{pub:g}" if pub is not None else "")
            samples = [
                r["text"] for r in data.values("sample", **combo) if float(r["sigma"]) == sigma
            ]
            if sigma == 0:
                samples = [
                    r["text"]
                    for r in data.values("sample", model=combo["model"])
                    if float(r["sigma"]) == 0
                ]
            cells.append(_clip(samples[0]) if samples else "")
            table.append(cells)
        out += _md_table(["sigma", *metrics, "published ppl", "sample (first seed)"], table)
        if "entropy_bits" in metrics:
            out += _paradox(data, exp, combo)
    return out


def _paradox(data: Data, exp: Experiment, combo: dict[str, str]) -> list[str]:
    """Entropy rises then falls: the peak of the mean curve at an interior sigma, and the
    per-seed drop from the peak sigma to the largest sigma with its interval."""
    sig = [s for s in _sigmas(exp)]
    means = [(s, estimate(at_sigma(data, "entropy_bits", s, **combo)).mean) for s in sig]
    means = [(s, m) for s, m in means if math.isfinite(m)]
    if len(means) < 3:
        return ["Entropy paradox: too few sigmas to check.", ""]
    peak_s, peak_h = max(means, key=lambda p: p[1])
    last_s, last_h = means[-1]
    if peak_s == last_s:
        return [
            f"Entropy paradox **not seen** here: entropy still rises at the largest sigma "
            f"({last_s:g}: {last_h:.3g} bits); extend the grid to see whether it falls.",
            "",
        ]
    peak = {
        r["seed"]: r["value"]
        for r in data.values("entropy_bits", **combo)
        if float(r["sigma"]) == peak_s
    }
    last = {
        r["seed"]: r["value"]
        for r in data.values("entropy_bits", **combo)
        if float(r["sigma"]) == last_s
    }
    drops = [peak[s] - last[s] for s in peak if s in last]
    e = estimate(drops)
    verdict = (
        "reproduced"
        if (e.n >= 2 and e.lo > 0)
        else ("seen in the mean, not significant" if e.mean > 0 else "not seen")
    )
    return [
        f"Entropy paradox **{verdict}**: entropy peaks at sigma {peak_s:g} ({peak_h:.3g} bits) "
        f"and falls by {fmt_ci(e, 3)} bits (per-seed drop, n = {e.n}) by sigma {last_s:g}.",
        "",
    ]


def _clip(text: str, n: int = 90) -> str:
    t = " ".join(text.split())
    return t if len(t) <= n else t[: n - 3] + "..."


def _threshold_levels(exp: Experiment, base: float) -> list[tuple[str, float]]:
    levels = [(f"{m:g}x baseline", m * base) for m in exp.report_settings["multiples"]]
    levels += [(f"perplexity {a:g}", a) for a in exp.report_settings["absolute"]]
    return levels


def crossing_table(
    data: Data, exp: Experiment, axes: Sequence[str], summary: list[dict[str, Any]]
) -> tuple[list[str], dict]:
    """Sigma where perplexity crosses each threshold, per combination of ``axes``, with
    intervals over seeds. Returns the table lines and ``{(combo, label): (crossings, never)}``."""
    found: dict[tuple, tuple[list[float], int]] = {}
    table = []
    header = [*axes, "baseline ppl"]
    labels: list[str] = []
    for combo in _combos(data, list(axes)):
        base = baseline(data, combo["model"])
        cells: list[Any] = [combo[a] for a in axes] + [f"{base:.4g}"]
        for label, level in _threshold_levels(exp, base):
            if label not in labels:
                labels.append(label)
            if not level > base:  # nothing to cross: the unperturbed model is above
                cells.append("baseline already above")
                continue
            xs, never = crossings_by_seed(curves(data, "perplexity", **combo), level)
            found[(tuple(combo.items()), label)] = (xs, never)
            e = estimate(xs)
            cells.append(fmt_ci(e) + (f" ({never} seed(s) never cross)" if never else ""))
            summary.append(
                {
                    **combo,
                    "metric": f"sigma at {label}",
                    "mean": e.mean,
                    "lo": e.lo,
                    "hi": e.hi,
                    "n": e.n,
                }
            )
        table.append(cells)
    return _md_table(header + [f"sigma at {lab}" for lab in labels], table), found


def section_layer_sensitivity(
    data: Data, exp: Experiment, summary: list[dict[str, Any]]
) -> list[str]:
    out = ["## Attention-only vs MLP-only noise", ""]
    out.append(
        f"Published ({PUBLISHED['model']}): attention-only noise crosses perplexity 100 at "
        f"sigma about {PUBLISHED['ppl100_attention']}, MLP-only at about "
        f"{PUBLISHED['ppl100_mlp']}: attention is more sensitive, hence 'digital attention, "
        "analog MLP'. Ours: the sigma where each seed's perplexity curve crosses the level "
        "(log-linear interpolation between grid points), mean [95 % interval] over seeds."
    )
    out.append("")
    lines, found = crossing_table(data, exp, ["model", "noise", "roles"], summary)
    out += lines
    for model in data.distinct("model"):
        for noise in data.distinct("noise", model=model):
            for label, _ in _threshold_levels(exp, baseline(data, model)):
                att = found.get(
                    ((("model", model), ("noise", noise), ("roles", "attention")), label)
                )
                mlp = found.get(((("model", model), ("noise", noise), ("roles", "mlp")), label))
                if not att or not mlp:
                    continue
                d = difference(mlp[0], att[0])
                if att[1] or mlp[1]:
                    note = f" ({att[1]} attention / {mlp[1]} MLP seed(s) never cross: the difference is bounded below)"
                else:
                    note = ""
                if d.n >= 2 and d.lo > 0:
                    v = "**yes**: attention is more sensitive (MLP tolerates more noise)"
                elif d.n >= 2 and d.hi < 0:
                    v = "**no, the reverse**: MLP is more sensitive"
                else:
                    v = "**not resolved** at this number of seeds"
                out.append(
                    f"- {model}, {noise}, {label}: sigma(MLP) - sigma(attention) = "
                    f"{fmt_ci(d, 3)}{note}. Digital attention, analog MLP follows? {v}."
                )
    out.append("")
    return out


def section_goldilocks(data: Data, exp: Experiment, summary: list[dict[str, Any]]) -> list[str]:
    pub = PUBLISHED["goldilocks"]
    out = ["## Goldilocks: does a small sigma raise diversity?", ""]
    out.append(
        f"Published (one unseeded run): Distinct-2 +{pub['distinct_2_change_pct']} % at "
        f"perplexity +{pub['perplexity_change_pct']} %. Ours: change against the "
        "unperturbed model's greedy continuations of the same prompts, in %, mean [95 % "
        "interval] over seeds (each seed one noise draw)."
    )
    out.append("")
    gen = exp.settings
    out.append(
        f"Generation: {len(gen['prompts'])} prompts x {gen['tokens']} new tokens, greedy; "
        "Distinct-2 over all continuations pooled."
    )
    out.append("")
    verdicts = []
    for combo in _combos(data, ["model", "noise", "roles"]):
        d0 = baseline(data, combo["model"], "distinct_2")
        p0 = baseline(data, combo["model"], "perplexity")
        table = []
        for sigma in [s for s in _sigmas(exp) if s > 0]:
            d = estimate(_pct_change(at_sigma(data, "distinct_2", sigma, **combo), d0))
            p = estimate(_pct_change(at_sigma(data, "perplexity", sigma, **combo), p0))
            summary.append(
                {
                    **combo,
                    "sigma": sigma,
                    "metric": "distinct_2 change %",
                    "mean": d.mean,
                    "lo": d.lo,
                    "hi": d.hi,
                    "n": d.n,
                }
            )
            summary.append(
                {
                    **combo,
                    "sigma": sigma,
                    "metric": "perplexity change %",
                    "mean": p.mean,
                    "lo": p.lo,
                    "hi": p.hi,
                    "n": p.n,
                }
            )
            table.append([f"{sigma:g}", fmt_ci(d, 3), fmt_ci(p, 3)])
            if d.n >= 2 and d.lo > 0:
                verdicts.append(
                    f"{combo['model']} sigma {sigma:g}: Distinct-2 {fmt_ci(d, 3)} %, perplexity {fmt_ci(p, 3)} %"
                )
        out.append(
            f"### {combo['model']}, {combo['noise']}, roles {combo['roles']}: Distinct-2 {d0:.4g}, perplexity {p0:.4g} unperturbed"
        )
        out.append("")
        out += _md_table(["sigma", "Distinct-2 change %", "perplexity change %"], table)
    if verdicts:
        out.append("Diversity gain whose interval excludes zero: " + "; ".join(verdicts) + ".")
    else:
        out.append(
            "**No sigma gives a Distinct-2 gain whose 95 % interval excludes zero**: the "
            "published +7.8 % is within what seed-to-seed noise produces here."
        )
    out.append("")
    return out


def section_scaling(data: Data, exp: Experiment, summary: list[dict[str, Any]]) -> list[str]:
    out = ["## Noise tolerance against model size", ""]
    out.append(
        "Published: 2x perplexity at sigma "
        + ", ".join(f"{v} ({k})" for k, v in PUBLISHED["sigma_2x"].items())
        + ": the larger model tolerates less absolute noise. Ours: the sigma at 2x "
        "baseline perplexity, absolute and divided by the pooled std of the perturbed weights."
    )
    out.append("")
    table, pts = [], []
    for combo in _combos(data, ["model", "noise", "roles"]):
        base = baseline(data, combo["model"])
        std = baseline(data, combo["model"], "weight_std")
        params = baseline(data, combo["model"], "params")
        xs, never = crossings_by_seed(curves(data, "perplexity", **combo), 2 * base)
        e = estimate(xs)
        rel = estimate([x / std for x in xs]) if std and math.isfinite(std) else estimate([])
        summary.append(
            {**combo, "metric": "sigma at 2x", "mean": e.mean, "lo": e.lo, "hi": e.hi, "n": e.n}
        )
        summary.append(
            {
                **combo,
                "metric": "sigma at 2x / weight std",
                "mean": rel.mean,
                "lo": rel.lo,
                "hi": rel.hi,
                "n": rel.n,
            }
        )
        table.append(
            [
                combo["model"],
                f"{params:,.0f}" if math.isfinite(params) else "",
                f"{base:.4g}",
                f"{std:.4g}",
                fmt_ci(e),
                fmt_ci(rel),
                str(never),
            ]
        )
        if math.isfinite(params) and math.isfinite(e.mean):
            pts.append((params, e.mean, rel.mean, combo["model"]))
    out += _md_table(
        [
            "model",
            "parameters",
            "baseline ppl",
            "weight std",
            "sigma at 2x",
            "sigma at 2x / std",
            "seeds never crossing",
        ],
        table,
    )
    if len(pts) >= 2:
        pts.sort()
        from scipy.stats import spearmanr

        rho_abs = spearmanr([p[0] for p in pts], [p[1] for p in pts]).statistic
        rho_rel = spearmanr([p[0] for p in pts], [p[2] for p in pts]).statistic
        out.append(
            f"Rank correlation with parameter count over {len(pts)} models: absolute sigma "
            f"{rho_abs:+.2f}, relative sigma {rho_rel:+.2f} (negative: bigger models "
            "tolerate less noise, as published)."
        )
        out.append("")
    return out


def section_table(data: Data, exp: Experiment, summary: list[dict[str, Any]]) -> list[str]:
    """Every metric per grid point (seeds pooled): mean [95 % interval]."""
    axes = [a for a in data.axes if a != "seed"]
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in data.rows:
        if math.isnan(r["value"]):
            continue
        groups[(*[r[a] for a in axes], r["metric"])].append(r["value"])
    out = ["## All measurements (mean [95 % interval] over seeds)", ""]
    table = []
    for key, vals in groups.items():
        e = estimate(vals)
        table.append([*key, fmt_ci(e), e.n])
        summary.append(
            {
                **dict(zip(axes, key[:-1], strict=True)),
                "metric": key[-1],
                "mean": e.mean,
                "lo": e.lo,
                "hi": e.hi,
                "n": e.n,
            }
        )
    out += _md_table([*axes, "metric", "value", "n"], table)
    return out


def _coord_table(
    data: Data, axes: Sequence[str], metrics: Sequence[str], summary: list[dict[str, Any]]
) -> tuple[list[list[Any]], dict[tuple[str, ...], dict[str, dict[str, float]]]]:
    """Per combination of ``axes`` (seeds pooled): each metric's mean [95 % interval];
    also ``{combo: {metric: {seed: value}}}`` for paired comparisons."""
    per: dict[tuple[str, ...], dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in data.rows:
        if r["metric"] in metrics:
            per[tuple(r[a] for a in axes)][r["metric"]][r["seed"]] = r["value"]
    table = []
    for key, by_metric in per.items():
        cells: list[Any] = list(key)
        for m in metrics:
            e = estimate(list(by_metric.get(m, {}).values()), log=m == "perplexity")
            cells.append(fmt_ci(e))
            summary.append(
                {
                    **dict(zip(axes, key, strict=True)),
                    "metric": m,
                    "mean": e.mean,
                    "lo": e.lo,
                    "hi": e.hi,
                    "n": e.n,
                }
            )
        table.append(cells)
    return table, per


def section_temporal_drift(data: Data, exp: Experiment, summary: list[dict[str, Any]]) -> list[str]:
    from analogsim.clock.schedules import parse_schedule

    n = int(exp.settings["tokens"])
    out = ["## Noise growing during generation", ""]
    out.append(
        "The public study ramped sigma over the generated tokens but added independent "
        "noise at each token, so the weights' error after n tokens had std "
        "sqrt(sum of squared increments): sigma_end / sqrt(n) for a linear ramp, not sigma_end "
        f"(REFERENCES.md). With n = {n} tokens here, a linear ramp to sigma_end reached "
        f"only {1 / math.sqrt(n):.3f} sigma_end. 'published:' rows reproduce that "
        "per-token std; plain schedules are the ramp done correctly; 'device:' rows are "
        f"the chip's physical drift, {exp.settings['token_time']} of deployment per token "
        f"from {exp.settings['start_age']} after programming."
    )
    out.append("")
    metrics = ["gap_nats", "entropy_bits", "cliff_share", "distinct_2"]
    table, per = _coord_table(data, ["model", "process", "temperature"], metrics, summary)
    for row in table:
        proc = row[1]
        spec = proc.removeprefix("published:")
        if not proc.startswith("device:"):
            sched = parse_schedule(spec, n)
            end = float(sched.sigma(n - 1))
            if proc.startswith("published:"):
                from analogsim.runner.drift import published_schedule

                end = float(published_schedule(spec, n).sigma(n - 1))
            row.insert(3, f"{end:.3g}")
            row[2] = ""  # a schedule does not depend on the temperature
        else:
            row.insert(3, "")
        samples = [
            r["text"] for r in data.values("sample", model=row[0], process=proc) if r["text"]
        ]
        row.append(_clip(samples[0], 60) if samples else "")
    out += _md_table(
        [
            "model",
            "process",
            "temperature",
            "sigma at last token",
            "gap to digital (nats/token)",
            "entropy (bits)",
            "cliff share",
            "Distinct-2",
            "sample",
        ],
        table,
    )
    out.append(
        "gap: mean log-probability of the generated tokens under the chip minus under the "
        "digital model (0: the chip writes what the digital model would; larger: it drifted "
        "away); cliff share: prompts where the CUSUM cliff detector fired."
    )
    out.append("")
    for key, by_metric in per.items():
        model, proc, temp = key
        if proc.startswith("published:"):
            correct = per.get((model, proc.removeprefix("published:"), temp))
            if correct is None:
                continue
            a, b = correct["gap_nats"], by_metric["gap_nats"]
            d = estimate([a[s] - b[s] for s in a if s in b])  # paired: one draw per seed
            out.append(
                f"- {model}, {proc.removeprefix('published:')}: the ramp done correctly "
                f"drifts {fmt_ci(d, 3)} nats/token further from the digital model than the "
                "published process (paired over seeds: the same noise draw)."
            )
    out.append("")
    return out


def section_partitions(data: Data, exp: Experiment, summary: list[dict[str, Any]]) -> list[str]:
    out = ["## Partitions over age and temperature", ""]
    out.append(
        "Perplexity (geometric mean [95 % interval] over programmed chips, one per seed) "
        "of each partition, read at each deployment age and temperature; energy per token "
        "as `analogsim compare` prices it (fp16 digital arithmetic, SRAM weights)."
    )
    out.append("")
    q = "perplexity"
    metrics = [q, "energy_per_token_J", "analog_param_share"]
    table, _ = _coord_table(
        data, ["model", "mapping", "device", "age", "temperature"], metrics, summary
    )
    out += _md_table(
        [
            "model",
            "mapping",
            "device",
            "age",
            "temperature",
            "perplexity",
            "energy per token (J)",
            "analog parameter share",
        ],
        table,
    )
    return out


SECTIONS: dict[str, Callable[[Data, Experiment, list[dict[str, Any]]], list[str]]] = {
    "temporal_drift": section_temporal_drift,
    "partitions": section_partitions,
    "noise_sweep": section_noise_sweep,
    "layer_sensitivity": section_layer_sensitivity,
    "goldilocks": section_goldilocks,
    "scaling": section_scaling,
    "table": section_table,
}


def write_report(
    run: RunDir,
    exp: Experiment,
    *,
    skipped: dict[str, str] | None = None,
    errors: Sequence[tuple[Point, str]] = (),
) -> Path:
    """Write ``report.md`` and ``summary.csv`` into the run directory; returns the report."""
    # results.csv, not the journal order: sections list points in grid order
    data = Data(read_results(run.path), [a for a, _ in exp.axes])
    summary: list[dict[str, Any]] = []
    lines = [f"# {exp.name}" + (" (quick)" if exp.quick else ""), ""]
    if exp.description:
        lines += [exp.description, ""]
    expected = run.expected if run.expected is not None else "?"
    lines += [
        f"- config: `{exp.path}`" + (" with its `[quick]` values" if exp.quick else ""),
        f"- points: {run.points} of {expected} in the journal; grid: "
        + ", ".join(f"{a} ({len(v)})" for a, v in exp.axes),
        f"- executor: {run.manifest.get('executor', '')}",
    ]
    for why in (skipped or {}).values():
        lines.append(f"- {why}")
    if errors:
        lines.append(
            f"- **{len(errors)} point(s) failed** (rerun the same command to retry): "
            + "; ".join(p.label() for p, _ in errors[:5])
        )
    lines.append("")
    if data.rows:
        lines += SECTIONS.get(exp.report, section_table)(data, exp, summary)
    else:
        lines += ["No point finished yet.", ""]
    path = run.path / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if summary:
        cols: list[str] = []
        for r in summary:
            cols += [k for k in r if k not in cols]
        write_csv(run.path / "summary.csv", summary, cols)
    return path
