"""``restore serve``'s HTTP API: the CLI's bytes and reasons over HTTP, and its limits.

Most tests serve an app built here with their own settings and parsers (uvicorn in a thread);
the load test runs a real ``restore serve`` process and sends more requests at once than it runs and queues."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="restore serve needs the web extra: pip install -e '.[web]'")
from restore.cli import main
from restore.cli.chain import CHAIN_SETTINGS, STEP_COMMANDS, parse_step, task_settings
from restore.cli.options import CLUSTER_SETTINGS
from restore.cli.medical import MEDICAL_COMMANDS, SCAN_BATCH_SETTINGS, scan_settings
from restore.web.app import create_app
from restore.web.forms import SCAN_FORMS, TASK_FORMS, option_fields
from restore.web.progress import ProgressBoard
from restore.web.responses import REPORT_HEADER
from restore.web.settings import Parsers, ServeSettings
from web_server import ApiClient, app_server, restore_server

Start = Callable[..., ApiClient]
PARSERS = Parsers(task_options=task_settings, step=parse_step, scan_options=scan_settings)
SAMPLES = Path(__file__).resolve().parents[1] / "datasets" / "samples" / "noisy"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Start]:
    """Starts apps (request folders under ``tmp_path/requests``) on real sockets; stops them after the test."""
    (tmp_path / "requests").mkdir()
    with ExitStack() as servers:

        def start(parsers: Parsers = PARSERS, **settings: Any) -> ApiClient:
            app = create_app(ServeSettings(temp_root=tmp_path / "requests", **settings), parsers)
            return servers.enter_context(app_server(app))

        yield start


def crop(source: Path, target: Path, size: int = 64) -> Path:
    """A ``size`` x ``size`` corner of a sample (dtype, channels and alpha kept)."""
    pixels = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), pixels[:size, :size])
    return target


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """8-bit RGB, 16-bit grey and RGBA inputs, each in its own folder."""
    root = tmp_path_factory.mktemp("samples")
    return {kind: crop(SAMPLES / relative, root / kind / Path(relative).name)
            for kind, relative in {"rgb": "colour/astronaut.png", "grey16": "grey/camera_16bit.png",
                                   "rgba": "alpha/chelsea_rgba.png"}.items()}


def cli_output(tmp_path: Path, *arguments: str) -> tuple[bytes, dict]:
    """What ``restore ARGUMENTS... --out OUT`` writes for its one input: bytes and report entry."""
    out = tmp_path / f"cli-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(main, [*arguments, "--out", str(out), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    entry = json.loads((out / "report.json").read_text())["files"][0]
    return Path(entry["output"]).read_bytes(), entry


def post(api: ApiClient, route: str, image: Path, data: dict | None = None, mask: Path | None = None,
         **params: str) -> Any:
    files = {"image": (image.name, image.read_bytes())}
    if mask is not None:
        files["mask"] = (mask.name, mask.read_bytes())
    return api.post(f"/api/v1/{route}", data={"device": "cpu", **(data or {})} if route != "chain" else data,
                    files=files, params=params)


def test_health_and_weights(client: Start) -> None:
    api = client(workers=2, queue=3)
    health = api.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["workers"] == 2 and health["queue"] == 3
    names = {entry["name"]: entry for entry in api.get("/api/v1/weights").json()}
    assert names["denoise-color"]["task"] == "denoise" and names["denoise-color"]["origin"] == "shipped"


def test_forms_take_the_commands_options() -> None:
    """Each task's form fields are its command's options (but --in/--out, the batch's, --masks, --cluster)."""
    for task, form in TASK_FORMS.items():
        command, _ = STEP_COMMANDS[task]
        cli = {param.name for param in command.params if param.name not in CHAIN_SETTINGS + CLUSTER_SETTINGS}
        cli -= {"masks_dir"}
        assert set(option_fields(form)) == cli, task
    for name, form in SCAN_FORMS.items():
        cli = {param.name for param in MEDICAL_COMMANDS[name].params
               if param.name not in SCAN_BATCH_SETTINGS + CLUSTER_SETTINGS}
        assert set(option_fields(form)) == cli, name


@pytest.mark.parametrize("kind", ["rgb", "grey16", "rgba"])
def test_denoise_bytes_equal_the_cli(tmp_path: Path, samples: dict[str, Path], kind: str, client: Start) -> None:
    expected, entry = cli_output(tmp_path, "denoise", "--in", str(samples[kind]), "--sigma", "25", "--strength", "0.8")
    answer = post(client(), "denoise", samples[kind], {"sigma": "25", "strength": "0.8"})
    assert answer.status_code == 200, answer.text
    assert answer.content == expected
    report = json.loads(answer.headers[REPORT_HEADER])
    assert report["info"] == entry["info"] and report["output"] == samples[kind].name
    assert answer.headers["content-type"] == "image/png"


def test_superres_and_inpaint_bytes_equal_the_cli(tmp_path: Path, samples: dict[str, Path], client: Start) -> None:
    api = client()
    expected, _ = cli_output(tmp_path, "superres", "--in", str(samples["rgb"]), "--scale", "2", "--outscale", "1.5")
    answer = post(api, "superres", samples["rgb"], {"scale": "2", "outscale": "1.5"})
    assert answer.status_code == 200 and answer.content == expected

    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 10:30] = 255
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / samples["rgb"].name), mask)
    expected, entry = cli_output(tmp_path, "inpaint", "--in", str(samples["rgb"]), "--masks", str(masks))
    answer = post(api, "inpaint", samples["rgb"], mask=masks / samples["rgb"].name, format="json")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert base64.b64decode(body["image"]) == expected
    assert body["report"]["info"]["hole_fraction"] == entry["info"]["hole_fraction"]
    assert body["report"]["info"]["mask"] == f"masks/{samples['rgb'].name}"  # no server path


