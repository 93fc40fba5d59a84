"""``restore report`` and ``--report html``: the page of a batch and of an eval table.

The page is checked in a real headless Chromium (tests/browser.py): the slider moves the
before/after split, the filters hide and show rows, every picture loads, no request
leaves the file system, and a 1000-image report opens (its time is printed, not
asserted). With RESTORE_DOCS_SCREENSHOTS=1 the browser also writes docs/images/report.png.
The rest (previews, exclusion from later runs, eval pages) needs no browser.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from browser import LOCAL_SCHEMES, chromium, outside_requests, requested_urls, script_errors
from restore.cli import main
from restore.engine.batch import PAGE_NAME, PREVIEWS_FOLDER, BatchSettings, plan_jobs
from restore.io.image import Image
from restore.report import ReportError, write_report_page
from restore.report.evaluation import metric_tables
from restore.report.previews import PREVIEW_SIDE, displayable

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "samples" / "noisy"
SCREENSHOT = ROOT / "docs" / "images" / "report.png"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def denoised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``restore denoise --in datasets/samples/noisy --out OUT --report html`` (colour, grey,
    16-bit grey and RGBA samples), run once for the module."""
    out = tmp_path_factory.mktemp("report") / "denoised"
    code, output = run("denoise", "--in", os.path.relpath(SAMPLES), "--out", str(out), "--report", "html", "--quiet",
                       "--device", "cpu")
    assert code == 0, output
    assert f"page: {out / PAGE_NAME}" in output
    return out


def page_data(page: Path) -> dict:
    text = page.read_text()
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text).group(1))


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), pixels)
    return path


def synthetic_report(out: Path, count: int) -> Path:
    """A report.json of ``count`` entries (done, skipped, failed, some with a warning) over
    tiny PNGs, as a 1000-image batch would leave it."""
    source, rng = out.parent / "inputs", np.random.default_rng(0)
    files, made_from = [], {}
    for index in range(count):
        name = f"{index // 100:02d}/image{index:04d}.png"
        status = ("done", "done", "skipped", "failed")[index % 4]
        entry = {"input": str(source / name), "output": None, "status": status, "seconds": round(0.01 * (index % 37), 4),
                 "reason": "", "info": {"sigma": 10.0 + index % 7, "sigma_estimated": True}}
        pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        write_png(source / name, pixels)
        if status == "failed":
            entry["reason"] = "not an image file (unsupported extension '.txt')"
        else:
            write_png(out / name, 255 - pixels)
            entry["output"], made_from[name] = str(out / name), str(source / name)
        if index % 10 == 1:
            entry["info"]["warning"] = "no mask found: copied unchanged"
        files.append(entry)
    summary = {status: sum(entry["status"] == status for entry in files) for status in ("done", "skipped", "failed")}
    report = {"restore_version": "test", "source": str(source), "destination": str(out), "complete": True,
              "settings": {"task": "denoise", "sigma": "auto"}, "execution": {"device": "cpu"}, "warnings": [],
              "summary": summary, "files": files, "made_from": made_from}
    (out / "report.json").write_text(json.dumps(report))
    return out


# -- the page, without a browser ------------------------------------------------------------

def test_page_of_a_denoise_run_is_self_contained(denoised: Path) -> None:
    text = (denoised / PAGE_NAME).read_text()
    assert not re.search(r"https?://", text), "the page names an outside address"
    assert "<link" not in text and "@import" not in text and "url(" not in text
    data = page_data(denoised / PAGE_NAME)
    assert sorted(row["name"] for row in data["rows"]) == [
        "alpha/chelsea_rgba.png", "colour/astronaut.png", "colour/coffee.jpg", "grey/camera.png",
        "grey/camera_16bit.png"]
    for row in data["rows"]:
        assert row["info"]["sigma_estimated"] is True and row["status"] == "done"
        for role in ("before", "after", "thumb"):
            picture = denoised / row[role]
            assert picture.parent == denoised / PREVIEWS_FOLDER and picture.is_file()
        assert max(row["width"], row["height"]) <= PREVIEW_SIDE
    alpha = next(row for row in data["rows"] if row["name"] == "alpha/chelsea_rgba.png")
    assert alpha["alpha"] and alpha["before"].endswith(".png")
    before = cv2.imread(str(denoised / alpha["before"]), cv2.IMREAD_UNCHANGED)
    assert before.ndim == 3 and before.shape[2] == 4


def test_16_bit_and_grey_pictures_keep_their_look() -> None:
    grey16 = Image(np.full((4, 5, 1), 200 * 257, np.uint16))
    picture = displayable(grey16)
    assert picture.dtype == np.uint8 and picture.shape == (4, 5, 1) and picture[0, 0, 0] == 200
    grey_alpha = Image(np.zeros((2, 2, 1), np.uint8), alpha=np.full((2, 2), 255, np.uint8))
    assert displayable(grey_alpha).shape == (2, 2, 4)
    float_rgb = Image(np.ones((2, 2, 3), np.float32))
    assert (displayable(float_rgb) == 255).all()


