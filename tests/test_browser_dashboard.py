"""The dashboard in a real browser (Playwright driving Debian's Chromium; skipped
without either, like tests/test_browser.py): the vendored Chart.js draws under the
page's Content-Security-Policy, and each chart's table shows the same numbers."""

from __future__ import annotations

from flask import Flask

from .test_browser import browser, live  # noqa: F401  (fixtures)
from .test_views_auth import PASSWORD, add
from .test_views_dashboard import NPS_ANSWERS, answer
from .test_views_inbox import new_case, person

#: How many pixels of a canvas are painted (not fully transparent).
PAINTED = """(id) => {
  const canvas = document.getElementById(id);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i]) painted += 1; }
  return painted;
}"""


def test_a_manager_reads_the_nps_chart_and_its_table(
        app: Flask, browser: object, live: str) -> None:  # noqa: F811
    case = new_case(app, person(app, "alice"))
    answer(app, case["id"], "nps", NPS_ANSWERS)
    add(app, "maria", roles=["manager"])
    page = browser.new_page(locale="en-US")  # type: ignore[attr-defined]
    errors: list[str] = []  # CSP violations are reported as console errors
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live}/dashboard")
    assert page.url.endswith("/login?next=/dashboard")
    page.get_by_label("User name").fill("maria")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live}/dashboard")
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    assert "n = 10, 95% CI −18 to 78" in page.locator("#tile-nps").inner_text()
    # Chart.js ran (dashboard.js marks each canvas it drew) and painted a visible chart.
    canvas = page.locator("#chart-nps-trend")
    page.wait_for_selector("#chart-nps-trend[data-drawn='true']")
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    assert canvas.get_attribute("aria-label") == (
        "Chart: NPS by week. The numbers are in the table below it.")
    page.wait_for_function(f"({PAINTED})('chart-nps-trend') > 500")
    assert page.evaluate(PAINTED, "chart-backlog") > 500
    # The table under the chart: hidden until asked for, then the same numbers.
    figure = page.locator("#fig-nps-trend")
    rows = figure.get_by_role("table", name="NPS by week")
    assert not rows.is_visible()
    figure.get_by_text("Show as table").click()
    assert rows.is_visible()
    text = rows.inner_text()
    assert "30" in text and "10" in text and "−18 – 78" in text
    assert errors == []
