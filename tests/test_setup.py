"""`kiosk setup`: the installer's page on a real clip. Faces blurred in what is served (measured
against the camera's own frame), the live view updating in headless Chromium, a polygon drawn by
clicks written into the YAML file (comments kept) and passing check-config, hostile requests
refused, placement advice, the idle stop, and a camera that cannot be opened."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.setup.advice import SizeOptions, placement_advice
from kiosk.setup.privacy import blur_faces
from kiosk.setup.zonefile import ZonesUpdate, parse_update, save_zones
from tests.broker import free_port
from tests.conftest import data_path
from tests.helpers import wait_for

CLIP = "head-pose-face-detection-female-and-male.mp4"
CONFIG_HEAD = "# set-up test config: this comment must survive the page's write\ncamera:\n"


def laplacian_energy(gray: np.ndarray) -> float:
    return float(np.mean(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F) ** 2))


def write_config(path: Path, source: str, zones: str = "") -> Path:
    path.write_text(
        CONFIG_HEAD + f"  source: {source}\n  loop: true\n  # realtime like a camera\n  realtime: true\n"
        f"store:\n  path: {path.parent / 'device.db'}\nmqtt:\n  device_id: setup-test\n" + zones
    )
    return path


@contextmanager
def setup_page(cfg: Path, listen: str | None = None, idle_minutes: float = 10.0):
    port = free_port()
    listen = listen or f"127.0.0.1:{port}"
    log = open(cfg.parent / "setup.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kiosk.cli",
            "setup",
            "--config",
            str(cfg),
            "--listen",
            listen,
            "--idle-minutes",
            str(idle_minutes),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{listen.rsplit(':', 1)[1]}"
    try:
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def get(url: str, headers: dict | None = None, data: bytes | None = None, method: str | None = None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError:
        return 0, {}, b""


def state(base: str, token: str = "") -> dict | None:
    status, _, body = get(f"{base}/api/state" + (f"?token={token}" if token else ""))
    return json.loads(body) if status == 200 else None


def log_of(cfg: Path) -> str:
    return (cfg.parent / "setup.log").read_text()


# --- the parts on their own ----------------------------------------------------------------------


def test_blur_leaves_no_detail_in_a_face_box_and_nothing_outside_it_changes(sample_image):
    image = cv2.imread(str(sample_image))
    box = (150.0, 60.0, 350.0, 300.0)
    out = blur_faces(image, [box])
    x0, y0, x1, y1 = map(int, box)
    before = laplacian_energy(cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY))
    after = laplacian_energy(cv2.cvtColor(out[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY))
    assert after < 0.02 * before, (before, after)
    grown_x0 = int(x0 - 0.3 * (x1 - x0)) - 1
    assert np.array_equal(out[:, : max(0, grown_x0)], image[:, : max(0, grown_x0)])  # the rest as it was


def test_placement_advice_follows_the_sizes():
    o = SizeOptions(
        min_face_px=20, min_sample_face_px=32, width=640, height=480, detector="face_detector_short", search_tiles=1
    )
    none = placement_advice([], o)
    assert none["faces"] == 0 and "No face in the last minute" in none["advice"][0]
    small = placement_advice([12.0] * 30 + [25.0] * 30 + [50.0] * 10, o)
    said = " ".join(small["advice"])
    assert small["share_not_counted"] == round(30 / 70, 3) and small["share_not_described"] == round(60 / 70, 3)
    for advice in (
        "vision.detector.min_face_px (20 px)",
        "closer",
        "camera.width 1280",
        "tracking.search_tiles: 3",
        "face_detector_full_sparse",
    ):
        assert advice in said, advice
    assert [b["faces"] for b in small["histogram"]][:4] == [30, 30, 0, 10]
    # the minimum sizes as a reach: 640 px wide behind a 66 degree lens, a 16 cm face is 20 px at about 3.9 m
    assert small["reach"]["counted_up_to_m"] == pytest.approx(3.9, abs=0.1)
    assert small["reach"]["described_up_to_m"] == pytest.approx(3.9 * 20 / 32, abs=0.1)
    assert "counted up to about 3.9 m" in small["reach"]["text"]
    large = placement_advice([200.0] * 10, SizeOptions(20, 32, 640, 480, "face_detector_full_sparse", 3))
    assert "face_detector_short" in " ".join(large["advice"])
    assert len(large["mounting"]) >= 3 and "1.6 to 2.0 m" in large["mounting"][0]


def test_the_zone_file_keeps_its_comments_refuses_what_is_invalid_and_bounds_the_request(tmp_path):
    cfg = write_config(tmp_path / "kiosk.yaml", "/dev/video0", "zones:\n  - id: old\n    rect: [0, 0, 1, 1]\n")
    good = parse_update(
        json.dumps(
            {
                "zones": [
                    {"id": "coffee", "type": "shelf", "label": "SKU-1", "polygon": [[0.1, 0.1], [0.5, 0.1], [0.3, 0.7]]}
                ],
                "exclusion_zones": [{"label": "till", "rect": [0.8, 0, 1, 1]}],
            }
        ).encode()
    )
    assert isinstance(good, ZonesUpdate)
    result = save_zones(cfg, good)
    assert result.ok and result.written, result
    text = cfg.read_text()
    assert "this comment must survive" in text and "# realtime like a camera" in text
    reread = load_config(cfg)
    assert [z.id for z in reread.zones] == ["coffee"] and reread.zones[0].polygon == [
        [0.1, 0.1],
        [0.5, 0.1],
        [0.3, 0.7],
    ]
    assert reread.exclusion_zones[0].label == "till" and reread.mqtt.device_id == "setup-test"
    r = subprocess.run([sys.executable, "-m", "kiosk.cli", "check-config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # invalid: refused by the config's own schema, by YAML path; the file is unchanged
    crossing = parse_update(
        json.dumps(
            {
                "zones": [
                    {"id": "x", "polygon": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]},
                    {"id": "x", "rect": [0, 0, 0.2, 0.2]},
                ]
            }
        ).encode()
    )
    bad = save_zones(cfg, crossing)
    assert not bad.ok and not bad.written
    said = " ".join(bad.errors)
    assert "zones[0].polygon: crosses itself" in said or "zone id 'x' is used twice" in said, bad.errors
    assert cfg.read_text() == text
    # hostile requests: size, depth, unknown keys, too many points, not JSON
    assert parse_update(b"x" * 70000)[0].startswith("request: over 64 KiB")
    assert parse_update(b"[" * 50000) == ["request: not JSON"]
    assert parse_update(b"not json") == ["request: not JSON"]
    many = parse_update(json.dumps({"zones": [{"id": "a", "polygon": [[0.5, 0.5]] * 65}]}).encode())
    assert any("zones[0].polygon" in e for e in many)
    extra = parse_update(json.dumps({"zones": [], "script": "<x>"}).encode())
    assert any("script" in e for e in extra)


def test_a_file_this_user_cannot_write_is_left_alone_and_the_snippet_given():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as a user who cannot write the file (here, not root)")
    folder = Path(tempfile.mkdtemp(prefix="kiosk-setup-ro-"))
    try:
        cfg = write_config(folder / "kiosk.yaml", "/dev/video0")
        # the file and its folder belong to another user (nobody), readable by all, writable by the owner only;
        # the installer's process is root without the capabilities that override file permissions, so it can
        # still read the checkout and its venv wherever a clone lies (a user switch could not, from a 0700 folder)
        os.chown(cfg, 65534, 65534)
        os.chown(folder, 65534, 65534)
        cfg.chmod(0o644)
        folder.chmod(0o755)
        before = cfg.read_text()
        code = (
            "import json, pathlib; from kiosk.setup.zonefile import parse_update, save_zones; "
            f"u = parse_update(json.dumps({{'zones': [{{'id': 'a', 'rect': [0, 0, 0.5, 1]}}]}}).encode()); "
            f"r = save_zones(pathlib.Path('{cfg}'), u); print(json.dumps([r.ok, r.written, r.message, r.snippet]))"
        )
        caps = "-dac_override,-dac_read_search,-fowner,-chown"
        r = subprocess.run(
            ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        assert r.returncode == 0, r.stderr
        ok, written, message, snippet = json.loads(r.stdout)
        assert ok and not written and "cannot be written by this user" in message and "check-config" in message
        assert "id: a" in snippet and "rect: [0, 0, 0.5, 1]" in snippet
        assert cfg.read_text() == before
        assert sorted(p.name for p in folder.iterdir()) == ["kiosk.yaml"]  # no temporary file left either
    finally:
        shutil.rmtree(folder)


# --- the page, running on a real clip ------------------------------------------------------------


def clip_frame(clip: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(clip))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index % n)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_every_face_is_blurred_in_the_served_frames_of_a_real_clip(tmp_path, pipeline):
    clip = data_path("videos", CLIP)
    cfg = write_config(tmp_path / "kiosk.yaml", str(clip))
    with setup_page(cfg) as (proc, base):
        assert wait_for(lambda: (state(base) or {}).get("frame") is not None, 60), log_of(cfg)
        compared = 0
        ratios = []
        for _ in range(6):
            status, headers, body = get(f"{base}/frame.jpg")
            assert status == 200 and headers["Content-Type"] == "image/jpeg" and headers["Cache-Control"] == "no-store"
            served = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            original = clip_frame(clip, int(headers["X-Frame-Index"]))
            assert served.shape == original.shape
            faces = pipeline.detect(original)  # found independently, on the camera's own frame
            mask = np.ones(original.shape[:2], bool)
            for d in faces:
                x0, y0 = max(0, int(d.box.x0)), max(0, int(d.box.y0))
                x1, y1 = int(d.box.x1), int(d.box.y1)
                g0 = cv2.cvtColor(original[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
                g1 = cv2.cvtColor(served[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
                ratios.append(laplacian_energy(g1) / laplacian_energy(g0))
                w, h = x1 - x0, y1 - y0
                mask[max(0, y0 - h) : y1 + h, max(0, x0 - w) : x1 + w] = False
                compared += 1
            # away from the faces the served frame is this very camera frame (JPEG aside): the right one compared
            diff = np.abs(served.astype(int) - original.astype(int)).mean(axis=2)[mask]
            assert diff.mean() < 6, diff.mean()
            time.sleep(0.3)
        assert compared >= 6, compared
        assert max(ratios) <= 0.1, ratios  # the high-frequency energy of every face box drops by at least 90%
        print(json.dumps({"faces_compared": compared, "largest_energy_ratio": round(max(ratios), 4)}))


def test_requests_from_elsewhere_are_refused_and_another_address_needs_the_token(tmp_path):
    clip = data_path("videos", CLIP)
    cfg = write_config(tmp_path / "kiosk.yaml", str(clip))
    with setup_page(cfg) as (proc, base):
        assert wait_for(lambda: state(base) is not None, 60), log_of(cfg)
        port = base.rsplit(":", 1)[1]
        assert get(f"{base}/api/state", {"Host": f"attacker.example:{port}"})[0] == 421  # DNS rebinding
        body = json.dumps({"zones": []}).encode()
        assert get(f"{base}/api/zones", {"Content-Type": "text/plain"}, body)[0] == 415  # a cross-site form
        cross = {"Content-Type": "application/json", "Origin": "http://attacker.example"}
        assert get(f"{base}/api/zones", cross, body)[0] == 403
        assert get(f"{base}/api/zones", {"Content-Type": "application/json"}, b"[" * 40000)[0] == 400
        assert get(f"{base}/api/zones", {"Content-Type": "application/json"}, b"x" * 200_000)[0] == 413
        assert proc.poll() is None
    port = free_port()
    with setup_page(cfg, listen=f"0.0.0.0:{port}") as (proc, base):
        assert wait_for(lambda: "token=" in log_of(cfg), 60), log_of(cfg)
        token = log_of(cfg).split("token=", 1)[1].split()[0]
        assert get(f"{base}/api/state")[0] == 403
        assert get(f"{base}/api/state?token=wrong")[0] == 403
        assert wait_for(lambda: state(base, token) is not None, 30)
        assert get(f"{base}/frame.jpg", {"X-Kiosk-Token": token})[0] in (200, 503)


def test_it_stops_by_itself_when_idle_and_says_when_the_camera_cannot_be_opened(tmp_path):
    cfg = write_config(tmp_path / "kiosk.yaml", str(tmp_path / "no-such-camera.mp4"))
    with setup_page(cfg, idle_minutes=0.15) as (proc, base):
        assert wait_for(lambda: (state(base) or {}).get("camera", {}).get("state") == "offline", 60), log_of(cfg)
        camera = state(base)["camera"]
        assert "sudo systemctl stop kiosk" in camera["hint"] and camera["error"]
        # no request from now on: it stops itself (9 s idle), exit 0
        assert proc.wait(90) == 0
    assert "no request for" in log_of(cfg)


# --- in a real browser -----------------------------------------------------------------------------


@pytest.fixture
def browser():
    chromium = shutil.which("chromium")
    driver_exe = shutil.which("chromedriver")
    if chromium is None or driver_exe is None:
        pytest.skip("chromium and chromedriver are not installed (scripts/test installs chromium, chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_exe), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_shows_the_live_view_and_a_polygon_drawn_by_clicks_is_saved(tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    clip = data_path("videos", CLIP)
    cfg = write_config(tmp_path / "kiosk.yaml", str(clip), "zones:\n  - id: whole\n    rect: [0, 0, 1, 1]\n")
    with setup_page(cfg) as (proc, base):
        assert wait_for(lambda: (state(base) or {}).get("frame") is not None, 60), log_of(cfg)
        browser.get(base + "/")
        seq = browser.find_element(By.ID, "frame-seq")
        assert wait_for(lambda: seq.text.isdigit(), 30), log_of(cfg)
        # the live view updates: at least 2 frames a second, each a new image
        first, t0 = int(seq.text), time.monotonic()
        srcs = set()
        while time.monotonic() - t0 < 4.0:
            srcs.add(browser.find_element(By.ID, "view").get_attribute("src"))
            time.sleep(0.1)
        rate = (int(seq.text) - first) / (time.monotonic() - t0)
        assert rate >= 2.0 and len(srcs) >= 6, (rate, len(srcs))
        assert browser.execute_script("return document.getElementById('view').naturalWidth") == 480
        assert browser.find_element(By.ID, "faces").text  # faces listed with their size and fate

        canvas = browser.find_element(By.ID, "overlay")
        w, h = canvas.size["width"], canvas.size["height"]
        browser.find_element(By.ID, "new-shelf").click()
        zone_id = browser.find_element(By.ID, "zone-id")
        zone_id.clear()
        zone_id.send_keys("drawn")
        browser.find_element(By.ID, "zone-label").send_keys("SKU-42 tea")
        clicks = [(0.1, 0.1), (0.45, 0.12), (0.4, 0.8), (0.12, 0.7)]
        for fx, fy in clicks:  # offsets from the canvas's centre
            ActionChains(browser).move_to_element_with_offset(
                canvas, int((fx - 0.5) * w), int((fy - 0.5) * h)
            ).click().perform()
        # drag the third point to another place
        ActionChains(browser).move_to_element_with_offset(
            canvas, int((0.4 - 0.5) * w), int((0.8 - 0.5) * h)
        ).click_and_hold().move_by_offset(int(0.1 * w), int(0.05 * h)).release().perform()
        browser.find_element(By.ID, "save").click()
        message = browser.find_element(By.ID, "message")
        assert wait_for(lambda: message.text.startswith("saved"), 20), (
            message.text,
            browser.find_element(By.ID, "errors").text,
        )
        saved = load_config(cfg)
        assert [z.id for z in saved.zones] == ["whole", "drawn"]
        drawn = saved.zones[1]
        assert drawn.label == "SKU-42 tea" and len(drawn.polygon) == 4
        expect = [clicks[0], clicks[1], (0.5, 0.85), clicks[3]]
        for (x, y), (ex, ey) in zip(drawn.polygon, expect):
            assert abs(x - ex) < 0.02 and abs(y - ey) < 0.02, (drawn.polygon, expect)
        assert saved.zones[0].rect == [0, 0, 1, 1]  # the zone not touched keeps its rect
        assert "this comment must survive" in cfg.read_text()
        r = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", "check-config", str(cfg)], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        # the faces are judged by the saved zones from then on; an invalid zone is refused with its path
        browser.find_element(By.ID, "new-exclusion").click()
        for fx, fy in ((0.7, 0.2), (0.9, 0.2)):
            ActionChains(browser).move_to_element_with_offset(
                canvas, int((fx - 0.5) * w), int((fy - 0.5) * h)
            ).click().perform()
        browser.find_element(By.ID, "save").click()
        errors = browser.find_element(By.ID, "errors")
        assert wait_for(lambda: "exclusion_zones[0].polygon: needs at least 3 points" in errors.text, 20), errors.text
        assert [z.id for z in load_config(cfg).zones] == ["whole", "drawn"] and not load_config(cfg).exclusion_zones
        shot = Path(__file__).resolve().parents[1] / ".cache" / "test-artifacts"
        shot.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot / "setup-page.png"))
