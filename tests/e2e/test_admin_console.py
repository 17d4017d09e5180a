"""The policy console in a real browser: headless Chromium against a real `rolebook serve`.

Contract protected: an administrator signs in with an admin token, reloads after a new version
lands in the policy folder and sees it active, and /v1/check's answer changes accordingly; opens
a version's matrix; runs the diff between the two versions and the impact of the new one on the
decisions logged before it (both name the changed case); sees their accounts. On a replica
serving published versions, activates an older version (the rollback) and the newer one
again, and /v1/check follows each time. Failed calls show
the problem detail; nothing violates the page's Content-Security-Policy; the page fits a
phone-sized screen. On failure a screenshot is saved next to the test output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rolebook.api.config import Config
from tests.support import live
from tests.support.browser import WAIT_SECONDS, assert_png
from tests.support.client import User, over_http
from tests.support.policies import REPO

SECRET = "e2e-console-" + "c" * 32
V1_DELETE = "      - name: editors-change-objects\n        actions: [create, update, delete]"
V2_DELETE = ("      - name: owners-delete-objects\n        actions: [delete]\n"
             "        effect: allow\n        min_role: owner\n"
             "      - name: editors-change-objects\n        actions: [create, update]")
DELETE_CHECK = {"principal": {"id": "ed", "role": "edit"}, "policy": "convert",
                "resources": [{"kind": "object", "id": "42", "actions": ["delete"]}]}


@pytest.fixture
def policy_dir(tmp_path):
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    return target


@pytest.fixture
def server(tmp_path, policy_dir):
    srv = live.start(tmp_path / "var", "--workers", "1", "--jwt-secret", SECRET,
                     "--policy-dir", str(policy_dir))
    yield srv
    srv.stop()


def write_v2(policy_dir: Path) -> None:
    """convert@2: editors may no longer delete objects (one rule split in two)."""
    text = (policy_dir / "convert" / "v1.yaml").read_text()
    assert V1_DELETE in text
    (policy_dir / "convert" / "v2.yaml").write_text(
        text.replace("version: 1\n", "version: 2\n", 1).replace(V1_DELETE, V2_DELETE, 1))


def signed_in(browser, wait, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    browser.get(url + "/admin")
    wait.until(ready.visibility_of_element_located((By.ID, "token")))
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin-button").click()
    wait.until(ready.visibility_of_element_located((By.ID, "policies")))


def test_review_and_roll_out_a_version_in_the_console(browser, server, policy_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    config, transport = Config(jwt_secret=SECRET), over_http(server.url)
    admin = User(transport, config, "root-admin", scope="admin")
    service = User(transport, config, "svc", scope="check")
    assert admin.post("/v1/accounts", {"name": "Console Co"}).status == 201
    before = service.post("/v1/check", DELETE_CHECK).json
    assert before["version"] == 1 and before["results"][0]["actions"]["delete"]["effect"] == \
        "allow"
    write_v2(policy_dir)

    wait = WebDriverWait(browser, WAIT_SECONDS)
    try:
        browser.get(server.url + "/admin")
        wait.until(ready.visibility_of_element_located((By.ID, "token")))
        browser.find_element(By.ID, "token").send_keys("not-a-token")
        browser.find_element(By.ID, "signin-button").click()
        wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "Failed"))
        field = browser.find_element(By.ID, "token")
        field.clear()
        field.send_keys(admin.token)
        browser.find_element(By.ID, "signin-button").click()
        wait.until(ready.visibility_of_element_located((By.ID, "policies")))
        assert browser.switch_to.active_element.get_attribute("id") == "policies-heading"
        wait.until(ready.text_to_be_present_in_element((By.ID, "accounts"), "Console Co"))

        browser.find_element(By.ID, "reload-button").click()
        wait.until(ready.text_to_be_present_in_element((By.ID, "status"), "convert@2"))
        after = service.post("/v1/check", DELETE_CHECK).json
        assert after["version"] == 2
        assert after["results"][0]["actions"]["delete"]["effect"] == "deny"

        browser.find_element(By.CSS_SELECTOR, '[aria-label="Matrix of convert@2"]').click()
        wait.until(ready.text_to_be_present_in_element((By.ID, "matrix"), "object delete"))
        matrix = browser.find_element(By.ID, "matrix").text
        assert "convert@2: who may do what" in matrix

        for select, value in (("review-policy", "convert"), ("review-from", "1"),
                              ("review-to", "2")):
            browser.find_element(By.CSS_SELECTOR, f"#{select} option[value='{value}']").click()
        browser.find_element(By.ID, "diff-button").click()
        wait.until(ready.text_to_be_present_in_element((By.ID, "review"), "object delete as edit"))
        assert "convert@2#default-deny" in browser.find_element(By.ID, "review").text

        browser.find_element(By.ID, "impact-button").click()
        wait.until(ready.text_to_be_present_in_element((By.ID, "review"), "would flip"))
        review = browser.find_element(By.ID, "review").text
        assert "object delete" in review and "allow \u2192 deny" in review and "ed (edit)" in review
        assert_png(browser, tmp_path / "admin-console.png")

        violations = [e["message"] for e in browser.get_log("browser")
                      if "Content Security Policy" in e["message"]]
        assert violations == []
        browser.set_window_size(390, 844)  # a phone
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        assert_png(browser, tmp_path / "admin-console-phone.png")
    except Exception:
        shot = tmp_path / "admin-console-failure.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot of the failure: {shot}")
        raise
    assert "Traceback" not in server.output()


def test_activate_and_roll_back_published_versions_in_the_console(browser, policy_dir,
                                                                    tmp_path):
    """A replica serving published versions: the console activates v1 again (the rollback)
    and v2 once more, and /v1/check follows each time; there is no reload button there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"sqlite:///{tmp_path}/fleet.db"
    write_v2(policy_dir)
    published = subprocess.run(
        [sys.executable, "-m", "rolebook", "policy", "publish", str(policy_dir),
         "--database-url", url, "--data-dir", str(tmp_path / "publisher"), "--by", "ops"],
        capture_output=True, text=True, timeout=60, cwd=REPO)
    assert published.returncode == 0, published.stderr
    server = live.start(tmp_path / "var", "--workers", "1", "--jwt-secret", SECRET,
                        "--database-url", url, "--policy-source", "database")
    config, transport = Config(jwt_secret=SECRET), over_http(server.url)
    admin = User(transport, config, "root-admin", scope="admin")
    service = User(transport, config, "svc", scope="check")

    def served() -> tuple[int, str]:
        answer = service.post("/v1/check", DELETE_CHECK).json
        return answer["version"], answer["results"][0]["actions"]["delete"]["effect"]

    wait = WebDriverWait(browser, WAIT_SECONDS)
    try:
        assert served() == (2, "deny")
        signed_in(browser, wait, server.url, admin.token)
        assert not browser.find_element(By.ID, "reload-button").is_displayed()
        assert "published in the database" in browser.find_element(By.ID, "source-note").text
        assert browser.find_elements(By.CSS_SELECTOR, '[aria-label="Activate convert@2"]') == []

        browser.find_element(By.CSS_SELECTOR, '[aria-label="Activate convert@1"]').click()
        wait.until(ready.text_to_be_present_in_element(
            (By.ID, "status"), "Activated convert@1 (was version 2)."))
        assert served() == (1, "allow")

        wait.until(ready.element_to_be_clickable(
            (By.CSS_SELECTOR, '[aria-label="Activate convert@2"]'))).click()
        wait.until(ready.text_to_be_present_in_element(
            (By.ID, "status"), "Activated convert@2 (was version 1)."))
        assert served() == (2, "deny")
        events = admin.get("/v1/policies/events").json["items"]
        assert [(e["action"], e["actor"]) for e in events[:2]] == [
            ("policy.activated", "root-admin"), ("policy.activated", "root-admin")]
    except Exception:
        shot = tmp_path / "admin-console-activate-failure.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot of the failure: {shot}")
        raise
    finally:
        server.stop()
    assert "Traceback" not in server.output()
