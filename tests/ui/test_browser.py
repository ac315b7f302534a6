"""``analogsim ui`` in a real browser: headless Chromium, driven by Playwright, against
the command serving a small random GPT-2 on a free loopback port.

One session-wide server; each test opens a fresh page. About a minute in all on the
shared 2-core machine. Screenshots: see tests/ui/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from analogsim.clock.profile_spec import parse_profile

pytestmark = pytest.mark.browser


# ------------------------------------------------------------------------------ helpers
def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def choose(page: Any, elem: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown ``#elem``."""
    page.locator(f"#{elem} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def set_number(page: Any, elem: str, value: str) -> None:
    """Type ``value`` into the number box of a slider or number widget ``#elem``."""
    box = page.locator(f"#{elem} input[type=number]")
    box.fill(value)
    box.press("Enter")


def set_text(page: Any, elem: str, value: str) -> None:
    box = page.locator(f"#{elem} textarea, #{elem} input").first
    box.fill(value)


def rows(page: Any, elem: str) -> Any:
    """The body rows of the Gradio table ``#elem`` (the header row is row 1)."""
    return page.locator(f'#{elem} [role=row]:not([aria-rowindex="1"])')


def answer_text(page: Any, elem: str) -> str:
    """The tokens of a HighlightedText answer, joined."""
    return "".join(page.locator(f"#{elem} .token .text").all_inner_texts())


def ask(page: Any, question: int = 1) -> str:
    """Ask both models (the ``question``-th time on this page); wait for the verdict line
    and return it."""
    tab(page, "Talk")
    page.locator("#ask").click()
    verdict = page.locator("#talk-verdict")
    expect(verdict).to_contain_text(f"question {question}: the chip answers")
    return verdict.inner_text()


def no_traceback(server: dict[str, object]) -> None:
    log = Path(str(server["log"])).read_text()
    assert "Traceback" not in log, log[-3000:]


# ------------------------------------------------------------------------------ tests
def test_chip_panel_shows_the_placement_of_every_layer(ui_page, server, screenshots):
    page = ui_page
    table = page.locator("#placement")
    text = table.inner_text()
    assert "embedding" in text and "analog" in text and "default" in text
    choose(page, "mapping", "digital_attention_analog_mlp")
    expect(table).to_contain_text("int8")
    body = rows(page, "placement").all_inner_texts()
    attention = [r for r in body if "attention" in r]
    assert attention and all("digital" in r for r in attention)
    assert any("mlp" in r and "analog" in r for r in body)
    expect(page.locator("#totals")).to_contain_text("analog:")
    page.screenshot(path=screenshots / "chip.png", full_page=True)


def test_aged_hot_chip_answers_differently_and_an_ideal_chip_identically(
    ui_page, server, screenshots
):
    page = ui_page
    # all analog on PCM, one year at 85 C
    choose(page, "device", "pcm")
    set_number(page, "age", "7.5")  # log10(s): 3.2e7 s, one year
    set_number(page, "temperature", "85")
    expect(page.locator("#age-text")).to_contain_text("85")
    assert "1y" in page.locator("#age-text").inner_text()
    verdict = ask(page)
    digital, chip = answer_text(page, "digital-answer"), answer_text(page, "chip-answer")
    assert digital and chip
    assert "differently" in verdict and digital != chip
    assert "85 C" in page.locator("#chip-status").inner_text()
    page.screenshot(path=screenshots / "talk.png", full_page=True)

    # click a chip token: the top-5 of both models at that step
    top5 = page.locator("#top5-title")
    assert not top5.is_visible()
    page.locator("#chip-answer .token").nth(1).click()
    top5.wait_for(state="visible")
    assert "step 1" in page.locator("#top5-title").inner_text()
    for side in ("top5-chip", "top5-digital"):
        top = rows(page, side)
        top.nth(4).wait_for()
        assert top.count() == 5
    page.screenshot(path=screenshots / "talk_top5.png", full_page=True)

    # the ideal chip: ideal card, every tile non-ideality off -> the digital answer
    tab(page, "Chip")
    page.locator("#ideal").click()
    expect(page.locator("#placement")).to_contain_text("ideal")
    verdict = ask(page, 2)
    assert "identically" in verdict
    assert answer_text(page, "chip-answer") == answer_text(page, "digital-answer") == digital
    no_traceback(server)


def test_save_run_writes_the_generate_run_directory(ui_page, server):
    page = ui_page
    choose(page, "device", "pcm")
    tab(page, "Talk")
    set_text(page, "tokens", "6")
    ask(page)
    page.locator("#save").click()
    saved = page.locator("#saved")
    expect(saved).to_contain_text("run directory")
    run_dir = Path(saved.locator("code").first.inner_text())
    assert run_dir.parent == Path(str(server["runs"])).resolve() or run_dir.parent == Path(
        str(server["runs"])
    )
    for name in ("results.csv", "manifest.json", "trace.csv", "logprob.png"):
        assert (run_dir / name).exists(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["command"] == "generate" and manifest["status"] == "complete"
    assert manifest["config"]["device"] == "pcm"
    assert "analogsim generate" in saved.inner_text()


def test_age_while_it_talks_runs_the_event_clock(ui_page, server, screenshots):
    page = ui_page
    choose(page, "device", "pcm")
    tab(page, "Age while it talks")
    set_text(page, "age-tokens", "8")
    set_text(page, "token-time", "1h")
    page.locator("#run-age").click()
    cliff = page.locator("#cliff")
    expect(cliff).to_contain_text("cliff detector")
    assert "state updates" in cliff.inner_text()
    assert page.locator("#age-answer textarea").input_value()
    page.locator("#age-plots img").nth(3).wait_for()
    assert page.locator("#age-live").is_visible()  # the live temperature per token
    run_dir = Path(page.locator("#age-run-dir code").first.inner_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # held at the Chip panel's 27 C until its age (1 y), then the ramp
    profile = parse_profile(manifest["config"]["temperature"])
    year = 10**7.5  # the age slider's default
    assert profile.temperature(year - 1) == pytest.approx(300.15)
    assert profile.temperature(year + 86400 / 2) == pytest.approx(329.15, abs=0.01)
    assert manifest["config"]["token_time_s"] == 3600.0
    page.screenshot(path=screenshots / "age.png", full_page=True)


def test_compare_draws_partitions_over_age_and_temperature(ui_page, server, screenshots):
    page = ui_page
    tab(page, "Compare")
    page.locator("#partitions").get_by_label("digital_attention_analog_mlp").uncheck()
    set_text(page, "cmp-times", "1h,1y")
    set_text(page, "cmp-tokens", "64")
    page.locator("#run-compare").click()
    expect(page.locator("#cmp-run-dir")).to_contain_text("run directory")
    page.locator("#cmp-time-plot img").wait_for()
    page.locator("#cmp-energy-plot img").wait_for()
    body = rows(page, "cmp-table").all_inner_texts()
    assert sum("all_analog" in r for r in body) == 4  # 2 ages x 2 temperatures
    run_dir = Path(page.locator("#cmp-run-dir code").first.inner_text())
    assert (run_dir / "results.csv").exists() and (run_dir / "perplexity_vs_time.png").exists()
    assert json.loads((run_dir / "manifest.json").read_text())["command"] == "compare"
    page.screenshot(path=screenshots / "compare.png", full_page=True)


def test_device_panel_draws_the_datasheet(ui_page, server, screenshots):
    page = ui_page
    tab(page, "Device")
    set_text(page, "ds-samples", "2000")
    page.locator("#run-datasheet").click()
    page.locator("#ds-plot img").wait_for()
    body = rows(page, "ds-table")
    body.nth(23).wait_for()  # 3 levels x 4 ages x 2 temperatures
    assert body.count() == 24
    page.screenshot(path=screenshots / "device.png", full_page=True)


def test_a_bad_value_shows_one_message_in_the_page(ui_page, server, screenshots):
    page = ui_page
    tab(page, "Age while it talks")
    set_text(page, "token-time", "fast")
    page.locator("#run-age").click()
    expect(page.locator("body")).to_contain_text("token time")
    body = page.locator("body").inner_text()
    assert "fast" in body and "Traceback" not in body
    page.screenshot(path=screenshots / "error.png", full_page=True)
    # a bad device setting on the Chip panel: one message too
    tab(page, "Chip")
    page.get_by_text("tile settings").click()
    page.locator("#tile-override input").check()
    set_text(page, "adc-bits", "1")
    expect(page.locator("body")).to_contain_text("adc_bits")
    no_traceback(server)
