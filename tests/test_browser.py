"""The report and the visual Turing test in a real headless Chromium (slow).

Installs Debian's chromium and chromium-driver with apt-get (root only; skipped with the reason
otherwise), runs the tiny pipeline once, then: renders results/report.html offline (every image
loads, the page is not blank, no request leaves the machine); and takes the Turing test as two
readers would (clicks and keyboard, a reload mid-way, CSV export through a real download),
scores the files with `medgan turing-score`, and checks the report shows the scores.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import REPO, TINY, apt_install, command_failed, run_env
from medgan import config

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PACKAGES = ["chromium", "chromium-driver"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags that keep a headless Chromium from reaching out (updates, sync, QUIC) and from
# needing a sandbox or GPU in a container.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2000"]
EXPERIMENT = "tiny_dcgan_tumour"
PIPELINE_LIMIT_S = 900


def find_browser() -> tuple[str, str] | None:
    """(browser, chromedriver) already installed: Debian's chromium, or Chrome as on GitHub's
    Ubuntu runners (which set $CHROMEWEBDRIVER)."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = shutil.which("chromedriver") or shutil.which("chromedriver", path=os.environ.get("CHROMEWEBDRIVER") or os.defpath)
    return (browser, driver) if browser and driver else None


def install_chromium() -> tuple[str, str]:
    """Find Chromium and its driver, else install Debian's with apt-get; skip (with the reason)
    where that is impossible."""
    found = find_browser()
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("Chromium is not installed and installing it (apt-get install chromium chromium-driver) needs root")
    if shutil.which("apt-get") is None:
        pytest.skip("Chromium is not installed and there is no apt-get to install it with")
    apt_install(PACKAGES)
    found = find_browser()
    assert found, f"installed {PACKAGES} but found no browser among {BROWSERS} with a chromedriver"
    return found