def test_superres_input_is_shown_at_the_outputs_size(tmp_path: Path) -> None:
    out = tmp_path / "out"
    small = write_png(tmp_path / "in" / "a.png", np.full((8, 12, 3), 90, np.uint8))
    write_png(out / "a.png", np.full((32, 48, 3), 90, np.uint8))
    report = {"source": str(small.parent), "destination": str(out), "settings": {"task": "superres"},
              "summary": {"done": 1}, "files": [{"input": str(small), "output": str(out / "a.png"), "status": "done",
                                                 "seconds": 0.1, "reason": "", "info": {}}],
              "made_from": {"a.png": str(small)}}
    (out / "report.json").write_text(json.dumps(report))
    row = page_data(write_report_page(out))["rows"][0]
    assert (row["width"], row["height"]) == (48, 32)
    assert cv2.imread(str(out / row["before"])).shape == cv2.imread(str(out / row["after"])).shape == (32, 48, 3)


def test_page_and_previews_are_never_inputs_of_a_later_run(denoised: Path, tmp_path: Path) -> None:
    jobs = plan_jobs(denoised, tmp_path / "next", BatchSettings())
    names = {job.source.relative_to(denoised).as_posix() for job in jobs}
    assert names == {"alpha/chelsea_rgba.png", "colour/astronaut.png", "colour/coffee.jpg", "grey/camera.png",
                     "grey/camera_16bit.png"}
    user_page = tmp_path / "mine" / PAGE_NAME  # a report.html restore did not write is the user's file
    user_page.parent.mkdir()
    user_page.write_text("<html>my notes</html>")
    assert [job.source for job in plan_jobs(user_page.parent, tmp_path / "o", BatchSettings())] == [user_page]


def test_rerun_keeps_unchanged_previews_and_drops_unused_ones(tmp_path: Path) -> None:
    out = synthetic_report(tmp_path / "out", 8)
    first = page_data(write_report_page(out))
    kept = out / first["rows"][0]["after"]
    stamp = kept.stat().st_mtime_ns
    report = json.loads((out / "report.json").read_text())
    dropped = report["files"].pop(1)
    (out / "report.json").write_text(json.dumps(report))
    second = page_data(write_report_page(out))
    assert kept.stat().st_mtime_ns == stamp  # same files: not made again
    assert len(second["rows"]) == 7
    gone = next(row for row in first["rows"] if row["input"] == dropped["input"])
    assert not (out / gone["after"]).exists()


def test_only_inside_out_and_never_over_a_users_file(tmp_path: Path) -> None:
    out = synthetic_report(tmp_path / "out", 4)
    (out / PAGE_NAME).write_text("<html>not restore's</html>")
    with pytest.raises(ReportError, match="not a page restore wrote"):
        write_report_page(out)
    (out / PAGE_NAME).unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / PREVIEWS_FOLDER).symlink_to(elsewhere)
    with pytest.raises(ReportError, match="not a folder restore made"):
        write_report_page(out)
    assert not any(elsewhere.iterdir())


def test_report_command_errors_are_usage_errors(tmp_path: Path) -> None:
    code, output = run("report", str(tmp_path))
    assert code == 2 and "not found" in output
    (tmp_path / "x.json").write_text('{"a": 1}')
    code, output = run("report", str(tmp_path / "x.json"))
    assert code == 2 and "neither the report.json of a restore run" in output


@pytest.mark.parametrize("command", [["denoise"], ["superres"], ["inpaint"], ["style"], ["medical", "denoise"],
                                     ["medical", "superres"], ["eval"], ["eval", "denoise"], ["eval", "superres"],
                                     ["eval", "inpaint"], ["eval", "medical"], ["eval", "style"]])
def test_every_task_command_has_report_html(command: list[str]) -> None:
    code, output = run(*command, "--help")
    assert code == 0 and "--report [json|html]" in output


