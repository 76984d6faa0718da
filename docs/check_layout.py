"""Checks that no page of the documentation site scrolls sideways at a laptop's width.

Builds the site (``mkdocs build --strict``) when it is missing or older than its sources, serves it on 127.0.0.1,
opens every page in headless Chromium at 1280 px with every folded section opened, and lists, per page:

- the page itself wider than the window (the whole page scrolls sideways);
- a table, code block or other box that scrolls sideways inside the page, or sticks out of the text column;
- code in a table (a recipe name, a flag) cut in two mid-word.

It drives Debian's Chromium through selenium (the ``dev`` extra): ``apt-get install chromium chromium-driver``; the
``CHROMIUM`` and ``CHROMEDRIVER`` environment variables name other binaries. Without them it says so and exits 0
(skipped); with a problem it exits 1. tests/test_site_layout.py runs it.

    python docs/check_layout.py [--site site] [--width 1280]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
#: What the site is built from: a change to any of them makes the built site stale.
SOURCES = ("mkdocs.yml", "BENCHMARKS.md", "docs", "ser_hf")
WIDTH = 1280
HEIGHT = 900

#: Run in each page once it has loaded: opens every <details> (the folded sections of the benchmarks page), then
#: measures. A box "scrolls sideways" when its content is wider than it and it lets the reader scroll (overflow-x auto
#: or scroll). Code in a table without a space (or a piece of it, docs/mkdocs_hooks.py) that the browser laid out on
#: more than one line was cut mid-word.
MEASURE = """
document.querySelectorAll("details").forEach((details) => { details.open = true; });
const describe = (element) => {
  const kind = element.className ? "." + String(element.className).split(" ")[0] : "";
  const name = element.tagName.toLowerCase() + kind;
  const heading = [...document.querySelectorAll("h1, h2, h3, h4")]
    .filter((h) => h.compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING).pop();
  const text = element.textContent.trim().replace(/\\s+/g, " ").slice(0, 60);
  return `${name} under "${heading ? heading.textContent.replace("¶", "").trim() : "the top"}": ${text}`;
};
const root = document.documentElement;
const scrollers = [...document.querySelectorAll("article *")].filter((element) => {
  const overflow = getComputedStyle(element).overflowX;
  return (overflow === "auto" || overflow === "scroll") && element.scrollWidth > element.clientWidth + 1;
});
// Boxes that stick out of the text column (over the table of contents), outermost only.
// A few pixels are allowed: the padding of inline code at the end of a line.
const column = document.querySelector("article").getBoundingClientRect().right + 8;
const outside = [];
for (const element of document.querySelectorAll("article *")) {
  if (element.getBoundingClientRect().right > column && !outside.some((outer) => outer.contains(element))) {
    outside.push(element);
  }
}
const cut = [...document.querySelectorAll("article td code, article th code")]
  .flatMap((code) => (code.children.length ? [...code.children] : [code]))
  .filter((piece) => /^\\S+$/.test(piece.textContent.trim()) && piece.getClientRects().length > 1);
return {
  viewport: root.clientWidth,
  page: Math.max(root.scrollWidth, document.body.scrollWidth),
  scrollers: scrollers.map((element) => `${describe(element)} (${element.scrollWidth} px in ${element.clientWidth})`),
  outside: outside.map((element) => {
    const beyond = Math.round(element.getBoundingClientRect().right - column + 8);
    return `${describe(element)} (${beyond} px)`;
  }),
  cut: cut.map(describe),
};
"""


WRAPPED = """
return [...document.querySelectorAll("article table:not([class])")].every(
  (table) => table.parentElement.classList.contains("md-typeset__table")
);
"""


class BrowserUnavailable(RuntimeError):
    """Chromium or its driver (or selenium) is not installed: the check cannot run here."""


@dataclass
class Browser:
    chromium: str
    chromedriver: str


def find_browser() -> Browser:
    """Chromium and chromedriver (the environment's ``CHROMIUM``/``CHROMEDRIVER``, else on PATH), with selenium."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not (chromium and chromedriver):
        raise BrowserUnavailable(
            "needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; or set CHROMIUM and "
            "CHROMEDRIVER)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError as error:
        raise BrowserUnavailable("needs selenium (pip install -e '.[dev]')") from error
    return Browser(chromium, chromedriver)


def site_is_stale(site: Path) -> bool:
    built = site / "index.html"
    if not built.exists():
        return True
    newest = 0.0
    for source in SOURCES:
        path = REPOSITORY / source
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file() and "__pycache__" not in f.parts)])
    return newest > built.stat().st_mtime


def build_site(site: Path) -> Path:
    """``mkdocs build --strict`` into ``site`` (the mkdocs of this interpreter's environment)."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    command = [str(mkdocs) if mkdocs.exists() else "mkdocs", "build", "--strict", "--site-dir", str(site)]
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(command, cwd=REPOSITORY, check=True, env=environment, capture_output=True)
    return site


@contextmanager
def serve(site: Path):
    """The site over HTTP on 127.0.0.1 (a free port), as its base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium(browser: Browser, width: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager sends no usage statistics
    options = webdriver.ChromeOptions()
    options.binary_location = browser.chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=en-US"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{HEIGHT}")
    # The pages ask for web fonts: nothing outside this machine is asked (the fallback font is wider, if anything).
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=browser.chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


def pages(site: Path) -> list[str]:
    """Every page of the built site, as its path (``guides/corpora/``)."""
    found = []
    for index in sorted(site.rglob("index.html")):
        relative = index.parent.relative_to(site).as_posix()
        if not relative.startswith(("assets", "search")):
            found.append("" if relative == "." else f"{relative}/")
    return found


def wait_for_material(driver, timeout: float = 10.0) -> None:
    """Waits until Material's script has wrapped the page's tables, as a reader's browser shows them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not driver.execute_script(WRAPPED):
        time.sleep(0.05)


def check_site(site: Path, browser: Browser, width: int = WIDTH) -> dict[str, list[str]]:
    """What scrolls sideways (or is cut mid-word) on each page at ``width`` px: ``{page: [problem, ...]}`` for every
    page, an empty list where there is none."""
    problems: dict[str, list[str]] = {}
    with serve(site) as base, chromium(browser, width) as driver:
        for page in pages(site):
            driver.get(base + page)
            wait_for_material(driver)
            found = driver.execute_script(MEASURE)
            listed = []
            if found["page"] > found["viewport"]:
                listed.append(f"the page is {found['page']} px wide in a {found['viewport']} px window")
            listed += [f"scrolls sideways: {scroller}" for scroller in found["scrollers"]]
            listed += [f"sticks out of the text column: {box}" for box in found["outside"]]
            listed += [f"cut mid-word: {code}" for code in found["cut"]]
            problems[page or "(home)"] = listed
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=REPOSITORY / "site", help="the built site (built if stale)")
    parser.add_argument("--width", type=int, default=WIDTH, help="the window's width in px")
    args = parser.parse_args(argv)
    try:
        browser = find_browser()
    except BrowserUnavailable as reason:
        print(f"Layout check skipped: it {reason}.")
        return 0
    if site_is_stale(args.site):
        print(f"Building the site into {args.site} ...")
        build_site(args.site)
    problems = check_site(args.site, browser, args.width)
    for page, listed in problems.items():
        print(f"{'FAIL' if listed else 'ok  '} {page}")
        for problem in listed:
            print(f"       {problem}")
    failed = [page for page, listed in problems.items() if listed]
    print(f"{len(problems) - len(failed)} of {len(problems)} pages fit {args.width} px.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
