"""`kiosk notice`: the sign and the full notice follow the config, escape what it holds, refuse a
config without a controller, and print on A4 in headless Chromium (the sign on one page)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import parse_config
from kiosk.notice import render_notice
from tests.chromium import open_headless

PROJECT = Path(__file__).resolve().parents[1]
WHO = {
    "controller": "Épicerie Dupont SAS",
    "address": "12 rue des Lilas, 75011 Paris",
    "contact": "privacy@dupont.example",
    "details_url": "https://dupont.example/camera",
    "supervisory_authority": "CNIL (www.cnil.fr)",
}


def config(**sections):
    return parse_config({"notice": WHO, **sections})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_notice_says_what_the_config_makes_the_device_do():
    full = text_of(
        render_notice(
            config(
                exclusion_zones=[{"label": "cashier", "rect": [0.8, 0, 1, 1]}],
                store={"k_anonymity": 7, "period_s": 900, "retention_days": 30},
            )
        )
    )
    for said in (
        "facial expression (emotion), age band and gender",
        "emotion recognition and biometric categorisation (EU AI Act, Art. 50(3))",
        "No image or video is recorded or sent",
        "Only counts of at least 7 people per 15 minutes leave the device",
        "Staff areas (cashier) are not analysed",
        "Faces in staff areas (cashier) are dropped before any analysis",
        "on the device for 30 days",
        "A count of 1 to 6 people is never published",
        "Épicerie Dupont SAS, 12 rue des Lilas, 75011 Paris",
        "Full information: https://dupont.example/camera",
        "sent to the responsible party's central server",
        "CNIL (www.cnil.fr)",
        "GDPR Art. 6(1)(f)",
    ):
        assert said in full, said

    no_emotion = text_of(render_notice(config(vision={"emotion": False})))
    assert "facial expression" not in no_emotion and "emotion recognition" not in no_emotion
    assert "biometric categorisation" in no_emotion and "age band and gender" in no_emotion

    counting_only = text_of(
        render_notice(config(vision={"emotion": False, "age": False, "gender": False}, mqtt={"enabled": False}))
    )
    assert "Camera counting faces" in counting_only
    assert "AI Act, Art. 50(3)" not in counting_only and "gender" not in counting_only
    assert "The counts stay on the device" in counting_only and "central server" not in counting_only
    assert "Staff areas" not in counting_only  # no exclusion zone configured: none claimed


def tags_of(html: str) -> list[tuple[str, list]]:
    from html.parser import HTMLParser

    found = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Tags().feed(html)
    return found


def test_what_the_config_holds_is_escaped_and_the_page_loads_nothing():
    hostile = "<script>alert(1)</script><img src=https://tracker.example/x>"
    html = render_notice(
        parse_config(
            {
                "notice": {**WHO, "controller": hostile, "location": "<b>x</b>"},
                "exclusion_zones": [{"label": "<iframe>", "rect": [0, 0, 0.1, 0.1]}],
            }
        )
    )
    assert "<script" not in html and "<img" not in html and "<iframe" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    tags = tags_of(html)  # as a browser parses it: only the notice's own markup, nothing that loads
    assert {t for t, _ in tags} <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "section",
        "header",
        "svg",
        "rect",
        "polygon",
        "circle",
        "h1",
        "h2",
        "p",
        "ul",
        "li",
        "b",
        "br",
        "div",
    }, tags
    assert not [a for _, attrs in tags for a, _ in attrs if a in ("src", "href") or a.startswith("on")]
    with pytest.raises(ValueError, match="layer"):
        render_notice(config(), "poster")


def kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, timeout=60)


def test_the_command_refuses_a_config_without_a_controller_and_writes_the_file(tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("store:\n  path: /tmp/x.db\n")
    r = kiosk("notice", "--config", str(bare), "--out", str(tmp_path / "n.html"))
    assert r.returncode == 78
    assert "notice.controller: not set" in r.stderr and "notice.contact: not set" in r.stderr
    assert not (tmp_path / "n.html").exists()
    cfg = tmp_path / "kiosk.yaml"
    cfg.write_text("notice:\n" + "".join(f"  {k}: {v}\n" for k, v in WHO.items()))
    r = kiosk("notice", "--config", str(cfg), "--out", str(tmp_path / "n.html"))
    assert r.returncode == 0, r.stderr
    assert "Épicerie Dupont SAS" in (tmp_path / "n.html").read_text(encoding="utf-8")
    r = kiosk("notice", "--config", str(cfg), "--out", str(tmp_path / "missing-dir" / "n.html"))
    assert r.returncode == 1 and "cannot write" in r.stderr and "--out" in r.stderr


def pdf_pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def test_it_prints_on_a4_the_sign_on_one_page_in_headless_chromium(tmp_path):
    cfg = config(exclusion_zones=[{"label": "cashier", "rect": [0.8, 0, 1, 1]}])
    pages = {}
    for layer in ("sign", "both"):
        page = tmp_path / f"{layer}.html"
        page.write_text(render_notice(cfg, layer), encoding="utf-8")
        pdf = tmp_path / f"{layer}.pdf"
        log = open_headless(page, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
        assert [line for line in log.splitlines() if "CONSOLE" in line] == []
        pages[layer] = pdf_pages(pdf)
    assert pages == {"sign": 1, "both": 2}, pages  # the sign is one A4 page; the full notice one more
    shot = tmp_path / "sign.png"
    open_headless(tmp_path / "sign.html", "--window-size=794,1123", f"--screenshot={shot}")  # A4 at 96 dpi
    assert shot.exists() and shot.stat().st_size > 30_000 and shot.read_bytes()[:4] == b"\x89PNG"
    keep = PROJECT / ".cache" / "test-artifacts"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / "notice-sign.png")  # the screenshot of this run, to look at
