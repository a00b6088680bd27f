"""The web dashboard in a real browser (Debian's chromium through chromedriver).

One simulated site (pipeline_lab: real BIND, real `serve`, virtual BMCs with
simulated firmware and installer), one browser session for every check: the
login and its cookie, the nodes table following a provision live, a failed
node's reason, the quorum guard refusing a controller reprovision before
anything happens, the node page, the rack view (a screenshot of it), no
console errors, and the refusals: no session, no CSRF token, after logout.

PROVISIONER_UI_SCREENSHOTS=DIR keeps pictures of the pages there (the README's
docs/dashboard-racks.png is DIR/racks.png).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from provisioner import programs
from provisioner.settings import StateDir
from tests.functional.pipeline_lab import SimLab, sim_lab

pytestmark = pytest.mark.functional

NODES = [
    ("ctl1", "controller", "normal", "ipmi"),
    ("ctl2", "controller", "normal", "ipmi"),
    ("cmp1", "compute", "normal", "ipmi"),
    ("cmp2", "compute", "install-fails", "ipmi"),
    ("cmp3", "compute", "normal", "ipmi"),
]
PLACEMENT = {
    "ctl1": ("r1", 30),
    "cmp1": ("r1", 20),
    "cmp3": ("r1", 18),
    "ctl2": ("r2", 30),
    "cmp2": ("r2", 20),
}


@contextmanager
def browser(downloads: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = programs.path("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", f"--user-data-dir={downloads / 'profile'}",
                "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=programs.path("chromedriver"), log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def snap(driver: WebDriver, page: str) -> None:
    """A picture of the page, kept in $PROVISIONER_UI_SCREENSHOTS when set."""
    keep = os.environ.get("PROVISIONER_UI_SCREENSHOTS")
    if keep:
        driver.save_screenshot(str(Path(keep) / f"{page}.png"))


def severe(driver: WebDriver) -> list[dict[str, Any]]:
    """The browser's console errors since the last call."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait(driver: WebDriver, what: str, check: Any, timeout: float = 60) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: check(d), message=what
    )


#: a row of the nodes table as the user sees it, read in one go (live updates change it)
ROW = """
const tr = document.querySelector(`#nodes tr[data-node="${arguments[0]}"]`);
if (!tr) return null;
const reason = tr.querySelector(".reason");
return {state: tr.querySelector("td.state").firstChild.textContent, class: tr.className,
        reason: reason ? reason.textContent : ""};
"""


SHOWN = "return [...document.querySelectorAll('#nodes tbody tr')].map(r => r.dataset.node)"


def row(driver: WebDriver, node: str) -> dict[str, str]:
    return driver.execute_script(ROW, node) or {"state": "", "class": "", "reason": ""}


def row_state(driver: WebDriver, node: str) -> str:
    return row(driver, node)["state"]


def test_dashboard_in_a_browser(tmp_path: Path) -> None:
    started = time.monotonic()
    with sim_lab(tmp_path, NODES, placement=PLACEMENT) as lab:
        lab_up = time.monotonic()
        base = f"http://127.0.0.1:{lab.ui_port}"
        token = StateDir(lab.state).api_token.read_text().strip()
        # two controllers (the quorum) and a node that fails, through the CLI meanwhile
        cli: dict[str, Any] = {}
        first = threading.Thread(
            target=lambda: cli.update(run=lab.cli("provision", "ctl1", "ctl2", "cmp2", "--json"))
        )
        first.start()
        try:
            _refusals_without_a_session(base)
            with browser(tmp_path) as driver:
                print(f"\n  browser up after {time.monotonic() - lab_up:.1f}s")
                _browse(driver, lab, base, token, first, cli)
            print(f"  browser closed after {time.monotonic() - lab_up:.1f}s")
        finally:
            first.join(timeout=300)
        assert token not in lab.serve.log(), "the admin token reached the log"
    print(f"\ndashboard browser test: {time.monotonic() - started:.1f}s, of which the lab's "
          f"start {lab_up - started:.1f}s")  # fmt: skip


