"""The pages in a real headless Chromium: the city example driven with the arrow keys
(`cogment launch examples/city/launch.yaml --web`, every process real), and the default page
playing the test project, one tab or two. Every wait is for something the page shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from cogment.web.server import WebBridge
from tests.launch.conftest import RunningLaunch, city_copy
from tests.web.browser import chromium, console, missing_browser, text_of, wait

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=str(missing_browser()))

Start = Callable[..., Any]
Bridge = Callable[..., WebBridge]
SIDE_STREET_X = 12  # examples/city/environment.py: the car turns down the side street there
RED = (224, 49, 49)  # the car's colour on the canvas (city.js)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    """The browser in a new tab (a fresh sessionStorage: no session to resume)."""
    browser.switch_to.new_window("tab")
    yield browser
    browser.close()
    browser.switch_to.window(browser.window_handles[0])


@pytest.fixture(scope="module")
def city_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`cogment launch examples/city/launch.yaml --web` on free ports (on a copy of the
    example: its datalog lands next to the copy); the URL it prints."""
    city_launch = city_copy(tmp_path_factory.mktemp("web-city"))
    run = RunningLaunch(str(city_launch), "--web", "--free-ports", "--timeout", "170")
    try:
        match = run.wait_for_line(r"open (http://\S+) in a browser", timeout=60)
        yield match.group(1)
    finally:
        run.kill()
    assert "Traceback" not in run.stdout, run.stdout


def press(driver: Any, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def car_of(driver: Any) -> tuple[int, int]:
    match = re.fullmatch(r"\((\d+),(\d+)\)", text_of(driver, "car"))
    assert match, text_of(driver, "car")
    return int(match.group(1)), int(match.group(2))


def pixel(driver: Any, x: int, y: int) -> tuple[int, ...]:
    """The canvas colour at the middle of cell (x, y)."""
    script = (
        "const c = document.getElementById('city');"
        "const cell = c.width / arguments[2];"
        "return Array.from(c.getContext('2d').getImageData("
        "(arguments[0] + 0.5) * cell, (arguments[1] + 0.5) * cell, 1, 1).data);"
    )
    return tuple(driver.execute_script(script, x, y, 16)[:3])


def at_tick(tick: int) -> Callable[[Any], bool]:
    return lambda driver: text_of(driver, "tick") == str(tick)


def past_tick(tick: int) -> Callable[[Any], bool]:
    """After tick `tick`: a later tick, or the end."""
    return lambda driver: int(text_of(driver, "tick")) > tick or end_shown(driver)


def end_shown(driver: Any) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_element(By.ID, "end").is_displayed())


