"""Collect what Chromium reports about the Content-Security-Policy while a page is driven."""

from __future__ import annotations

# Chromium logs each blocked script, style, image or request as a console error naming the policy;
# the init script also reports the DOM's securitypolicyviolation events, which catch the rest.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline"));
});
"""


def watch_csp(page) -> list[str]:
    """Messages about Content-Security-Policy violations on `page` (and any page error), as they come."""
    violations: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)

    def on_console(message) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            violations.append(f"{page.url}: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: violations.append(f"{page.url}: page error: {error}"))
    return violations
