"""The accept page in a real browser: headless Chromium against a real `rolebook serve`.

Contract protected: the link in the invitation email (read from the server's
Maildir) opens a page that shows the account and role; pasting the invitee's
sign-in token and pressing "Accept invitation" makes them a member, which the
page says and the API confirms; a token for someone else shows the API's
problem detail instead. The page's own script and style run under its
Content-Security-Policy (no violation is logged), and opening the link again
shows the "already used" state (410).

Needs Debian's /usr/bin/chromium and /usr/bin/chromedriver (`make browser`);
skipped, saying so, where they are missing. Selenium is given both paths and
never downloads a driver.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.support import live
from tests.support.browser import WAIT_SECONDS, assert_png
from tests.support.client import users_of
from tests.support.mail import accept_link, wait_for_mail

SECRET = "e2e-accept-page-" + "s" * 32


@pytest.fixture
def server(tmp_path):
    srv = live.start(tmp_path / "var", "--workers", "1", "--jwt-secret", SECRET,
                     "--decision-log", "off")
    yield srv
    srv.stop()


@pytest.fixture
def user(server):
    return users_of(server.url, SECRET)


def http_get(url: str) -> tuple[int, str, str]:
    """(status, content type, text) of a plain GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_accept_an_invitation_in_the_browser(browser, server, user, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    alice, bob = user("alice"), user("bob", "bob@example.com")
    account = alice.post("/v1/accounts", {"name": "Acme Labs"})
    assert account.status == 201, account.json
    account_id = account.json["id"]
    created = alice.post(f"/v1/accounts/{account_id}/invitations",
                         {"email": "bob@example.com", "role": "edit", "first_name": "Bob"})
    assert created.status == 201, created.json
    [message] = wait_for_mail(server.data_dir / "mail", "bob@example.com", timeout=30)
    link = accept_link(message)
    assert link.startswith(server.url + "/invitations/accept?token=")

    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(link)
    heading = wait.until(ready.visibility_of_element_located((By.TAG_NAME, "h1")))
    assert heading.text == "You are invited to join Acme Labs"
    details = browser.find_element(By.TAG_NAME, "dl").text
    assert "Acme Labs" in details and "edit" in details and "bob@example.com" in details
    # The inline style ran under the CSP (a blocked <style> would leave the button grey).
    button = browser.find_element(By.ID, "accept-button")
    assert button.value_of_css_property("background-color") in (
        "rgba(11, 87, 208, 1)", "rgb(11, 87, 208)")

    # Someone else's sign-in token: the API's problem detail appears in the page.
    field = browser.find_element(By.ID, "signin-token")
    field.send_keys(user("mallory", "mallory@example.com").token)
    button.click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "outcome"), "different email"))
    assert "error" in browser.find_element(By.ID, "outcome").get_attribute("class")
    assert_png(browser, tmp_path / "accept-page-refused.png")

    field.clear()
    field.send_keys(bob.token)
    wait.until(ready.element_to_be_clickable((By.ID, "accept-button"))).click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "outcome"), "member of Acme Labs"))
    assert browser.find_element(By.ID, "outcome").text == (
        "You are now an edit member of Acme Labs.")
    assert not browser.find_element(By.ID, "accept-form").is_displayed()

    assert_png(browser, tmp_path / "accept-page.png")

    violations = [entry["message"] for entry in browser.get_log("browser")
                  if "Content Security Policy" in entry["message"]]
    assert violations == []

    # The API agrees: Bob is an editor of the account now.
    assert bob.get(f"/v1/accounts/{account_id}").json["role"] == "edit"
    members = alice.get(f"/v1/accounts/{account_id}/members").json["items"]
    assert {m["user_id"]: m["role"] for m in members}["bob"] == "edit"

    # The link again: "already used", 410, still HTML.
    browser.get(link)
    heading = wait.until(ready.visibility_of_element_located((By.TAG_NAME, "h1")))
    assert heading.text == "This invitation has already been used"
    assert "already used" in browser.find_element(By.TAG_NAME, "dl").text
    assert browser.find_elements(By.ID, "accept-form") == []
    status, content_type, text = http_get(link)
    assert (status, content_type) == (410, "text/html; charset=utf-8")
    assert "already been used" in text
    assert "Traceback" not in server.output()