def _refusals_without_a_session(base: str) -> None:
    """A client with no session gets nothing: pages send it to the login, the rest 401."""
    page = requests.get(f"{base}/nodes", headers={"Accept": "text/html"}, timeout=10,
                        allow_redirects=False)  # fmt: skip
    assert page.status_code == 303 and page.headers["Location"].endswith("/login")
    assert requests.get(f"{base}/events", timeout=10).status_code == 401
    started = requests.post(f"{base}/actions", json={"action": "provision", "nodes": ["cmp1"]},
                            timeout=10)  # fmt: skip
    assert started.status_code == 401
    # a login post that did not come from the login form (no form nonce) is refused
    assert requests.post(f"{base}/login", data={"token": "x"}, timeout=10).status_code == 403


def _browse(
    driver: WebDriver, lab: SimLab, base: str, token: str, first: threading.Thread, cli: dict
) -> None:
    errors: list[dict[str, Any]] = []
    t0 = time.monotonic()

    def phase(what: str) -> None:
        print(f"  {time.monotonic() - t0:5.1f}s {what}")

    # -- logged out: the page asks for the token; a wrong one is refused ------------------
    driver.get(f"{base}/nodes")
    assert driver.current_url == f"{base}/login"
    driver.find_element(By.ID, "token").send_keys("not-the-token")
    driver.find_element(By.ID, "login").click()
    wait(driver, "the refusal", lambda d: d.find_elements(By.ID, "login-error"))
    assert "not the admin token" in driver.find_element(By.ID, "login-error").text
    # the refused login's 401 is the one console error this test provokes on purpose
    assert [e["message"] for e in severe(driver) if "/login" not in e["message"]] == []
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()
    wait(driver, "the nodes page", lambda d: d.current_url == f"{base}/nodes")
    assert token not in driver.current_url and token not in driver.page_source
    (cookie,) = [c for c in driver.get_cookies() if c["name"] == "provisioner_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert token not in cookie["value"]

    phase("logged in")
    # -- the nodes of the site, live -------------------------------------------------------
    names = driver.execute_script(SHOWN)
    assert names == [n for n, *_ in NODES]
    wait(driver, "the live stream", lambda d: d.find_element(By.ID, "live").text == "live")
    driver.execute_script("window.notReloaded = true")

    # a request with the session cookie but without the CSRF token is refused
    jar = {cookie["name"]: cookie["value"]}
    bare = requests.post(f"{base}/actions", json={"action": "power-off", "nodes": ["cmp3"]},
                         cookies=jar, timeout=10)  # fmt: skip
    assert bare.status_code == 403 and "CSRF" in bare.json()["error"]
    forged = requests.post(f"{base}/actions", json={"action": "power-off", "nodes": ["cmp3"]},
                           cookies=jar, headers={"X-CSRF-Token": "guess"}, timeout=10)  # fmt: skip
    assert forged.status_code == 403

    phase("refusals checked")
    # -- start a provision of cmp1 (while the CLI's runs) and watch it go -----------------
    driver.find_element(By.CSS_SELECTOR, '#nodes .pick[value="cmp1"]').click()
    driver.find_element(By.CSS_SELECTOR, '.bulk button[data-action="provision"]').click()
    ok = driver.find_element(By.ID, "confirm-ok")
    wait(driver, "the confirmation", lambda d: ok.is_enabled())
    assert "cmp1" in driver.find_element(By.ID, "confirm-nodes").text
    ok.click()
    seen: set[str] = set()

    def follow(d: WebDriver) -> bool:
        seen.add(row_state(d, "cmp1"))
        return row_state(d, "cmp1") == "active"

    wait(driver, "cmp1 provisioned", follow, timeout=240)
    # the row went from what it was (not enrolled, or a step already) to active, live;
    # the steps between come half a second apart at most and are usually seen too
    assert seen - {"active", ""}, seen
    assert driver.execute_script("return window.notReloaded") is True
    phase("cmp1 active")
    # the CLI's provision shows up without a reload: controllers active, cmp2 failed
    wait(driver, "ctl1 and ctl2 active", lambda d: row_state(d, "ctl1") == row_state(d, "ctl2")
         == "active", timeout=240)  # fmt: skip
    wait(driver, "cmp2 failed", lambda d: "failed" in row_state(d, "cmp2"), timeout=240)
    failed = row(driver, "cmp2")
    assert "state-failed" in failed["class"]
    assert failed["reason"] == "installer failed: simulated disk error"  # why, on the row
    first.join(timeout=120)
    assert cli["run"].returncode != 0  # partial: cmp2 failed
    assert driver.execute_script("return window.notReloaded") is True

    snap(driver, "nodes")
    Select(driver.find_element(By.NAME, "role")).select_by_visible_text("controller")
    assert driver.execute_script(SHOWN) == ["ctl1", "ctl2"]
    assert driver.current_url == f"{base}/nodes?role=controller"  # a link to this view
    Select(driver.find_element(By.NAME, "role")).select_by_visible_text("any")
    Select(driver.find_element(By.NAME, "state")).select_by_visible_text("installing failed")
    assert driver.execute_script(SHOWN) == ["cmp2"]
    phase("CLI provision seen")
    jobs = driver.find_element(By.ID, "jobs").text
    assert "provision" in jobs and "cmp1: active" in jobs
    errors += severe(driver)

    # -- the node page; the quorum guard refuses a controller reprovision ------------------
    driver.get(f"{base}/nodes/ctl1")
    wait(driver, "the BMC's answer", lambda d: d.find_element(By.ID, "power").text == "on")
    events = driver.find_element(By.ID, "events").text
    assert "provisioning" in events and "active" in events
    assert "ok" in driver.find_element(By.ID, "hooks").text
    assert "ctl1.sim.example.test" in driver.page_source  # its DNS records
    driver.find_element(By.CSS_SELECTOR, '.node-actions button[data-action="reprovision"]').click()
    refusal = driver.find_element(By.ID, "confirm-refusal")
    wait(driver, "the quorum guard's answer", lambda d: refusal.is_displayed())
    assert "Refused by the quorum guard" in refusal.text and "ctl1" in refusal.text
    assert "1 of 2 controllers" in driver.find_element(By.ID, "confirm-quorum").text
    assert not driver.find_element(By.ID, "confirm-ok").is_enabled()
    driver.find_element(By.ID, "confirm-cancel").click()
    state = lab.cli("status", "ctl1", "--json")
    assert '"state": "active"' in state.stdout  # nothing happened
    errors += severe(driver)

    snap(driver, "node")
    phase("node page and quorum guard")
    # -- a power action, through the CLI's power operations --------------------------------
    driver.get(f"{base}/nodes/cmp3")
    driver.find_element(By.CSS_SELECTOR, '.node-actions button[data-action="power-off"]').click()
    ok = driver.find_element(By.ID, "confirm-ok")
    wait(driver, "the confirmation", lambda d: ok.is_enabled())
    ok.click()
    wait(driver, "cmp3 off", lambda d: "cmp3: off" in d.find_element(By.ID, "jobs").text)
    assert "off" in lab.ipmitool(4, "chassis", "power", "status")
    errors += severe(driver)

    phase("power off")
    # -- the rack view -----------------------------------------------------------------------
    driver.get(f"{base}/racks")
    slot = driver.find_element(By.CSS_SELECTOR, '.slot[data-node="ctl1"]')
    assert "state-ok" in slot.get_attribute("class")
    cmp2 = driver.find_element(By.CSS_SELECTOR, '.slot[data-node="cmp2"]')
    assert "state-failed" in cmp2.get_attribute("class")
    cmp3 = driver.find_element(By.CSS_SELECTOR, '.slot[data-node="cmp3"]')
    assert "state-idle" in cmp3.get_attribute("class")
    wait(driver, "the live stream", lambda d: d.find_element(By.ID, "live").text == "live")
    snap(driver, "racks")
    errors += severe(driver)
    assert errors == []

    phase("rack view")
    # -- logged out: the old cookie is worthless -------------------------------------------
    driver.find_element(By.CSS_SELECTOR, ".logout button").click()
    wait(driver, "the login page", lambda d: d.current_url == f"{base}/login")
    driver.get(f"{base}/nodes")
    assert driver.current_url == f"{base}/login"
    assert requests.get(f"{base}/events", cookies=jar, timeout=10).status_code == 401
