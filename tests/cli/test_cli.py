"""CLI smoke tests (``analogsim/cli/__init__.py``) on seconds-scale inputs, plus the demo's
report writer (``analogsim/demo.py``).

The typer app runs in-process with ``CliRunner``; ``main()`` (the console-script entry
point that turns analogsim errors into one line and exit code 2) is tested separately,
since the runner bypasses it.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

from analogsim.cli import main
from analogsim.devices import list_devices
from analogsim.errors import ConfigError
from tests.devices._stats import Z, folded_normal_mgf

pytestmark = pytest.mark.filterwarnings("ignore:mapping 'all_digital' places no layer analog")

HOUR = 3600.0
YEAR = 365.25 * 86400.0
DOCUMENTED = {"mapping", "time_s", "temperature_K", "metric", "mean", "std", "energy_per_token_J"}

HELP = {
    ("devices",): ["--json"],
    ("device", "show"): [
        "--g",
        "--times",
        "--temperature",
        "--samples",
        "--seed",
        "--json",
        "--plot",
    ],
    ("eval",): ["--mapping", "--device", "--times", "--temperature", "--seeds", "--out", "--json"],
    ("roles",): ["--json"],
    ("map",): ["--mapping", "--device", "--json"],
    ("sweep",): [
        "--noise",
        "--sigma",
        "--relative",
        "--roles",
        "--include-embeddings",
        "--seeds",
        "--threshold",
        "--multiple",
        "--out",
        "--json",
    ],
    ("compare",): [
        "--mappings",
        "--device",
        "--times",
        "--temperature",
        "--seeds",
        "--vary",
        "--precision",
        "--weight-memory",
        "--out",
        "--json",
    ],
    ("demo",): ["--out", "--seeds", "--quick"],
    ("bench",): ["--out", "--quick"],
}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


# ---------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", list(HELP), ids=" ".join)
def test_help(cli, command):
    res = cli(*command, "--help")
    assert res.exit_code == 0, res.output
    for option in HELP[command]:
        assert option in res.output, option


def test_top_level_help_lists_commands(cli):
    res = cli("--help")
    assert res.exit_code == 0
    for name in ("devices", "device", "eval", "roles", "map", "sweep", "compare", "demo", "bench"):
        assert name in res.output


def test_version(cli):
    from analogsim import __version__

    res = cli("--version")
    assert res.exit_code == 0 and __version__ in res.output


# ---------------------------------------------------------------------------- devices
def test_devices_table(cli):
    res = cli("devices")
    assert res.exit_code == 0
    for name in list_devices():
        assert name in res.output


def test_devices_json(cli):
    res = cli("devices", "--json")
    assert res.exit_code == 0
    rows = res.json()
    assert [r["name"] for r in rows] == list_devices()
    for r in rows:
        assert {"technology", "g_min_uS", "g_max_uS", "drift", "temperature", "faults"} <= set(r)
        assert r["g_min_uS"] < r["g_max_uS"]
    by = {r["name"]: r for r in rows}
    assert by["ideal"]["drift"] == "none" and by["pcm"]["drift"] != "none"


def test_device_show_json_pcm(cli):
    n = 20_000
    res = cli(
        "device",
        "show",
        "pcm",
        "--g",
        "1.0",
        "--times",
        "1h,1y",
        "--temperature",
        "300K,358K",
        "--json",
        "--samples",
        n,
    )
    assert res.exit_code == 0, res.output
    rows = res.json()
    assert len(rows) == 4
    for r in rows:
        assert set(r) == {"g_rel", "time_s", "temperature_K", "mean", "std"}
    by = {(r["time_s"], r["temperature_K"]): r for r in rows}
    assert set(by) == {(HOUR, 300.0), (YEAR, 300.0), (HOUR, 358.0), (YEAR, 358.0)}
    for t, published in ((HOUR, 0.775), (YEAR, 0.50)):
        room, hot = by[(t, 300.0)], by[(t, 358.0)]
        se = room["std"] / math.sqrt(n)
        closed = folded_normal_mgf(math.log((t + 20.0) / 20.0), 0.049, 0.008)
        assert abs(room["mean"] - closed) <= Z * se
        assert abs(room["mean"] - published) <= 0.005 + Z * se  # published to 3 / 2 digits
        assert room["mean"] - hot["mean"] > Z * math.hypot(room["std"], hot["std"]) / math.sqrt(n)


def test_device_show_table_and_plot(cli, tmp_path):
    plot = tmp_path / "sub" / "ds.png"
    res = cli(
        "device",
        "show",
        "ideal",
        "--g",
        "0.5,1",
        "--times",
        "1s,1d",
        "--samples",
        200,
        "--plot",
        plot,
    )
    assert res.exit_code == 0, res.output
    assert "1.0000" in res.output and "1d" in res.output
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("device", "show", "pcm", "--temperature", "hot"), ["temperature", "hot", "K or C"]),
        (("device", "show", "nosuch"), ["unknown device", "nosuch", "pcm"]),
        (("device", "show", "pcm", "--times", "1 fortnight"), ["not a time", "fortnight"]),
        (("device", "show", "pcm", "--g", "1.5"), ["relative level", "1.5"]),
    ],
)
def test_device_show_errors(cli, args, words):
    res = cli(*args)
    assert res.exit_code != 0
    assert isinstance(res.exception, ConfigError)
    for w in words:
        assert w in str(res.exception)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["device", "show", "pcm", "--temperature", "hot"], ["error:", "temperature", "hot"]),
        (["device", "show", "nosuch"], ["error:", "unknown device", "nosuch"]),
        (["map", "digits-mlp", "--mapping", "nosuch"], ["error:", "unknown mapping", "nosuch"]),
        (["compare", "digits-mlp", "--vary", "adc_bits"], ["error:", "KEY=V1,V2"]),
    ],
)
def test_main_turns_errors_into_one_line_and_exit_2(monkeypatch, capsys, argv, words):
    monkeypatch.setattr(sys, "argv", ["analogsim", *argv])
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    for w in words:
        assert w in err
    assert "Traceback" not in err


def test_main_usage_error_exits_nonzero(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["analogsim", "device", "show"])  # CARD missing
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    assert "Missing argument 'card'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- roles / map
def test_roles_json(cli):
    res = cli("roles", "digits-mlp", "--json")
    assert res.exit_code == 0, res.output
    data = res.json()
    assert data["family"] == "torch"
    assert [(x["name"], x["role"]) for x in data["layers"]] == [
        ("0", "mlp"),
        ("2", "mlp"),
        ("4", "head"),
    ]
    assert [(x["in_features"], x["out_features"]) for x in data["layers"]] == [
        (64, 128),
        (128, 64),
        (64, 10),
    ]
    assert data["unclassified"] == []


def test_roles_table(cli):
    res = cli("roles", "digits-mlp")
    assert res.exit_code == 0
    assert "head" in res.output and "mlp" in res.output


def test_map_json_first_last_digital(cli):
    res = cli("map", "digits-mlp", "--mapping", "first_last_digital", "--json")
    assert res.exit_code == 0, res.output
    data = res.json()
    layers = data["layers"]
    for layer in layers:
        assert {"name", "role", "placement", "device", "tiles", "params", "rule"} <= set(layer)
    assert [(x["name"], x["placement"]) for x in layers] == [
        ("0", "digital"),
        ("2", "analog"),
        ("4", "digital"),
    ]
    assert [x["device"] for x in layers] == [None, "pcm", None]
    assert [x["tiles"] for x in layers] == [0, 1, 0]
    # Linear(64,128), Linear(128,64), Linear(64,10) with biases
    params = [64 * 128 + 128, 128 * 64 + 64, 64 * 10 + 10]
    assert [x["params"] for x in layers] == params
    assert layers[1]["rule"] == "default"
    assert "block" in layers[0]["rule"] and "block" in layers[2]["rule"]
    t = data["totals"]
    assert (t["layers"], t["analog_layers"], t["tiles"]) == (3, 1, 1)
    assert t["params"] == sum(params)
    assert t["analog_param_share"] == pytest.approx(params[1] / sum(params))
    assert t["analog_mac_share"] == pytest.approx(128 * 64 / (64 * 128 + 128 * 64 + 64 * 10))


def test_map_table_with_device(cli):
    res = cli("map", "digits-mlp", "--mapping", "all_analog", "--device", "rram")
    assert res.exit_code == 0, res.output
    assert "rram" in res.output and "3/3 layers" in res.words()


# ---------------------------------------------------------------------------- eval
def test_eval_writes_run_dir_and_resumes(cli, tmp_path):
    out = tmp_path / "eval"
    args = ("eval", "digits-mlp", "--times", "1h", "--seeds", "1", "--out", out, "--no-progress")
    res = cli(*args)
    assert res.exit_code == 0, res.output
    assert (out / "results.csv").exists() and (out / "manifest.json").exists()
    assert list(out.glob("*.png"))
    rows = _csv(out / "results.csv")
    assert [(r["mapping"], r["seed"], r["time_s"]) for r in rows] == [
        ("digital", "-1", "0.0"),
        ("all_analog", "0", "3600.0"),
    ]
    m = _manifest(out)
    assert m["status"] == "complete" and m["command"] == "eval"
    assert m["config"]["times_s"] == [HOUR] and m["config"]["seeds"] == [0]
    assert "pcm" in m["device_cards"]
    assert "accuracy" in res.output and "run directory:" in res.output

    # the same command again: nothing is measured twice
    res = cli(*args, "--json")
    assert res.exit_code == 0, res.output
    data = res.json()
    assert _manifest(out)["resumed_points"] == 2
    assert len(_csv(out / "results.csv")) == 2
    assert data["digital"] == pytest.approx(float(rows[0]["value"]))
    (s,) = data["summary"]
    assert s["mean"] == pytest.approx(float(rows[1]["value"]))

    # another config for the same folder is refused
    res = cli("eval", "digits-mlp", "--times", "1h", "--seeds", "2", "--out", out, "--no-progress")
    assert res.exit_code != 0
    assert isinstance(res.exception, ConfigError)
    assert "manifest.json" in str(res.exception)


# ---------------------------------------------------------------------------- sweep
def test_sweep_json(cli, tmp_path):
    out = tmp_path / "sweep"
    res = cli(
        "sweep",
        "digits-mlp",
        "--sigma",
        "0:0.1:3",
        "--seeds",
        "1",
        "--out",
        out,
        "--json",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    data = res.json()
    assert [s["sigma"] for s in data["summary"]] == pytest.approx([0.0, 0.05, 0.1])
    assert {s["metric"] for s in data["summary"]} == {"accuracy"}
    assert data["summary"][0]["mean"] == data["baseline"]["accuracy"]  # sigma 0: no noise
    (c,) = data["crossings"]
    assert c["threshold"] == "0.9x baseline"
    assert c["level"] == pytest.approx(0.9 * data["baseline"]["accuracy"])
    assert (out / "accuracy_vs_sigma.png").exists()
    assert len(_csv(out / "results.csv")) == 3
    m = _manifest(out)
    assert m["status"] == "complete" and m["config"]["sigmas"] == pytest.approx([0, 0.05, 0.1])


def test_sweep_table_with_roles(cli, tmp_path):
    res = cli(
        "sweep",
        "digits-mlp",
        "--sigma",
        "0,0.2",
        "--seeds",
        "2",
        "--roles",
        "head",
        "--out",
        tmp_path / "s",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    assert "baseline" in res.output and "0.9x baseline" in res.output
    assert _manifest(tmp_path / "s")["perturbed"] == [["4"], ["4"]]  # head weight and bias


def test_sweep_bad_role(cli, tmp_path):
    res = cli(
        "sweep", "digits-mlp", "--roles", "attention", "--out", tmp_path / "s", "--no-progress"
    )
    assert res.exit_code != 0
    assert "attention" in str(res.exception)


# ---------------------------------------------------------------------------- compare
@pytest.mark.parametrize(
    "form",
    [
        ("--mappings", "all_digital", "all_analog"),
        ("--mappings", "all_digital,all_analog"),
        ("--mappings", "all_digital", "--mappings", "all_analog"),
    ],
    ids=["space", "comma", "repeat"],
)
def test_compare_json(cli, tmp_path, form):
    out = tmp_path / "cmp"
    res = cli(
        "compare",
        "digits-mlp",
        *form,
        "--times",
        "1h",
        "--seeds",
        "1",
        "--out",
        out,
        "--json",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    rows = res.json()
    assert [r["mapping"] for r in rows] == ["all_digital", "all_analog"]
    for r in rows:
        assert set(r) == DOCUMENTED
        assert (r["time_s"], r["temperature_K"], r["metric"]) == (HOUR, 300.0, "accuracy")
    assert rows[0]["energy_per_token_J"] > rows[1]["energy_per_token_J"] > 0
    assert (out / "accuracy_vs_time.png").exists() and (out / "accuracy_vs_energy.png").exists()
    m = _manifest(out)
    assert m["config"]["mappings"] == ["all_digital", "all_analog"]
    assert m["digital"] == rows[0]["mean"]  # all digital scores as the digital model
    assert m["status"] == "complete"


def test_compare_vary(cli, tmp_path):
    res = cli(
        "compare",
        "digits-mlp",
        "--mappings",
        "all_digital",
        "all_analog",
        "--times",
        "1h",
        "--seeds",
        "1",
        "--vary",
        "adc_bits=4,8",
        "--out",
        tmp_path / "v",
        "--json",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    rows = res.json()
    assert [(r["mapping"], r["adc_bits"]) for r in rows] == [
        ("all_digital", 4),
        ("all_digital", 8),
        ("all_analog", 4),
        ("all_analog", 8),
    ]
    for r in rows:
        assert set(r) - DOCUMENTED == {"adc_bits", "vary"}
    assert rows[0]["energy_per_token_J"] == rows[1]["energy_per_token_J"]  # no ADC in digital
    assert rows[2]["energy_per_token_J"] < rows[3]["energy_per_token_J"]
    assert rows[0]["mean"] == rows[1]["mean"]


def test_compare_table(cli, tmp_path):
    res = cli(
        "compare",
        "digits-mlp",
        "--mappings",
        "all_analog",
        "--times",
        "1s,1h",
        "--seeds",
        "1",
        "--out",
        tmp_path / "t",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    assert "uJ" in res.output and "digital accuracy" in res.output


def test_compare_bad_vary_fails_before_any_work(cli, tmp_path):
    out = tmp_path / "never"
    res = cli(
        "compare",
        "digits-mlp",
        "--mappings",
        "all_analog",
        "--vary",
        "adc_bits=4,1",
        "--out",
        out,
        "--no-progress",
    )
    assert res.exit_code != 0
    assert isinstance(res.exception, ConfigError) and "adc_bits" in str(res.exception)
    assert not out.exists()


def test_compare_unknown_mapping_fails_before_any_work(cli, tmp_path):
    out = tmp_path / "never"
    res = cli("compare", "digits-mlp", "--mappings", "all_analog", "nosuch", "--out", out)
    assert res.exit_code != 0
    assert "nosuch" in str(res.exception)
    assert not out.exists()


# ---------------------------------------------------------------------------- demo
def _partition_section(root: Path) -> dict:
    from analogsim.studies.demo import PARTITIONS

    times = (1.0, YEAR)
    summary = []
    for i, m in enumerate(PARTITIONS):
        for temp in (300.0, 358.15):
            for t, mean, std in zip(
                times, (20.0 + i, math.inf if i == 3 else 30.0), (1.0, math.nan), strict=True
            ):
                summary.append(
                    dict(
                        mapping=m,
                        vary="",
                        time_s=t,
                        temperature_K=temp,
                        metric="perplexity",
                        mean=mean,
                        std=std,
                        n=2,
                    )
                )
    costs = {
        (m, ""): {"energy_per_token_J": 1e-6 * (i + 1), "tiles": 4 * i}
        for i, m in enumerate(PARTITIONS)
    }
    return {
        "kind": "partitions",
        "model": "tiny-lm",
        "metric": "perplexity",
        "res": {"digital": 19.5, "summary": summary, "costs": costs},
        "plots": [Path("tiny-lm/perplexity_vs_time.png")],
    }


def test_demo_report_from_hand_made_sections():
    from analogsim.studies.demo import _report

    devices = {
        "kind": "devices",
        "digital": 0.97,
        "summary": [
            dict(device=d, time_s=t, temperature_K=300.0, mean=0.9, std=0.01)
            for d in ("pcm", "rram")
            for t in (1.0, YEAR)
        ],
        "plots": [Path("digits-devices/accuracy_vs_time.png")],
    }
    text = _report([_partition_section(Path()), devices], 2, (1.0, YEAR))
    lines = text.splitlines()
    assert lines[0] == "# analogsim demo"
    assert "## tiny-lm: partitions (perplexity, lower is better; digital 19.5)" in lines
    assert "![perplexity_vs_time](tiny-lm/perplexity_vs_time.png)" in lines
    assert "| partition | energy/token | tiles | T (K) | 1s | 1y |" in lines
    assert "| all_digital | 1 uJ | 0 | 300 | 20 ± 1 | 30 ± nan |" in lines
    assert "| all_analog | 4 uJ | 12 | 358.15 | 23 ± 1 | inf ± nan |" in lines
    # every table row has as many cells as its header
    for header_i, line in enumerate(lines):
        if line.startswith("| partition") or line.startswith("| device"):
            n = line.count("|")
            assert lines[header_i + 1].count("|") == n
            for row in lines[header_i + 2 :]:
                if not row.startswith("|"):
                    break
                assert row.count("|") == n, row
    assert "## digits MLP on three devices (accuracy; digital 0.9700)" in lines
    assert "| rram | 300 | 0.900 ± 0.010 | 0.900 ± 0.010 |" in lines


def test_demo_write_combined(tmp_path):
    from analogsim.studies.demo import _write_combined

    rows = [{"study": "a", "value": math.inf, "extra": 1}, {"study": "b", "metric": "m"}]
    _write_combined(tmp_path / "results.csv", rows, ["study", "metric", "value"])
    assert _csv(tmp_path / "results.csv") == [
        {"study": "a", "metric": "", "value": "inf"},
        {"study": "b", "metric": "m", "value": ""},
    ]
    assert not list(tmp_path.glob("*.tmp"))


def test_run_demo_devices_only(tmp_path):
    """The device study of the demo on digits-mlp (no transformer: that needs tiny-gpt2)."""
    from analogsim.studies.demo import DEMO_DEVICES, DEMO_TEMPERATURES, run_demo

    root = run_demo(tmp_path / "demo", models=(), times=(1.0,), seeds=1, progress=False)
    report = (root / "report.md").read_text()
    assert "digits MLP on three devices" in report
    assert (root / "digits-devices" / "accuracy_vs_time.png").exists()
    rows = _csv(root / "results.csv")
    analog = [r for r in rows if r["mapping"] != "digital"]
    assert len(analog) == len(DEMO_DEVICES) * len(DEMO_TEMPERATURES)
    assert {r["study"] for r in rows} == {"digits-devices"}
    assert _manifest(root)["status"] == "complete"
    # again with the same folder: resumes, measures nothing new, same report
    run_demo(root, models=(), times=(1.0,), seeds=1, progress=False)
    assert _manifest(root / "digits-devices")["resumed_points"] == len(rows)
    assert (root / "report.md").read_text() == report


def test_own_warnings_print_one_line_once(capsys, monkeypatch):
    """analogsim's warnings reach the user as one 'warning:' line, each text once per run;
    other libraries' warnings keep Python's form."""
    import analogsim.cli as cli
    from analogsim.mapping import rules

    monkeypatch.setattr(cli, "_shown", set())
    seen = []
    monkeypatch.setattr(cli, "_default_showwarning", lambda *a: seen.append(a[0]))
    for _ in range(2):
        cli._show_warning(UserWarning("places nothing analog"), UserWarning, rules.__file__, 1)
    cli._show_warning(UserWarning("from elsewhere"), UserWarning, "/usr/lib/x.py", 1)
    err = capsys.readouterr().err
    assert err.count("warning: places nothing analog") == 1, err
    assert [str(m) for m in seen] == ["from elsewhere"]
