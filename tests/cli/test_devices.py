"""Tests of ``analogsim devices`` and ``analogsim device show`` (``analogsim/cli/devices.py``)."""

from __future__ import annotations

import math

import pytest

from analogsim.devices import list_devices
from analogsim.errors import ConfigError
from tests.devices._stats import Z, folded_normal_mgf

HOUR = 3600.0
YEAR = 365.25 * 86400.0


def test_devices_table(cli):
    res = cli("devices")
    assert res.exit_code == 0
    for name in list_devices():
        assert name in res.output


def test_devices_table_fits_80_columns(cli, monkeypatch):
    """At 80 columns no header and no value is broken mid-word ("temperatur e")."""
    from analogsim.cli.options import console

    monkeypatch.setattr(console, "_width", 80)
    res = cli("devices")
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert all(len(line) <= 80 for line in lines), res.output
    header = next(line for line in lines if "technology" in line)
    for word in ("name", "technology", "G (uS)", "drift, temperature, faults"):
        assert word in header
    rows = cli("devices", "--json").json()
    for r in rows:
        for key in ("drift", "temperature", "faults"):
            for word in r[key].split():
                assert word in res.output, (r["name"], key, word)


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
        # 85 C: thermally activated conduction (Ea 0.05 eV at g_max) outweighs the faster
        # drift of the hotter glass, and the spread grows (docs/temperature.md section 2)
        assert hot["mean"] - room["mean"] > Z * math.hypot(room["std"], hot["std"]) / math.sqrt(n)
        assert hot["std"] / hot["mean"] > room["std"] / room["mean"]


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