def test_chain_equals_restore_chain(tmp_path: Path, samples: dict[str, Path], client: Start) -> None:
    steps = ["denoise --sigma 15 --device cpu", "superres --scale 2 --device cpu"]
    out = tmp_path / "chain"
    result = CliRunner().invoke(main, ["chain", *steps, "--in", str(samples["grey16"]), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    answer = post(client(), "chain", samples["grey16"], {"steps": steps})
    assert answer.status_code == 200, answer.text
    assert answer.content == (out / samples["grey16"].name).read_bytes()
    assert [step["task"] for step in json.loads(answer.headers[REPORT_HEADER])["info"]["steps"]] == ["denoise",
                                                                                                  "superres"]


def test_bad_requests_get_the_cli_reason(tmp_path: Path, samples: dict[str, Path], client: Start) -> None:
    api = client()
    answer = post(api, "denoise", samples["rgb"], {"sigma": "300"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == "Invalid value for '--sigma': the noise level is on the 0-255 scale"
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture")
    answer = post(api, "denoise", junk)
    assert answer.status_code == 422 and answer.json()["detail"].startswith("not an image (unrecognised content")
    answer = post(api, "denoise", samples["rgb"], {"sigmaa": "25"})  # a misspelt option is refused, not ignored
    assert answer.status_code == 422 and "sigmaa" in answer.text
    answer = post(api, "chain", samples["rgb"], {"steps": ["denoise --out elsewhere"]})
    assert answer.status_code == 422 and "--out is an option of the whole chain" in answer.json()["detail"]


@pytest.mark.parametrize("route, data", [
    ("denoise", {"weights": "/etc/passwd"}),
    ("denoise", {"weights": "weights/denoise-color.safetensors"}),
    ("chain", {"steps": ["denoise --weights=../weights/denoise-color.safetensors"]}),
    ("chain", {"steps": ["inpaint --masks /tmp"]}),
])
def test_paths_from_the_network_are_refused(samples: dict[str, Path], route: str, data: dict, client: Start) -> None:
    answer = post(client(), route, samples["rgb"], data)
    assert answer.status_code == 422
    assert "file paths are refused" in answer.text or "a request may not" in answer.text


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 16-bit CT slice (stored values 0..2200, as the shared CT PNGs) and a small MR NIfTI volume."""
    nibabel = pytest.importorskip("nibabel", reason="scans need the medical extra: pip install -e '.[medical]'")
    root = tmp_path_factory.mktemp("scans")
    random = np.random.default_rng(0)
    body = np.hypot(*np.mgrid[-32:32, -32:32]) < 26
    slice_ = np.clip(np.where(body, 1100, 50) + random.normal(0, 40, (64, 64)), 0, 2200).astype(np.uint16)
    ct = root / "ct" / "slice.png"
    ct.parent.mkdir()
    cv2.imwrite(str(ct), slice_)
    volume = np.clip(np.where(body, 600.0, 20.0)[:, :, None] + random.normal(0, 15, (64, 64, 5)), 0, None)
    mr = root / "mr" / "head.nii.gz"
    mr.parent.mkdir()
    nibabel.save(nibabel.Nifti1Image(volume.astype(np.float32), np.diag([0.9, 0.9, 3.0, 1.0])), mr)
    return {"ct": ct, "mr": mr}


@pytest.mark.parametrize("kind, command, options", [
    ("ct", "denoise", {"modality": "ct", "strength": "0.7"}),
    ("mr", "denoise", {"modality": "mr"}),
    ("mr", "superres", {"modality": "mr", "scale": "2"}),
])
def test_scan_bytes_equal_restore_medical(tmp_path: Path, scans: dict[str, Path], client: Start, kind: str,
                                          command: str, options: dict[str, str]) -> None:
    words = [word for name, value in options.items() for word in (f"--{name}", value)]
    expected, entry = cli_output(tmp_path, "medical", command, "--in", str(scans[kind]), *words)
    answer = post(client(), f"medical/{command}", scans[kind], options)
    assert answer.status_code == 200, answer.text
    assert answer.content == expected
    assert json.loads(answer.headers[REPORT_HEADER])["info"] == json.loads(json.dumps(entry["info"]))


def test_scan_requests_get_the_command_reason(scans: dict[str, Path], client: Start) -> None:
    api = client()
    answer = post(api, "medical/denoise", scans["ct"], {})
    assert answer.status_code == 422 and "modality" in answer.text
    answer = post(api, "medical/denoise", scans["ct"], {"modality": "ct", "ct_window": "300,100"})
    assert answer.status_code == 422 and "LOW must be below HIGH" in answer.json()["detail"]
    answer = post(api, "medical/denoise", scans["ct"], {"modality": "ct", "weights": "/etc/passwd"})
    assert answer.status_code == 422 and "file paths are refused" in answer.text


def test_scan_preview_is_the_middle_slice_in_the_input_window(scans: dict[str, Path], client: Start) -> None:
    api = client()
    answer = api.post("/api/v1/preview", data={"scan": "true"}, files={"image": ("head.nii.gz", scans["mr"].read_bytes())})
    assert answer.status_code == 200, answer.text
    shown = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert shown.dtype == np.uint8 and shown.shape[:2] == (64, 64) and shown.max() > 200 and shown.min() < 40
    ct = scans["ct"].read_bytes()
    windowed = api.post("/api/v1/preview", data={"scan": "true"},
                        files={"image": ("slice.png", ct), "reference": ("slice.png", ct)})
    plain = api.post("/api/v1/preview", files={"image": ("slice.png", ct)})
    as_scan = cv2.imdecode(np.frombuffer(windowed.content, np.uint8), cv2.IMREAD_UNCHANGED)
    as_image = cv2.imdecode(np.frombuffer(plain.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert as_image.max() < 12 < as_scan.max()  # 0..2200 of 65535 is black unless windowed


def test_registered_weights_by_name(tmp_path: Path, samples: dict[str, Path], client: Start) -> None:
    expected, _ = cli_output(tmp_path, "denoise", "--in", str(samples["rgb"]), "--weights", "denoise-color")
    answer = post(client(), "denoise", samples["rgb"], {"weights": "denoise-color"})
    assert answer.status_code == 200 and answer.content == expected


def test_too_large_gets_413_before_decoding(samples: dict[str, Path], client: Start) -> None:
    answer = post(client(max_pixels=1000), "denoise", samples["rgb"])
    assert answer.status_code == 413
    assert answer.json()["detail"] == ("image is too large (64x64 = 4096 pixels, limit 1000); raise the limit with "
                                       "--max-pixels if the file is trusted")
    api = client(max_upload_bytes=2000)
    answer = post(api, "denoise", samples["rgb"])  # Content-Length says so
    assert answer.status_code == 413 and "2000 bytes" in answer.json()["detail"]
    # no Content-Length (chunked): counted as it streams. The first chunk is a valid start of
    # a multipart body, so that only the count, not the form parser, can refuse it.
    head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    chunks = iter([head + b"x" * (1500 - len(head)), b"x" * 1500])
    answer = api.post("/api/v1/denoise", data=chunks, headers={"content-type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 413


def test_temp_folder_is_cleaned(tmp_path: Path, samples: dict[str, Path], client: Start) -> None:
    api = client()
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture")
    for image in (samples["rgba"], junk):
        post(api, "denoise", image)
    assert post(api, "preview", samples["grey16"]).status_code == 200
    assert list((tmp_path / "requests").iterdir()) == []


def preview(api: ApiClient, image: bytes) -> np.ndarray:
    answer = api.post("/api/v1/preview", files={"image": ("a.png", image)})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png", answer.text
    return cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_UNCHANGED)


def test_preview_is_8_bit_png(tmp_path: Path, samples: dict[str, Path], client: Start) -> None:
    api = client()
    grey = preview(api, samples["grey16"].read_bytes())
    assert grey.dtype == np.uint8 and grey.shape == (64, 64)
    grey_alpha = tmp_path / "la.png"  # grey + alpha: shown as RGBA, the grey in all three channels
    PIL.Image.fromarray(np.dstack([np.arange(64, dtype=np.uint8)[None].repeat(8, 0), np.full((8, 64), 200, np.uint8)]),
                        "LA").save(grey_alpha)
    shown = preview(api, grey_alpha.read_bytes())
    assert shown.shape == (8, 64, 4) and (shown[..., 3] == 200).all() and (shown[..., 0] == np.arange(64)).all()


def blocking_parsers(started: threading.Event, release: threading.Event) -> Parsers:
    """The CLI's parsers, the task's held until ``release``: a request that keeps its worker."""

    def parse(task: str, arguments: list[str], max_pixels: int) -> dict:
        started.set()
        release.wait(60)
        return task_settings(task, arguments, max_pixels)

    return Parsers(task_options=parse, step=parse_step, scan_options=scan_settings)


def test_full_queue_gets_503_with_retry_after(samples: dict[str, Path], client: Start) -> None:
    started, release = threading.Event(), threading.Event()
    api = client(blocking_parsers(started, release), workers=1, queue=0, retry_after=7)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, api, "denoise", samples["rgb"])
        assert started.wait(60)
        busy = post(api, "denoise", samples["rgb"])
        release.set()
        assert first.result().status_code == 200
    assert busy.status_code == 503 and busy.headers["retry-after"] == "7"
    assert "busy" in busy.json()["detail"]
    assert post(api, "denoise", samples["rgb"]).status_code == 200  # the place is free again


def test_progress_of_a_request_while_it_waits_and_when_it_ends(samples: dict[str, Path], client: Start) -> None:
    started, release = threading.Event(), threading.Event()
    api = client(blocking_parsers(started, release), workers=1)
    request_id = uuid.uuid4().hex
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(post, api, "denoise", samples["rgb"], {"tile": "32", "tile_overlap": "8"},
                             progress=request_id)
        assert started.wait(60)
        waiting = api.get(f"/api/v1/progress/{request_id}").json()
        assert waiting == {"state": "queued", "input": None, "done": 0, "total": 0, "unit": None}
        release.set()
        assert answer.result().status_code == 200
    ended = api.get(f"/api/v1/progress/{request_id}").json()
    assert ended == {"state": "finished", "input": "astronaut.png", "done": 9, "total": 9, "unit": "tile"}
    assert api.get(f"/api/v1/progress/{uuid.uuid4().hex}").json()["state"] == "unknown"
    assert post(api, "denoise", samples["rgb"], progress="../etc").status_code == 422


def test_progress_board_stays_bounded() -> None:
    board = ProgressBoard(limit=2)
    for request_id in ("first", "second", "third"):
        board.track(request_id)
    assert [board.read(request_id)["state"] for request_id in ("first", "second", "third")] == [
        "unknown", "queued", "queued"]


def _send(url: str, image: bytes) -> tuple[int, str | None, bytes]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="device"\r\n\r\ncpu\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/api/v1/denoise", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as answer:
            return answer.status, None, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After"), error.read()


def test_load_more_requests_than_workers_and_queue(tmp_path: Path) -> None:
    """16 requests at once on a server that runs 1 and queues 2: each gets the CLI's output
    or a clean 503 with Retry-After, some get each, the server stays up, and its memory
    grows as for a few images, not for 16 (one 256x256 denoise adds ~140 MB here)."""
    photo = SAMPLES / "colour" / "astronaut.png"
    expected, _ = cli_output(tmp_path, "denoise", "--in", str(photo))
    image = photo.read_bytes()
    with restore_server("--workers", "1", "--queue", "2") as server:
        started = server.peak_memory()
        assert _send(server.url, image)[0] == 200
        one_image = server.peak_memory() - started
        barrier = threading.Barrier(16)

        def send(_: int) -> tuple[int, str | None, bytes]:
            barrier.wait()
            return _send(server.url, image)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, range(16)))
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
        for status, retry_after, content in answers:
            assert content == expected if status == 200 else (retry_after is not None and b"busy" in content)
        assert _send(server.url, image)[0] == 200  # still up, and free again
        assert server.peak_memory() - started < 3 * one_image, (server.peak_memory() - started, one_image)
