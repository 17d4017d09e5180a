"""HTML pages rolebook serves itself: their Content-Security-Policy admits only the page's own
inline script and style, by hash, and nothing from elsewhere."""

from __future__ import annotations

import base64
import hashlib
import re

SLOT = re.compile(r"{{(\w+)}}")


def inline_hash(template: str, tag: str) -> str:
    """CSP source for the template's one inline <tag> element (its exact text, hashed)."""
    [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", template, re.S)
    if SLOT.search(body):
        raise RuntimeError(f"the page's <{tag}> must not hold slots (its hash)")
    digest = hashlib.sha256(body.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def security_headers(template: str) -> dict[str, str]:
    csp = "; ".join([
        "default-src 'none'",
        f"script-src {inline_hash(template, 'script')}",
        f"style-src {inline_hash(template, 'style')}",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