def test_medical_run_gets_middle_slice_previews(tmp_path: Path) -> None:
    pytest.importorskip("nibabel")
    from medical_files import phantom, write_identity_weights, write_nifti

    scans = tmp_path / "in"
    scans.mkdir()
    write_nifti(scans / "brain.nii.gz", phantom((16, 16, 5), seed=2, high=900).astype(np.int16))
    (scans / "notes.txt").write_text("not a scan")
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    out = tmp_path / "out"
    code, output = run("medical", "denoise", "--modality", "mr", "--in", str(scans), "--out", str(out),
                       "--weights", str(weights), "--quiet", "--device", "cpu", "--report", "html")
    assert code == 1 and "page:" in output, output  # notes.txt failed
    rows = {row["name"]: row for row in page_data(out / PAGE_NAME)["rows"]}
    assert rows["notes.txt"]["note"] == "no preview: the input failed"
    scan = rows["brain.nii.gz"]
    assert (scan["width"], scan["height"]) == (16, 16)
    before = cv2.imread(str(out / scan["before"]), cv2.IMREAD_UNCHANGED)
    after = cv2.imread(str(out / scan["after"]), cv2.IMREAD_UNCHANGED)
    assert before.ndim == 2 and np.array_equal(before, after)  # identity weights, one window


# -- eval tables ------------------------------------------------------------------------------

def test_eval_pairs_json_gets_means_table_and_plot(denoised: Path, tmp_path: Path) -> None:
    table = tmp_path / "pairs.json"
    pairs = ["eval", "--pred", str(denoised / "colour"), "--ref", str(ROOT / "datasets/samples/clean")]
    code, output = run(*pairs, "--report", "html")
    assert code == 2 and "give --json FILE.json too" in output
    code, output = run(*pairs, "--json", str(table), "--report", "html")  # = --json, then restore report
    assert code == 0 and f"page: {tmp_path / 'pairs.html'}" in output, output
    text = (tmp_path / "pairs.html").read_text()
    assert "astronaut" in text and "coffee" in text and 'class="metrics means"' in text
    if _has_matplotlib():
        assert (tmp_path / PREVIEWS_FOLDER / "pairs-0-psnr.png").is_file()
        assert f'src="{PREVIEWS_FOLDER}/pairs-0-psnr.png"' in text


def _has_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


EVAL_TABLES = {
    "denoise": {"Set12": {"dataset": "Set12", "channels": 1, "sigmas": [15.0], "images": ["a", "b"], "settings": {},
                          "methods": {"ours": {"seconds_per_megapixel": 1.0, "sigma": {"15": {
                              "psnr": 33.0, "ssim": 0.9, "per_image": {"a": {"psnr": 32.0, "ssim": 0.89},
                                                                       "b": {"psnr": 34.0, "ssim": 0.91}}}}}}}},
    "superres": {"dataset": "Set5", "scale": 4, "protocol": {"y_channel": True, "crop_border": 4}, "settings": {},
                 "methods": {"bicubic": {"psnr": 28.4, "ssim": 0.81, "seconds_per_megapixel": 0.1,
                                         "images": {"baby": {"psnr": "inf", "ssim": 1.0}}}}, "missing_low": []},
    "inpaint": {"dataset": "Kodak24", "settings": {}, "seconds": 3.0, "pairs": {},
                "rows": [{"bin": "0-10%", "pairs": 2, "method": "telea", "psnr": 30.0, "ssim": 0.95, "hole_psnr": 20.0}]},
    "medical": {"settings": {"task": "denoise"}, "means": {"ours": {"psnr": 40.0, "ssim": 0.95}},
                "rows": [{"file": "ct4.png", "slice": 0, "method": "ours", "data_range": 4095, "psnr": 40.0,
                          "ssim": 0.95}]},
    "style": {"method": "colour-histogram", "predictions": 3, "targets": 4, "values": {"histogram_w1": 0.02},
              "settings": {}},
}


@pytest.mark.parametrize("protocol", sorted(EVAL_TABLES))
def test_every_eval_protocols_json_is_recognised(protocol: str, tmp_path: Path) -> None:
    tables = metric_tables(EVAL_TABLES[protocol], protocol)
    assert tables and tables[0].means
    path = tmp_path / f"{protocol}.json"
    path.write_text(json.dumps(EVAL_TABLES[protocol]))
    page = write_report_page(path)
    assert page == tmp_path / f"{protocol}.html" and "<table" in page.read_text()


# -- in a browser -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def open_page(driver, page: Path) -> float:
    """Load ``page`` from file:// and return its DOMContentLoaded time in seconds."""
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get(page.as_uri())
    return driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0]; return n.domContentLoadedEventEnd / 1000;")