def run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=PIPELINE_LIMIT_S)
    assert result.returncode == 0, command_failed(cmd, cwd, result)
    return result


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The tiny pipeline run through Snakemake up to the report; returns (root, env)."""
    root = tmp_path_factory.mktemp("browser_project")
    for name in ("Snakefile", "dvc.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "workflow", root / "workflow", symlinks=False)
    (root / "params.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    env = run_env()
    env.pop(config.PARAMS_ENV, None)
    env["TORCH_HOME"] = str(root / "torch_home")  # no Inception weights: the page says radiomics
    env["OMP_NUM_THREADS"] = "1"
    run(["snakemake", "--cores", "2"], root, env)
    assert (root / "results/report.html").exists()
    return root, env


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary, driver_path = install_chromium()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra: pip install -e '.[dev]'")
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chrome_profile')}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def requests_seen(driver) -> list[tuple[str, str]]:
    """(document URL, requested URL) of every request since the last call, from Chrome's
    DevTools network events (Chrome's own pages, such as the new-tab page, appear too)."""
    seen = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            seen.append((params.get("documentURL", ""), params["request"]["url"]))
    return seen


def wait_for(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_report_renders_offline_with_every_image_loaded(pipeline, browser):
    root, _ = pipeline
    page = root / "results/report.html"
    browser.get("about:blank")
    requests_seen(browser)  # drop earlier events (the start-up tab's)
    browser.get(page.as_uri())
    wait_for(lambda: browser.execute_script("return document.readyState") == "complete", what="page load")
    broken = browser.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt);")
    assert broken == []
    for name in TINY["experiments"]:
        # generated and real grids, curves, progress, interpolation, histogram, feature map, closest pairs
        shown = browser.execute_script(f"return document.getElementById('{name}').querySelectorAll('img').length;")
        assert shown == 8, f"{name}: {shown} images"
        section = browser.find_element("id", name).text
        for words in ("Wasserstein-1", "PCA", "Visual Turing test", "Memorisation", "Real held-out"):
            assert words in section, f"{name}: no '{words}'"
    assert "params hash" in browser.find_element("tag name", "header").text
    links = browser.execute_script(
        "return [...document.querySelectorAll('[src], [href]')].map(e => e.getAttribute('src') || e.getAttribute('href'));")
    assert all(u.startswith(("data:", "#", "turing/", "explore/")) for u in links), [u for u in links if not u.startswith("data:")]
    seen = requests_seen(browser)
    of_report = [url for document, url in seen if document == page.as_uri()]
    assert page.as_uri() in of_report and any(u.startswith("data:image/png") for u in of_report)
    assert all(u.startswith(("file://", "data:")) for u in of_report), of_report
    assert not [u for _, u in seen if u.startswith(("http:", "https:", "ws:", "wss:"))]
    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L"), float)
    assert shot.std() > 20 and len(np.unique(shot)) > 50, "the screenshot is (nearly) blank"


def take_test(browser, page: Path, reader: str, answer_for, reload_after: int, keyboard: bool) -> Path:
    """Answer every image as `reader` (clicking, or with the R/S keys), reload the page after
    `reload_after` answers, export; return the downloaded CSV."""
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    browser.execute_script("localStorage.clear();")
    browser.refresh()
    field = browser.find_element(By.ID, "reader")
    field.send_keys(reader)
    total = len(browser.execute_script("return ITEMS;"))
    for k in range(total):
        image_id = browser.find_element(By.ID, "image").get_attribute("data-id")
        answer = answer_for(image_id)
        if keyboard:
            browser.find_element(By.TAG_NAME, "body").send_keys("3" + answer[0])  # confidence 3, then r/s
        else:
            browser.find_element(By.ID, answer).click()
        if k + 1 == reload_after:
            browser.refresh()
            assert f"{k + 1} answered" in browser.find_element(By.ID, "progress").text
            assert browser.find_element(By.ID, "reader").get_attribute("value") == reader
    assert f"{total} answered" in browser.find_element(By.ID, "progress").text
    assert "All images answered" in browser.find_element(By.ID, "done").text
    browser.find_element(By.ID, "export").click()
    target = browser.downloads / f"{reader}.csv"
    wait_for(lambda: target.exists() and target.stat().st_size > 0, what=f"download of {target.name}")
    return target


def test_turing_test_taken_in_the_browser_and_scored(pipeline, browser, tmp_path):
    root, env = pipeline
    page = root / f"results/turing/{EXPERIMENT}/index.html"
    key = json.loads((root / f"results/turing/{EXPERIMENT}/key.json").read_text())
    truth = {it["id"]: it["truth"] for it in key["items"]}
    assert not any(it["source"] in page.read_text() for it in key["items"])
    informed = take_test(browser, page, "keyreader", truth.get, reload_after=len(truth) // 2, keyboard=False)
    rng = np.random.default_rng(7)
    guesses = {}

    def guess(image_id):
        guesses[image_id] = str(rng.choice(["real", "synthetic"]))
        return guesses[image_id]

    random_csv = take_test(browser, page, "randomreader", guess, reload_after=3, keyboard=True)
    lines = random_csv.read_text().splitlines()
    assert lines[0] == "test_id,reader,image_id,answer,confidence,answered_at" and len(lines) == len(truth) + 1
    assert all(line.split(",")[4] == "3" for line in lines[1:])
    answers = root / f"results/turing/{EXPERIMENT}/answers"
    answers.mkdir()
    for csv in (informed, random_csv):
        shutil.copy(csv, answers / csv.name)
    run(["medgan", "turing-score", EXPERIMENT, "--json", str(tmp_path / "scores.json")], root, env)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["readers"]["keyreader"]["accuracy"]["value"] == 1.0
    expected = np.mean([guesses[i] == truth[i] for i in truth])
    rand = scores["readers"]["randomreader"]["accuracy"]
    assert rand["value"] == pytest.approx(expected) and rand["n"] == len(truth)
    assert abs(rand["value"] - 0.5) <= 3 * np.sqrt(0.25 / len(truth))  # chance, within 3 SD
    assert scores["agreement"]["n_items"] == len(truth)
    # The answers are an input of the report rule: Snakemake rebuilds the report with the scores.
    plan = run(["snakemake", "--cores", "2", "--dry-run", "--quiet", "rules"], root, env).stdout
    assert "report" in plan and "train" not in plan
    run(["snakemake", "--cores", "2"], root, env)
    text = (root / "results/report.html").read_text()
    assert "keyreader" in text and "randomreader" in text and "Fleiss" in text


EXPLORE_PAGE_LIMIT = 1_500_000  # bytes: the tiny pipeline's explorer page (the demo's: README)


def test_explorer_hover_click_and_sliders_change_the_image_offline(pipeline, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    root, _ = pipeline
    page = root / "results/explore/tiny.html"
    assert page.stat().st_size < EXPLORE_PAGE_LIMIT
    assert 'href="explore/tiny.html"' in (root / "results/report.html").read_text()
    browser.get("about:blank")
    requests_seen(browser)
    browser.get(page.as_uri())
    wait_for(lambda: browser.execute_script("return document.readyState") == "complete", what="page load")
    canvas = browser.find_element(By.ID, "map")
    shown = lambda: browser.find_element(By.ID, "shown").get_attribute("src")  # noqa: E731
    # canvas pixel -> offset from the element's centre (selenium moves relative to the centre)
    size = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", canvas)
    point = browser.execute_script("""
        const g = DATA.groups.findIndex(g => g.points.length), [x, y, i] = DATA.groups[g].points.at(-1);
        return [px(x), py(y), DATA.images[i]];""")
    scale = size[0] / 600
    before = shown()
    ActionChains(browser).move_to_element_with_offset(canvas, int(point[0] * scale - size[0] / 2),
                                                      int(point[1] * scale - size[1] / 2)).perform()
    wait_for(lambda: shown() == point[2], what="the hovered point's image")
    assert point[2] != before or browser.execute_script("return DATA.images.length") == 1
    decoded = set(browser.execute_script("return DATA.decoded;"))
    first, second = [], []
    for corner, store in (((-0.45, -0.45), first), ((0.45, 0.45), second)):
        ActionChains(browser).move_to_element_with_offset(canvas, int(corner[0] * size[0]), int(corner[1] * size[1])) \
            .click().perform()
        store.append(shown())
    assert first[0] in decoded and second[0] in decoded and first[0] != second[0]  # the decoder's images
    assert browser.find_element(By.ID, "shown").get_attribute("data-source") == "decoder"
    gan = next(iter(TINY["experiments"]))
    image = lambda: browser.find_element(By.ID, f"gan-{gan}-image").get_attribute("src")  # noqa: E731
    start = image()
    slider = browser.find_element(By.ID, f"gan-{gan}-c1")
    browser.execute_script("arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'));", slider)
    assert image() != start
    path = browser.find_element(By.ID, f"gan-{gan}-path")
    browser.execute_script("arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'));", path)
    one_end = image()
    browser.execute_script("arguments[0].value = arguments[0].max; arguments[0].dispatchEvent(new Event('input'));", path)
    assert image() != one_end
    seen = requests_seen(browser)
    assert all(u.startswith(("file://", "data:")) for d, u in seen if d == page.as_uri()), seen
    assert not [u for _, u in seen if u.startswith(("http:", "https:", "ws:", "wss:"))]
