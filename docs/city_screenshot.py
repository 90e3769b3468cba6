"""Takes the README's screenshot of the city page: `poetry run python docs/city_screenshot.py`.

Runs `cogment launch examples/city/launch.yaml --web --free-ports`, drives a few ticks in a
headless Chromium (as the browser tests do) and writes docs/city-web.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.launch.conftest import CITY_LAUNCH, RunningLaunch  # noqa: E402
from tests.web.browser import chromium, text_of, wait  # noqa: E402

OUTPUT = REPO / "docs" / "city-web.png"


def main() -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = RunningLaunch(str(CITY_LAUNCH), "--web", "--free-ports", "--timeout", "120")
    driver = None
    try:
        url = run.wait_for_line(r"open (http://\S+) in a browser", timeout=60).group(1)
        driver = chromium()
        driver.set_window_size(1180, 720)
        driver.get(url)
        wait(driver, lambda d: text_of(d, "tick") == "0", "tick 0")
        for key in [Keys.ARROW_RIGHT] * 8 + ["h"] + [Keys.ARROW_RIGHT] * 2:
            tick = text_of(driver, "tick")
            ActionChains(driver).send_keys(key).perform()
            if key == "h":
                wait(driver, lambda d: "you honk" in d.find_element(By.ID, "messages").text, "honk")
            else:
                wait(driver, lambda d, t=tick: text_of(d, "tick") != t, "the next tick")
        driver.save_screenshot(str(OUTPUT))
        print(f"wrote {OUTPUT}")
    finally:
        if driver is not None:
            driver.quit()
        run.kill()


if __name__ == "__main__":
    main()
