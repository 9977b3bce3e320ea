"""What the browser tests do on the pages."""
from __future__ import annotations

import re
from urllib.parse import urlparse

from playwright.sync_api import Page, expect


def refused_api_call(msg) -> bool:
    """The browser logs each 4xx answer; the API's refusals are expected (the page shows them in words)."""
    path = urlparse(msg.location.get("url", "")).path
    return msg.text.startswith("Failed to load resource") and path != "/" and not path.startswith("/web/")


def sign_in(page: Page, then: str = "/") -> None:
    page.goto(f"/web/signin.html?next={then}")
    page.get_by_role("button", name="Connect wallet and sign in").click()
    expect(page.get_by_text("Signed in as")).to_be_visible()


def message(page: Page):
    return page.locator("#message")


def admit(page: Page, address: str, name: str, roles: set[str]) -> None:
    form = page.locator("#admit")
    form.get_by_label("Wallet address").fill(address)
    form.get_by_label("Unit name").fill(name)
    form.get_by_label("Identity document").set_input_files(
        {"name": "licence.pdf", "mimeType": "application/pdf", "buffer": f"identity of {name}".encode()})
    for role in ("publisher", "subscriber", "auditor"):
        form.get_by_label(role, exact=True).set_checked(role in roles)
    form.get_by_role("button", name=re.compile("Admit")).click()
    expect(message(page)).to_have_text(f"Admitted {address}: 500 points.")
