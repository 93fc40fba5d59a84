"""``restore serve``'s page in a real headless Chromium (tests/browser.py) against a real
server (tests/web_server.py): upload, denoise, the before/after slider and zoom, the
download equal to the CLI's file, a mask painted with the pointer and inpainted, no script
error and no request to another host. With RESTORE_DOCS_SCREENSHOTS=1 it also writes
docs/images/web.png."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from browser import LOCAL_SCHEMES, chromium, requested_urls, script_errors
from restore.cli import main
from web_server import restore_server

pytest.importorskip("fastapi", reason="restore serve needs the web extra: pip install -e '.[web]'")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "samples" / "noisy"
PHOTOS = [SAMPLES / "colour" / "astronaut.png", SAMPLES / "grey" / "camera_16bit.png"]  # 8-bit RGB, 16-bit grey
SCREENSHOT = ROOT / "docs" / "images" / "web.png"
WAIT = 240  # seconds for a result on a busy 2-core machine; not a timing assertion


def cli_denoised(photo: Path, out: Path) -> bytes:
    result = CliRunner().invoke(main, ["denoise", "--in", str(photo), "--out", str(out), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return (out / photo.name).read_bytes()


def wait_for(driver, script: str, seconds: float = WAIT):  # noqa: ANN001, ANN201 - a WebDriver, the script's value
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.25).until(lambda _: driver.execute_script(script))


def finished(driver, count: int) -> None:  # noqa: ANN001 - a WebDriver
    """Wait for ``count`` results, none still running; each failure's reason fails the test."""
    wait_for(driver, "const r = document.querySelectorAll('.result');"
                     f"return r.length === {count} && !document.querySelector('.status.busy') && !document.querySelector('#run').disabled")
    errors = driver.execute_script("return [...document.querySelectorAll('.result .error')].filter(e => !e.hidden)"
                                   ".map(e => e.textContent)")
    assert errors == []