def test_the_city_is_driven_with_the_arrow_keys(tab: Any, city_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    tab.get(city_url)
    wait(tab, lambda d: text_of(d, "tick") == "0", "the first observation (tick 0)")
    assert car_of(tab) == (0, 4)
    assert pixel(tab, 0, 4) == RED
    # tick by tick: each press is one action, answered by the next observation
    for tick in (1, 2, 3):
        press(tab, Keys.ARROW_RIGHT)
        wait(tab, at_tick(tick), f"tick {tick}")
        assert car_of(tab) == (tick, 4), console(tab)
        assert pixel(tab, tick, 4) == RED and pixel(tab, tick - 1, 4) != RED
    # the pedestrians tell the driver when they step onto the road
    wait(
        tab,
        lambda d: "crossing at" in d.find_element(By.ID, "messages").text,
        "a pedestrian's message",
    )
    honked = len(tab.find_elements(By.CSS_SELECTOR, "#messages li"))
    tab.find_element(By.ID, "honk").click()
    wait(tab, lambda d: "you honk" in d.find_element(By.ID, "messages").text, "the honk")
    assert len(tab.find_elements(By.CSS_SELECTOR, "#messages li")) == honked + 1

    # on to the goal: along the main street, then down the side street
    for _ in range(60):
        if end_shown(tab):
            break
        x, _y = car_of(tab)
        tick = int(text_of(tab, "tick"))
        press(tab, Keys.ARROW_RIGHT if x < SIDE_STREET_X else Keys.ARROW_DOWN)
        wait(tab, past_tick(tick), f"tick {tick + 1}")
    wait(tab, end_shown, "the end of the trial")
    assert text_of(tab, "end-reason") == "the environment ended the trial"
    outcome = text_of(tab, "outcome")
    assert outcome == "You reached the goal!" or "collision" in outcome, outcome


def test_a_reloaded_city_page_drives_on_in_its_trial(tab: Any, city_url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    tab.get(city_url)
    wait(tab, lambda d: text_of(d, "tick") == "0", "tick 0")
    trial = text_of(tab, "trial-id")
    for tick in (1, 2):
        press(tab, Keys.ARROW_RIGHT)
        wait(tab, at_tick(tick), f"tick {tick}")
    tab.refresh()
    # the page joins its slot again, with the whole city (the driver observes deltas)
    wait(tab, lambda d: text_of(d, "trial-id") == trial and text_of(d, "tick") == "2", "its trial")
    assert car_of(tab) == (2, 4) and pixel(tab, 2, 4) == RED
    press(tab, Keys.ARROW_RIGHT)
    wait(tab, lambda d: text_of(d, "tick") == "3", "tick 3 after the reload")
    assert car_of(tab) == (3, 4)


TWO_HUMANS = (("player", "human"), ("player", "human"), ("watcher", "watcher"))


def test_the_default_page_plays_any_project_in_two_tabs(
    tab: Any, orchestrator: Start, bridge: Bridge
) -> None:
    from selenium.webdriver.common.by import By

    web = bridge(orchestrator(actors=TWO_HUMANS))
    tab.get(web.url)
    wait(tab, lambda d: d.find_element(By.ID, "start").is_displayed(), "the lobby")
    # the trial config form was built from testproject.TrialConfig
    assert tab.find_element(By.CSS_SELECTOR, "#config-fields input[name=rounds]")
    tab.find_element(By.ID, "start").click()
    wait(tab, lambda d: text_of(d, "tick") == "0", "the trial")
    assert "cells" in text_of(tab, "observation")
    first = tab.current_window_handle
    link = tab.find_element(By.CSS_SELECTOR, "#share a").get_attribute("href")
    assert "actor=1" in link

    tab.switch_to.new_window("tab")  # a second player, from the link the page offers
    tab.get(link)
    wait(tab, lambda d: text_of(d, "actor") == "1 (player)", "the second slot")
    second = tab.current_window_handle
    for handle, cell in ((second, "1"), (first, "0")):
        tab.switch_to.window(handle)
        field = tab.find_element(By.CSS_SELECTOR, "#action-fields input[name=cell]")
        field.clear()
        field.send_keys(cell)
        tab.find_element(By.ID, "act").click()
    for handle in (first, second):
        tab.switch_to.window(handle)
        wait(tab, lambda d: text_of(d, "tick") == "1", "tick 1 in both tabs")
        wait(tab, lambda d: "message from actor 2" in text_of(d, "log"), "the watcher's message")
    assert "turn" in text_of(tab, "observation")

    tab.switch_to.window(first)
    tab.find_element(By.ID, "end-trial").click()
    wait(tab, lambda d: text_of(d, "end-reason") == "ended by this client", "the end")
    tab.switch_to.window(second)
    wait(tab, lambda d: text_of(d, "end-reason") == "ended by a client", "the end, told")
    tab.close()
    tab.switch_to.window(first)


def test_the_page_reconnects_to_a_restarted_bridge_and_plays_on(
    tab: Any, orchestrator: Start, bridge: Bridge
) -> None:
    from selenium.webdriver.common.by import By

    orch = orchestrator()
    first = bridge(orch)
    tab.get(first.url)
    wait(tab, lambda d: d.find_element(By.ID, "start").is_displayed(), "the lobby")
    tab.find_element(By.ID, "start").click()
    wait(tab, lambda d: text_of(d, "tick") == "0", "the trial")
    tab.find_element(By.ID, "act").click()
    wait(tab, lambda d: text_of(d, "tick") == "1", "tick 1")
    trial = text_of(tab, "trial-id")

    first.stop()  # the bridge restarts, on the same port: the page reconnects by itself
    wait(tab, lambda d: text_of(d, "status") == "reconnecting…", "that it reconnects")
    bridge(orch, port=first.port)
    wait(tab, lambda d: text_of(d, "status").startswith("connected"), "the new bridge")
    assert text_of(tab, "trial-id") == trial and text_of(tab, "tick") == "1"
    tab.find_element(By.ID, "act").click()
    wait(tab, lambda d: text_of(d, "tick") == "2", "tick 2 through the new bridge")
