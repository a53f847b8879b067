"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser)."""

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module, closed with it.

    Playwright's sync API runs an event loop in this thread while it is open; the tests' own
    database calls stay synchronous, so Django's async-safety check is lifted for exactly
    that long (and never leaks into other tests or subprocesses)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get).")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


# Runs in every document before its own scripts, through the DevTools protocol (so the page's
# Content-Security-Policy does not apply to it); reports to Python through a binding, which
# outlives navigations.
WATCH_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportViolation(
    `${e.violatedDirective} refused ${e.blockedURI || "inline"} on ${document.location.pathname}`
    + ` (${e.sourceFile || "?"}:${e.lineNumber || "?"} ${e.sample || ""})`
  );
});
"""
POLICY_WORDS = ("Content Security Policy", "Content-Security-Policy", "Permissions-Policy")


def watch_policy(context, page) -> list[str]:
    """Every CSP violation in the context's pages, as Chromium reports it: a
    `securitypolicyviolation` event, and a console message (Permissions-Policy's complaints,
    an unknown feature say, come only as those)."""
    found: list[str] = []

    def report(text: str) -> None:
        found.append(text)

    def on_console(message) -> None:
        if any(word in message.text for word in POLICY_WORDS):
            found.append(f"console {message.type}: {message.text}")

    context.expose_function("reportViolation", report)
    context.add_init_script(WATCH_VIOLATIONS)
    page.on("console", on_console)
    return found


# The sizes every flow is tried at: a phone or tablet sidebar beside the POS, and a desktop.
VIEWPORTS = {"390x844": (390, 844), "1366x768": (1366, 768)}


@pytest.fixture(params=list(VIEWPORTS))
def sized_page(request, browser):
    """A page at each of VIEWPORTS in turn (the test runs once per size). Whatever the test
    does, the pages must run under the policy: a violation fails it at teardown."""
    width, height = VIEWPORTS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    violations = watch_policy(context, page)
    yield page
    context.close()
    assert not violations, "\n".join(violations)


@pytest.fixture
def phone_page(browser):
    """A 390 px wide page, like a tablet sidebar next to the POS (watched like sized_page)."""
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    violations = watch_policy(context, page)
    yield page
    context.close()
    assert not violations, "\n".join(violations)


@pytest.fixture
def screenshot(request):
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


@pytest.fixture
def axe():
    """Run axe-core (the npm package, from the local install: no network) on a page and
    return its serious and critical violations as readable lines."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: `make test` runs `npm ci` (see package.json).")
    source = AXE.read_text()

    def check(page) -> list[str]:
        # Evaluated through the DevTools protocol, not added as an inline <script>: the pages'
        # Content-Security-Policy refuses inline scripts, and must not be loosened for tests.
        page.evaluate(source)
        results = page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        return [
            f"{v['impact']}: {v['id']} — {v['help']} ({len(v['nodes'])}× e.g. "
            f"{v['nodes'][0]['target']})"
            for v in results["violations"]
            if v["impact"] in SERIOUS
        ]

    return check
