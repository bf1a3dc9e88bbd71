"""Load a page in the system's headless Chromium (Playwright drives it) and report on it.

Playwright runs ``/usr/bin/chromium`` (Debian's package) and downloads no browser.
Without chromium the calling test fails and says how to install it: a browser test that
skips would let a broken page pass unseen.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, sync_playwright

__all__ = ["PageVisit", "chromium_or_fail", "colours", "visit"]

INSTALL = "apt-get install -y chromium"

# Per panel: its charts, the series drawn in them (ids series-...), series with nothing
# drawn in them (no path, use or rect inside), and empty-state notes.
_PANELS_JS = """
() => Object.fromEntries([...document.querySelectorAll("section[data-panel]")].map(s => {
  const series = [...s.querySelectorAll('svg [id^="series-"]')];
  return [s.dataset.panel, {
    charts: s.querySelectorAll("svg").length,
    series: series.map(g => g.id),
    blank: series.filter(g => g.matches("path, use, rect") ? false
                              : g.querySelectorAll("path, use, rect").length === 0)
                 .map(g => g.id),
    marks: s.querySelectorAll("svg path, svg use, svg rect").length,
    empty: [...s.querySelectorAll("p.empty")].map(p => p.textContent),
  }];
}))
"""


@dataclass
class PageVisit:
    """What happened while a page was open: every request, console errors, the panels."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    panels: dict[str, Any] = field(default_factory=dict)


def chromium_or_fail() -> str:
    """The chromium executable; fails the test (never skips) when there is none."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(f"no chromium on PATH: this test drives a real browser. Install it with "
                    f"`{INSTALL}` (Debian; .ci/run does it before make test)")  # fmt: skip
    return path


def visit(url: str, screenshot: Path, then: Callable[[Page], None] | None = None) -> PageVisit:
    """Open ``url``, run ``then(page)`` (waits of the caller's own), read the panels and
    save a full-page screenshot to ``screenshot``."""
    seen = PageVisit()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_or_fail())
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda request: seen.requests.append(request.url))
            page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: seen.errors.append(str(error)))
            page.goto(url, wait_until="load")
            if then is not None:
                then(page)
            seen.panels = page.evaluate(_PANELS_JS)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def colours(png: Path) -> int:
    """How many distinct colours the PNG at ``png`` has (decoded, not guessed from size)."""
    with Image.open(png) as image:
        found = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return 0 if found is None else len(found)