def wait_for(driver, script: str, timeout: float = 10.0):
    """Poll ``script`` (a JS expression) until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := driver.execute_script(f"return {script};"):
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {script}")


def visible_rows(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('#rows .row').length;")


def test_slider_moves_the_before_after_split(browser, denoised: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, denoised / PAGE_NAME)
    compare = browser.find_element(By.ID, "compare")
    wait_for(browser, "document.getElementById('after').naturalWidth > 0")
    box = compare.rect
    ActionChains(browser).move_to_element_with_offset(compare, int(-box["width"] * 0.25), 0).click().perform()
    handle = browser.find_element(By.ID, "handle").rect
    assert abs(handle["x"] - (box["x"] + box["width"] * 0.25)) < 3
    clip = browser.execute_script("return document.getElementById('before').style.clipPath")
    assert re.fullmatch(r"inset\(0(px)? 7[45](\.\d+)?% 0(px)? 0(px)?\)", clip), clip
    ActionChains(browser).move_to_element_with_offset(compare, int(-box["width"] * 0.25), 0).click_and_hold() \
        .move_by_offset(int(box["width"] * 0.5), 0).release().perform()
    assert abs(browser.find_element(By.ID, "handle").rect["x"] - (box["x"] + box["width"] * 0.75)) < 3
    browser.find_element(By.ID, "split").send_keys(Keys.HOME)
    assert browser.execute_script("return document.getElementById('before').style.clipPath") == "inset(0px 100% 0px 0px)"
    assert not script_errors(browser)
    if os.environ.get("RESTORE_DOCS_SCREENSHOTS") == "1":
        ActionChains(browser).move_to_element_with_offset(compare, int(box["width"] * 0.05), 0).click().perform()
        browser.find_element(By.CSS_SELECTOR, '#rows .row[data-index="1"]').click()  # the colour photo
        wait_for(browser, "document.getElementById('after').complete && document.getElementById('before').complete")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))
        print(f"screenshot: {SCREENSHOT}")


def test_every_picture_loads_and_nothing_leaves_the_file_system(browser, denoised: Path) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, denoised / PAGE_NAME)
    rows = browser.find_elements(By.CSS_SELECTOR, "#rows .row")
    assert len(rows) == 5
    for row in rows:
        row.click()
        wait_for(browser, "['before', 'after'].every(id => { const i = document.getElementById(id); "
                          "return i.complete && i.naturalWidth > 0; })")
        sizes = browser.execute_script("return ['before', 'after'].map(id => "
                                       "[document.getElementById(id).naturalWidth, document.getElementById(id).naturalHeight])")
        assert sizes[0] == sizes[1]  # the slider lines up the two pictures
    wait_for(browser, "[...document.querySelectorAll('#rows img')].every(i => i.complete && i.naturalWidth > 0)")
    urls = requested_urls(browser)
    assert any(url.startswith("file:") and PREVIEWS_FOLDER in url for url in urls)  # the log sees the pictures
    assert all(url.startswith(LOCAL_SCHEMES) for url in urls), urls
    assert not script_errors(browser)


def test_filters_hide_and_show_rows_and_sorting_orders_them(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    out = synthetic_report(tmp_path / "out", 40)
    open_page(browser, write_report_page(out))

    def show(kind: str) -> int:
        browser.find_element(By.CSS_SELECTOR, f'#filters button[data-filter="{kind}"]').click()
        return visible_rows(browser)

    assert show("failed") == 10
    assert browser.execute_script("return [...document.querySelectorAll('#rows .row')].every(r => "
                                  "r.classList.contains('failed'))")
    assert show("warnings") == 4
    assert show("skipped") == 10
    assert show("done") == 20
    assert show("all") == 40
    search = browser.find_element(By.ID, "search")
    search.send_keys("image001")
    assert visible_rows(browser) == 10
    search.clear()
    search.send_keys(" ")  # an input event with an empty query: every row again
    assert visible_rows(browser) == 40
    Select(browser.find_element(By.ID, "sort")).select_by_value("time")
    seconds = browser.execute_script("return [...document.querySelectorAll('#rows .secs')].map(s => parseFloat(s.textContent) || 0)")
    assert seconds == sorted(seconds, reverse=True)
    Select(browser.find_element(By.ID, "sort")).select_by_value("status")
    first = browser.find_element(By.CSS_SELECTOR, "#rows .row")
    assert "failed" in first.get_attribute("class")
    assert not script_errors(browser)


def test_a_thousand_image_report_opens_and_renders_lazily(browser, tmp_path: Path) -> None:
    out = synthetic_report(tmp_path / "out", 1000)
    started = time.perf_counter()
    page = write_report_page(out)
    written = time.perf_counter() - started
    loaded = open_page(browser, page)
    print(f"1000-image report: page and previews written in {written:.2f} s, DOMContentLoaded after {loaded:.3f} s")
    assert visible_rows(browser) < 1000  # rendered a chunk at a time
    for _ in range(30):
        if visible_rows(browser) == 1000:
            break
        browser.execute_script("document.getElementById('more').scrollIntoView()")
        time.sleep(0.1)
    assert visible_rows(browser) == 1000
    assert browser.execute_script("return document.querySelectorAll('#rows img[loading=lazy]').length") == 750
    assert not outside_requests(browser)
    assert not script_errors(browser)