def downloaded(driver, card: int) -> bytes:  # noqa: ANN001 - a WebDriver
    """The bytes behind the Download link of result ``card`` (the blob the page got from the API)."""
    encoded = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const link = document.querySelectorAll('.result')[arguments[0]].querySelector('.download');
        fetch(link.href).then(r => r.arrayBuffer()).then(buffer => {
          let text = ''; for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
          done(btoa(text));
        });""", card)
    return base64.b64decode(encoded)


def test_page_denoises_and_inpaints_offline(tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    expected = {photo.name: cli_denoised(photo, tmp_path / photo.stem) for photo in PHOTOS}
    with restore_server("--workers", "1") as server, chromium() as driver:
        url = server.url
        driver.set_script_timeout(60)
        driver.get(url + "/")
        wait_for(driver, "return document.querySelectorAll('#weights option').length > 1", 60)
        driver.find_element(By.ID, "files").send_keys("\n".join(str(photo) for photo in PHOTOS))
        driver.find_element(By.ID, "run").click()
        finished(driver, 2)
        for card in range(2):  # newest first; each download is the CLI's file (16-bit stays 16-bit)
            name = driver.execute_script("return document.querySelectorAll('.result .name')[arguments[0]].textContent",
                                         card)
            assert downloaded(driver, card) == expected[name], name
        assert driver.execute_script("return document.querySelector('.result .after').naturalWidth") == 256

        slider = driver.find_element(By.CSS_SELECTOR, ".result .slider")
        ActionChains(driver).click_and_hold(slider).move_by_offset(-slider.size["width"] // 3, 0).release().perform()
        clip = driver.execute_script("return document.querySelector('.result .before-clip').style.clipPath")
        assert clip.startswith("inset(0px") and clip != "inset(0px 50% 0px 0px)", clip
        driver.find_element(By.CSS_SELECTOR, ".result .zoom").click()
        assert driver.execute_script("const i = document.querySelector('.result .after');"
                                     "return i.getBoundingClientRect().width === i.naturalWidth")

        driver.find_element(By.CSS_SELECTOR, "#tasks [data-task=inpaint]").click()
        wait_for(driver, "const i = document.querySelector('#mask-image'); return i.complete && i.naturalWidth > 0", 60)
        canvas = driver.find_element(By.ID, "mask-canvas")
        ActionChains(driver).move_to_element_with_offset(canvas, -20, -10).click_and_hold() \
            .move_by_offset(40, 0).move_by_offset(0, 20).release().perform()
        if os.environ.get("RESTORE_DOCS_SCREENSHOTS") == "1":
            driver.find_element(By.CSS_SELECTOR, "#tasks [data-task=denoise]").click()
            driver.execute_script("document.querySelector('.result .zoom').click(); window.scrollTo(0, 0)")
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(SCREENSHOT))
            driver.find_element(By.CSS_SELECTOR, "#tasks [data-task=inpaint]").click()
        driver.find_element(By.ID, "run").click()
        finished(driver, 4)  # both files again; the mask was painted on the first
        reports = [json.loads(text) for text in driver.execute_script(
            "return [...document.querySelectorAll('.result .report')].slice(0, 2).map(r => r.textContent)")]
        painted = next(report for report in reports if report["input"] == PHOTOS[0].name)
        assert painted["status"] == "done" and 0 < painted["info"]["hole_fraction"] < 0.2, painted

        assert script_errors(driver) == []
        outside = [address for address in requested_urls(driver)
                   if not address.startswith((url + "/", *LOCAL_SCHEMES))]
        assert outside == []


def test_page_denoises_a_ct_slice(tmp_path: Path) -> None:
    """The Medical tab: a 16-bit CT slice denoised as `restore medical denoise --modality ct`
    writes it, shown windowed (not black, as 0..2200 of 65535 would be)."""
    import cv2
    import numpy as np
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    random = np.random.default_rng(0)
    body = np.hypot(*np.mgrid[-32:32, -32:32]) < 26
    scan = tmp_path / "in" / "ct.png"
    scan.parent.mkdir()
    cv2.imwrite(str(scan), np.clip(np.where(body, 1100, 50) + random.normal(0, 40, (64, 64)), 0, 2200).astype(np.uint16))
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["medical", "denoise", "--in", str(scan), "--out", str(out), "--modality", "ct",
                                       "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with restore_server("--workers", "1") as server, chromium() as driver:
        url = server.url
        driver.set_script_timeout(60)
        driver.get(url + "/")
        driver.find_element(By.CSS_SELECTOR, "#tasks [data-task=medical]").click()
        wait_for(driver, "return [...document.querySelectorAll('#weights option')].some(o => o.value === "
                         "'medical-ct-denoise')", 60)
        Select(driver.find_element(By.NAME, "modality")).select_by_value("ct")
        driver.find_element(By.ID, "files").send_keys(str(scan))
        driver.find_element(By.ID, "run").click()
        finished(driver, 1)
        assert downloaded(driver, 0) == (out / "ct.png").read_bytes()
        wait_for(driver, "const i = document.querySelector('.result .after'); return i.complete && i.naturalWidth === 64")
        brightest = driver.execute_script("""
            const image = document.querySelector('.result .after');
            const canvas = document.createElement('canvas');
            canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
            const context = canvas.getContext('2d');
            context.drawImage(image, 0, 0);
            return Math.max(...context.getImageData(0, 0, canvas.width, canvas.height).data.filter((_, i) => i % 4 === 0));
        """)
        assert brightest > 128
        assert script_errors(driver) == []


def test_docs_page_is_served_offline() -> None:
    with restore_server() as server, chromium() as driver:
        url = server.url
        driver.get(url + "/docs")
        wait_for(driver, "return document.querySelectorAll('.opblock').length >= 7", 60)
        assert script_errors(driver) == []
        assert [address for address in requested_urls(driver)
                if not address.startswith((url + "/", *LOCAL_SCHEMES))] == []
