"""The built book, served on 127.0.0.1, opens in headless Chromium: every chapter loads, every image on it
renders, no glue is left unresolved, and no script error or failed local request. And it reads cleanly at
the width a reviewer used (1400 px): no "nan" in what the page shows, no empty figure, no table wider than
the text column, no warning in a cell's output, and every chapter that judges a claim's full-scale section shows a
figure and a verdict sentence.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: NUL-separated JSON on fds 3
and 4), so no debugging port is opened and no client package is needed. Every request the page makes to
anything but our server is failed before it leaves the browser (Fetch interception), and every wait is bounded.
"""
import fcntl
import functools
import http.server
import json
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import AWAITING_GPU
from jdlib.book import chapters
from jdlib.settings import SETTINGS

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60
LOAD_TIMEOUT_S = 60
IMAGES_TIMEOUT_S = 30
# --disable-gpu ... --disable-sync: without them Chromium hangs on, or refuses, connections on a machine with
# a closed network. The rest keep it from reaching out on its own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--no-proxy-server", "--mute-audio",
         # nothing but loopback resolves, as a second guard behind the Fetch interception
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
         "--window-size=1400,1024", "--remote-debugging-pipe"]
SPHINX_PAGES = {"genindex", "search", "index", "py-modindex"}
# Script errors of the pinned theme stack itself, on every page whatever the book says; each is matched exactly.
KNOWN_THEME_ERRORS = {
    # Sphinx 7.4 writes the inline scripts added at env-before-read-docs twice; sphinx-thebe 0.3.1's is a
    # `const`, so its second copy throws. The first copy ran, and thebe (launch buttons) is not enabled.
    "uncaught JS exception: SyntaxError: Identifier 'THEBE_JS_URL' has already been declared",
    # pydata-sphinx-theme 0.17.1, first page of a fresh profile (no stored light/dark mode); it falls back to auto.
    "console.error: Got invalid theme mode: . Resetting to auto.",
}
UNRESOLVED_GLUE = re.compile(r"glue:|\{glue\}|System Message", re.I)
NAN = re.compile(r"\bnan\b", re.I)
FIGURE_REPR = re.compile(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>")  # a figure printed, not drawn
# The section that ends a chapter that judges a claim with the full grids' results (jdlib.analysis.chapter.committed;
# the claims chapter's "The full grids"), and the verdict sentence it must hold (sentences.FULL_SCALE, or a
# claim's own "Verdict on Cn: ...").
FULL_SCALE_SECTIONS = ("at-full-scale", "the-full-grids")
VERDICT = re.compile(r"(Verdict at full scale \([^)]*\)|Verdict on C\d)[^.:]*:\s*(holds|fails|inconclusive|not testable)\b")
BUILT_AT_FULL_SCALE = "the sections above are the full-scale ones"  # a book built with params/full itself
NOT_WHOLE = "is not whole in the committed store"  # a grid not yet run (jdlib.analysis.chapter.committed)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=(
    f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium` (as root)"))


CHAPTERS = chapters(ROOT / "_toc.yml")
# The chapters that judge a claim end with a full-scale section; a page for one's own model (advise) does not.
CLAIM_CHAPTERS = {setting.chapter for setting in SETTINGS.values()} | {"claims"}


class CDPError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe; always killed on close()."""

    def __init__(self, profile: Path, log: Path, allowed_origin: str):
        self.allowed_origin = allowed_origin
        self.log = log
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies and events on fd 4: bash moves the pipe ends there
        # (from fds >= 10, so the moves cannot clash) and execs it, in a new session so close() kills it all.
        child = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        script = f'exec 3<&{child[0]} 4>&{child[1]} {child[0]}<&- {child[1]}>&- "$@"'
        try:
            with log.open("wb") as err:
                self.proc = subprocess.Popen(
                    ["bash", "-c", script, "chromium", str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}",
                     "about:blank"], stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=child,
                    start_new_session=True)
        finally:
            for fd in child:
                os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self._events = []  # (sessionId, method, params) not yet consumed
        try:
            self.call("Browser.getVersion", timeout=START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise

    # -- wire ---------------------------------------------------------------------------------------
    def send(self, method, params=None, session=None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_chrome, data):]
        return self._next_id

    def _read(self, deadline):
        """One message from Chromium, or None at the deadline."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_chrome], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise CDPError(f"Chromium exited with {self.proc.returncode}: {self.stderr_tail()}")
                continue
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise CDPError(f"Chromium closed the pipe: {self.stderr_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _dispatch(self, message):
        """Handle an event: requests are let through only to our server; the rest is queued."""
        method, params, session = message["method"], message.get("params", {}), message.get("sessionId")
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            if url.startswith(self.allowed_origin + "/") or url.startswith("data:"):
                self.send("Fetch.continueRequest", {"requestId": params["requestId"]}, session)
            else:
                self.send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                          session)
                self._events.append((session, "blocked", {"url": url}))
        else:
            self._events.append((session, method, params))

    def call(self, method, params=None, session=None, timeout=30.0):
        """Send a command and wait (bounded) for its reply, handling events that arrive meanwhile."""
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message is None:
                raise CDPError(f"{method}: no reply within {timeout}s")
            if "method" in message:
                self._dispatch(message)
            elif message.get("id") == wanted:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            # replies to fire-and-forget commands (Fetch.continueRequest) are dropped

    def wait_for(self, session, method, timeout):
        """Wait (bounded) for an event of a session; True if it came."""
        deadline = time.monotonic() + timeout
        while True:
            if any(s == session and m == method for s, m, _ in self._events):
                return True
            message = self._read(deadline)
            if message is None:
                return False
            if "method" in message:
                self._dispatch(message)

    def events(self, session):
        mine = [(m, p) for s, m, p in self._events if s == session]
        self._events = [e for e in self._events if e[0] != session]
        return mine

    def stderr_tail(self):
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # -- a page ------------------------------------------------------------------------------------
    def open(self, url: str) -> tuple[dict, list]:
        """Load url in a fresh tab; (what the page reports after its images settle, the tab's events)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session)
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=session)
            nav = self.call("Page.navigate", {"url": url}, session)
            if nav.get("errorText"):
                raise CDPError(f"{url}: {nav['errorText']}")
            if not self.wait_for(session, "Page.loadEventFired", LOAD_TIMEOUT_S):
                raise CDPError(f"{url}: no load event within {LOAD_TIMEOUT_S}s")
            report = PAGE_REPORT % (IMAGES_TIMEOUT_S * 1000, json.dumps(FULL_SCALE_SECTIONS))
            result = self.call("Runtime.evaluate", {"expression": report,
                                                    "awaitPromise": True, "returnByValue": True},
                               session, timeout=IMAGES_TIMEOUT_S + 15)
            if "exceptionDetails" in result:
                raise CDPError(f"{url}: the page check threw {result['exceptionDetails']}")
            return result["result"]["value"], self.events(session)
        finally:
            self.call("Target.closeTarget", {"targetId": target})
            self.events(session)

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close")
                    self.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):  # the whole process group: renderers, zygote, gpu
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            for fd in (self._to_chrome, self._from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass


# Run in the page after its load event: lazy images are made eager, then every image is awaited (bounded).
PAGE_REPORT = """
(async () => {
  const images = Array.from(document.images);
  for (const img of images) if (img.loading === "lazy") img.loading = "eager";
  const settled = Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
  })));
  const timedOut = await Promise.race([settled.then(() => false),
                                       new Promise(done => setTimeout(() => done(true), %d))]);
  const column = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  // shown: not folded away in a closed <details> (Chromium still lays out, and innerText still gives, what
  // a closed one holds) and not hidden by CSS
  const folded = el => { const d = el.closest("details:not([open])"); return d !== null && !el.closest("summary"); };
  const shown = el => !folded(el) && el.checkVisibility();
  const visibleText = root => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const parts = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode())
      if (node.parentElement && shown(node.parentElement)) parts.push(node.textContent);
    return parts.join(" ");
  };
  const FULL_SCALE = %s;
  return {
    readyState: document.readyState,
    timedOut,
    title: document.title,
    text: document.body ? document.body.innerText : "",
    systemMessages: document.querySelectorAll(".system-message, .problematic").length,
    images: images.map(img => ({src: img.currentSrc || img.src, complete: img.complete,
                                naturalWidth: img.naturalWidth})),
    // what the reader sees in the text column: its text, the tables shown (not those folded away), the
    // figures without an image, and the full-scale sections
    column: column.getBoundingClientRect().width,
    columnText: visibleText(column),
    tables: Array.from(column.querySelectorAll("table")).filter(shown).map(table => ({
      label: (table.caption || table.tHead || table).innerText.replace(/\\s+/g, " ").slice(0, 90),
      width: table.getBoundingClientRect().width,
      overflow: table.getBoundingClientRect().right - column.getBoundingClientRect().right})),
    warnings: column.textContent.match(/[A-Za-z]*Warning: [^\\n]{0,120}/g) || [],  // folded outputs too
    figuresWithoutImage: Array.from(column.querySelectorAll("figure")).filter(f => !f.querySelector("img"))
      .map(f => f.innerText.slice(0, 90)),
    sections: Array.from(column.querySelectorAll("section")).filter(s => FULL_SCALE.includes(s.id)).map(s => ({
      id: s.id, text: visibleText(s),
      images: Array.from(s.querySelectorAll("img")).filter(img => img.complete && img.naturalWidth > 0).length})),
  };
})()
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book):
    """The built HTML served on 127.0.0.1 at a free port, for the module."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(built_book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    work = tmp_path_factory.mktemp("chromium")
    profile = work / "profile"
    profile.mkdir()
    chromium = Chromium(profile, work / "chromium.log", allowed_origin=site)
    try:
        yield chromium
    finally:
        chromium.close()
        shutil.rmtree(profile, ignore_errors=True)


def problems(report: dict, events: list, origin: str) -> list[str]:
    """Everything wrong with a loaded page, from its own report and the browser's events."""
    found = []
    if report["readyState"] != "complete":
        found.append(f"document.readyState is {report['readyState']!r}")
    if report["timedOut"]:
        found.append(f"images still loading after {IMAGES_TIMEOUT_S}s")
    for img in report["images"]:
        if not (img["complete"] and img["naturalWidth"] > 0):
            found.append(f"image did not load: {img['src']}")
    for match in UNRESOLVED_GLUE.finditer(report["text"]):
        context = report["text"][max(0, match.start() - 60):match.end() + 60]
        found.append(f"unresolved glue or build message in the text: ...{context!r}...")
    if report["systemMessages"]:
        found.append(f"{report['systemMessages']} docutils system message / problematic node(s) on the page")
    urls = {p["requestId"]: p["request"]["url"] for m, p in events if m == "Network.requestWillBeSent"}
    failed_local = {}
    for method, params in events:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            found.append(f"uncaught JS exception: {text.splitlines()[0] if text else text}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = (str(a.get("value", a.get("description", ""))) for a in params["args"])
            found.append(f"console.{params['type']}: " + " ".join(args))
        elif method == "Network.responseReceived" and params["response"]["url"].startswith(origin + "/") \
                and params["response"]["status"] >= 400:
            failed_local[params["response"]["url"]] = f"HTTP {params['response']['status']}"
        elif method == "Network.loadingFailed" and urls.get(params["requestId"], "").startswith(origin + "/"):
            failed_local[urls[params["requestId"]]] = f"request failed: {params['errorText']}"
        elif method == "blocked":  # the book is read offline: all it needs must come with it
            found.append(f"requested a URL outside the served book (blocked, never sent): {params['url']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error" \
                and params["entry"].get("source") != "network":  # network errors are counted above
            found.append(f"browser error ({params['entry']['source']}): {params['entry']['text']}")
    found += [f"{url}: {why}" for url, why in failed_local.items()]
    return [problem for problem in found if problem not in KNOWN_THEME_ERRORS]


def reading_problems(report: dict, claim_chapter: bool, awaiting_gpu: bool = False) -> list[str]:
    """What trips a reader of a loaded page: "nan" where a number should be, a figure with nothing drawn,
    a table wider than the text column, a warning in a cell's output, and (a chapter that judges a claim) a full-scale
    section without a figure or a verdict sentence; or, for a chapter whose full grid awaits its GPU run
    (conftest.AWAITING_GPU), one that does not say the grid is not whole."""
    found = []
    for match in NAN.finditer(report["columnText"]):
        context = report["columnText"][max(0, match.start() - 80):match.end() + 40]
        found.append(f"'nan' on the page: ...{context!r}...")
    for match in FIGURE_REPR.finditer(report["columnText"]):
        found.append(f"a figure printed as text, not drawn: {match.group()}")
    found += [f"an empty figure (no image): {text!r}" for text in report["figuresWithoutImage"]]
    found += [f"a warning in a cell's output (folded or not): {text!r}" for text in report["warnings"]]
    for table in report["tables"]:
        if table["overflow"] > 1:
            found.append(f"a table {table['width']:.0f} px wide, {table['overflow']:.0f} px past the text column "
                         f"({report['column']:.0f} px): {table['label']!r}")
    if claim_chapter:
        if not report["sections"]:
            found.append(f"no full-scale section (a section titled one of {FULL_SCALE_SECTIONS})")
        for section in report["sections"]:
            if BUILT_AT_FULL_SCALE in section["text"]:
                continue
            if awaiting_gpu:
                if NOT_WHOLE not in section["text"] or VERDICT.search(section["text"]):
                    found.append(f"section {section['id']!r} shows a full grid: take the chapter out of "
                                 "conftest.AWAITING_GPU")
                continue
            if not section["images"]:
                found.append(f"section {section['id']!r}: no figure")
            if not VERDICT.search(section["text"]):
                found.append(f"section {section['id']!r}: no verdict sentence ({VERDICT.pattern}); it says: "
                             f"{section['text'][:400]!r}")
    return found


@pytest.fixture(scope="module")
def pages(built_book, site, browser):
    """Each chapter's page opened once for the module: {chapter: (report, events)}, filled on first use."""
    opened = {}

    def page(chapter: str) -> tuple[dict, list]:
        if chapter not in opened:
            assert (built_book / f"{chapter}.html").is_file(), \
                f"{chapter} is in _toc.yml but the build wrote no {chapter}.html"
            opened[chapter] = browser.open(f"{site}/{chapter}.html")
        return opened[chapter]

    return page


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_opens_in_chromium_with_its_figures_and_no_errors(built_book, site, pages, chapter):
    report, events = pages(chapter)
    found = problems(report, events, site)
    assert not found, f"{chapter}.html:\n  " + "\n  ".join(found)
    assert report["text"].strip(), f"{chapter}.html shows no text"
    if (built_book.parent.parent / f"{chapter}.ipynb").is_file():  # a notebook chapter shows its figures
        assert report["images"], f"{chapter}.html (a notebook) shows no image"


def test_every_page_the_build_wrote_is_a_chapter_in_the_toc(built_book):
    pages = {str(p.relative_to(built_book).with_suffix("")) for p in built_book.rglob("*.html")
             if not p.relative_to(built_book).parts[0].startswith("_")} - SPHINX_PAGES
    assert pages == set(CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_reads_without_nan_empty_figures_wide_tables_or_a_missing_full_scale_verdict(built_book, pages,
                                                                                          chapter):
    report, _ = pages(chapter)
    found = reading_problems(report, claim_chapter=chapter in CLAIM_CHAPTERS, awaiting_gpu=chapter in AWAITING_GPU)
    assert not found, f"{chapter}.html:\n  " + "\n  ".join(found)


def test_the_reading_checks_catch_what_tripped_a_reviewer():
    """reading_problems on made-up page reports: each defect the issue names is caught, a clean page passes."""
    clean = {"columnText": "The mean is 0.12.", "column": 800.0, "figuresWithoutImage": [], "warnings": [],
             "tables": [{"label": "C1 per comparison", "width": 700.0, "overflow": -100.0}],
             "sections": [{"id": "at-full-scale", "images": 1,
                           "text": "Read from the store. Verdict at full scale (C5): fails. The barrier falls."}]}
    assert reading_problems(clean, claim_chapter=True) == []
    defects = {
        "'nan' on the page": {"columnText": "the mean rank correlation is nan."},
        "a table 1200 px wide": {"tables": [{"label": "verdicts", "width": 1200.0, "overflow": 400.0}]},
        "an empty figure": {"figuresWithoutImage": ["Fig. 3 the compression figure"]},
        "no figure": {"sections": [{**clean["sections"][0], "images": 0}]},
        "no verdict sentence": {"sections": [{**clean["sections"][0], "text": "C3's Spearman table, and no verdict."}]},
        "no full-scale section": {"sections": []},
        "a warning in a cell's output": {"warnings": ["TqdmWarning: IProgress not found."]},
    }
    for problem, change in defects.items():
        found = reading_problems({**clean, **change}, claim_chapter=True)
        assert len(found) == 1 and problem in found[0], (problem, found)
    assert reading_problems({**clean, "sections": []}, claim_chapter=False) == []  # the intro, the advisor page
    # a chapter whose grid awaits its GPU run must say so, and is caught once its grid shows
    waiting = {**clean, "sections": [{"id": "at-full-scale", "images": 0,
                                      "text": f"The grid {NOT_WHOLE} yet: 18 of 405 cells are there."}]}
    assert reading_problems(waiting, claim_chapter=True, awaiting_gpu=True) == []
    assert "take the chapter out" in reading_problems(clean, claim_chapter=True, awaiting_gpu=True)[0]
