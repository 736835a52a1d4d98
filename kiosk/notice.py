"""The notice a store puts up where a kiosk camera looks (``kiosk notice``), generated from its config.

Two layers, as the EDPB's guidelines on video devices (3/2019, section 7) lay them out: a sign (an A4
page to print and put up at the first exposure, before people reach the camera's view) with the
essentials, and a second page with everything GDPR Art. 13 asks for. The EU AI Act (Art. 50(3),
from 2 August 2026) asks deployers of emotion recognition and of biometric categorisation (age,
gender) to inform the people exposed to it; the sign says which of them this device runs, taken
from ``vision:``, so it cannot drift from what the device does.

Every statement about the processing comes from the config (what is inferred, the period, k, the
retention, the exclusion zones, whether summaries are sent); who is responsible comes from its
``notice:`` section. Every value is HTML-escaped. No script, no external resource: the file prints
the same anywhere. This is a template, not legal advice: the controller checks it against national
law (some countries ask for the sign in their language, or for a registration).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from kiosk.config import KioskConfig

LAYERS = ("both", "sign", "details")


@dataclass(frozen=True)
class NoticeFacts:
    """What the notice states, read from a config."""

    emotion: bool
    age: bool
    gender: bool
    period_min: float
    k: int
    retention_days: float
    keep_sent_days: float
    exclusions: tuple[str, ...]
    sends: bool
    store_id: str
    wait_s: float  # the longest a visit is held in memory after its face is last seen

    @property
    def inferred(self) -> list[str]:
        return [
            name
            for on, name in (
                (self.emotion, "facial expression (emotion)"),
                (self.age, "age band"),
                (self.gender, "gender"),
            )
            if on
        ]


def notice_facts(cfg: KioskConfig) -> NoticeFacts:
    v = cfg.vision
    return NoticeFacts(
        emotion=v.emotion,
        age=v.age,
        gender=v.gender,
        period_min=cfg.store.period_s / 60,
        k=cfg.store.k_anonymity,
        retention_days=cfg.store.retention_days,
        keep_sent_days=cfg.mqtt.keep_sent_days,
        exclusions=tuple(z.label or f"area {i + 1}" for i, z in enumerate(cfg.exclusion_zones)),
        sends=cfg.mqtt.enabled,
        store_id=cfg.mqtt.store_id,
        wait_s=cfg.tracking.visit_latency_s,
    )


def notice_problems(cfg: KioskConfig) -> list[str]:
    """What the config lacks for a notice (by YAML path)."""
    n = cfg.notice
    problems = []
    if not n.controller:
        problems.append("notice.controller: not set; give the legal name of who is responsible for the camera")
    if not n.contact:
        problems.append(
            "notice.contact: not set; give an e-mail address or a phone number where people can ask about the camera"
        )
    return problems


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _number(x: float) -> str:
    return f"{x:g}"


CSS = """
@page { size: A4; margin: 0; }
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #111; background: #fff; }
.page { width: 210mm; min-height: 297mm; padding: 14mm 16mm; page-break-after: always; break-after: page; }
.page:last-child { page-break-after: auto; break-after: auto; }
.sign { height: 297mm; overflow: hidden; display: flex; flex-direction: column; }
.sign header { display: flex; align-items: center; gap: 8mm; border-bottom: 2.5mm solid #f2c200; padding-bottom: 6mm; }
.sign h1 { font-size: 30pt; line-height: 1.1; margin: 0; }
.sign .lead { font-size: 17pt; line-height: 1.35; margin: 8mm 0 4mm; }
.sign ul { font-size: 14.5pt; line-height: 1.4; padding-left: 7mm; margin: 2mm 0; }
.sign li { margin-bottom: 2.5mm; }
.sign .who { margin-top: auto; font-size: 13pt; line-height: 1.45; border-top: 0.6mm solid #111; padding-top: 5mm; }
.sign .more { font-size: 15pt; font-weight: bold; margin-top: 3mm; word-break: break-all; }
.details { font-size: 10pt; line-height: 1.42; }
.details h1 { font-size: 18pt; margin: 0 0 4mm; }
.details h2 { font-size: 12pt; margin: 5mm 0 1.5mm; }
.details p, .details ul { margin: 1mm 0; }
.legal { font-size: 9pt; color: #444; margin-top: 6mm; }
@media screen { body { background: #ddd; } .page { background: #fff; margin: 6mm auto; box-shadow: 0 0 3mm #888; } }
"""

CAMERA_ICON = (
    '<svg width="34mm" height="26mm" viewBox="0 0 68 52" role="img" aria-label="camera">'
    '<rect x="2" y="10" width="46" height="32" rx="5" fill="#111"/>'
    '<polygon points="48,20 66,10 66,42 48,32" fill="#111"/>'
    '<circle cx="25" cy="26" r="10" fill="#f2c200"/><circle cx="25" cy="26" r="5" fill="#111"/></svg>'
)


def _sign(cfg: KioskConfig, f: NoticeFacts) -> str:
    n = cfg.notice
    e = escape
    analysed = f.inferred
    if analysed:
        title = "Camera with automated face analysis"
        lead = (
            f"A camera at {e(n.location)} detects faces and estimates the {e(_join(analysed))} of the people who look "
            f"here, {e(n.purpose)}."
        )
    else:
        title = "Camera counting faces"
        lead = f"A camera at {e(n.location)} detects faces, {e(n.purpose)}."
    items = []
    ai_act = [
        w for on, w in ((f.emotion, "emotion recognition"), (f.age or f.gender, "biometric categorisation")) if on
    ]
    if ai_act:
        items.append(f"This is {_join(ai_act)} (EU AI Act, Art. 50(3)). It runs inside the camera device.")
    items += [
        "<b>No image or video is recorded or sent.</b> Nothing that identifies you is kept: you are not "
        "recognised, now or on a later visit.",
        f"Only counts of at least {f.k} people per {_number(f.period_min)} minutes leave the device.",
        "It never guesses ethnicity and never compares faces with any list.",
    ]
    if f.exclusions:
        items.append(f"Staff areas ({e(_join(list(f.exclusions)))}) are not analysed.")
    who = [f"<b>Responsible:</b> {e(n.controller or '')}"]
    if n.address:
        who.append(e(n.address))
    who.append(f"<b>Questions:</b> {e(n.contact or '')}")
    if n.dpo_contact:
        who.append(f"<b>Data protection officer:</b> {e(n.dpo_contact)}")
    more = (
        f'<div class="more">Full information: {e(n.details_url)}</div>'
        if n.details_url
        else '<div class="more">Full information: ask staff for the notice on the camera</div>'
    )
    return (
        '<section class="page sign" id="sign">'
        f"<header>{CAMERA_ICON}<h1>{title}</h1></header>"
        f'<p class="lead">{lead}</p>'
        f"<ul>{''.join(f'<li>{i}</li>' for i in items)}</ul>"
        f'<div class="who">{"<br>".join(who)}{more}</div>'
        "</section>"
    )


def _details(cfg: KioskConfig, f: NoticeFacts) -> str:
    n = cfg.notice
    e = escape
    inferred = f.inferred
    measured = "how long the person stays and how long they look towards the camera"
    what = (
        f"For each face it follows, the device estimates the {e(_join(inferred))}, and measures {measured}."
        if inferred
        else f"For each face it follows, the device measures {measured}."
    )
    if f.emotion:
        what += (
            " The expression is one of angry, disgust, fear, happy, sad, surprise and neutral: what the face shows, "
            "not what the person feels."
        )
    sections = [
        (
            "Who is responsible",
            [f"{e(n.controller or '')}" + (f", {e(n.address)}" if n.address else "")]
            + [f"Contact: {e(n.contact or '')}"]
            + ([f"Data protection officer: {e(n.dpo_contact)}"] if n.dpo_contact else []),
        ),
        ("Why, and on what basis", [f"Purpose: {e(n.purpose)}.", f"Legal basis: {e(n.legal_basis)}."]),
        (
            "What the camera device does",
            [
                "A camera at "
                + e(n.location)
                + " sends its frames to a small computer beside it. Software there finds "
                "faces in each frame and follows each face for as long as it stays (a short-lived track, kept only in "
                "memory).",
                what,
                "When the person leaves, the track becomes a visit, and the visit is added to counts per area and per "
                f"{_number(f.period_min)} minutes (for example: 7 visits, 4 of them looking for more than 2 seconds). "
                "The visit itself is then dropped.",
                "It never identifies or recognises anyone, compares faces with any list, or guesses ethnicity. "
                "Nothing that could tell one person from another survives the visit.",
            ]
            + (
                [f"Faces in staff areas ({e(_join(list(f.exclusions)))}) are dropped before any analysis."]
                if f.exclusions
                else []
            ),
        ),
        (
            "What is kept, and for how long",
            [
                "Images: none. Each frame is analysed in memory in a fraction of a second and overwritten by the next; "
                "no image, video, face crop or face template is stored or sent.",
                f"A visit in progress: in memory only, until the person has left (at most {_number(f.wait_s)} seconds "
                "after their face was last seen).",
                f"Counts: on the device for {_number(f.retention_days)} days. A count of 1 to {f.k - 1} people is never "
                f"published, directly or by subtraction from other counts (k-anonymity, k = {f.k}).",
            ]
            + (
                [
                    f"The counts are sent to the responsible party's central server (store id {e(f.store_id)}); the "
                    f"device keeps a copy of what it sent for {_number(f.keep_sent_days)} days."
                ]
                if f.sends
                else ["The counts stay on the device."]
            ),
        ),
        (
            "Your rights",
            [
                "You may ask the contact above about this processing and object to it (GDPR Art. 21). Because nothing "
                "that identifies you is kept, no stored data can be linked to you, so there is nothing to access, "
                "correct or erase about you once you have left (GDPR Art. 11).",
                "No decision about you is made by this system (GDPR Art. 22).",
                "You may complain to a data protection authority"
                + (f": {e(n.supervisory_authority)}." if n.supervisory_authority else "."),
            ],
        ),
    ]
    body = "".join(f"<h2>{title}</h2>" + "".join(f"<p>{p}</p>" for p in paragraphs) for title, paragraphs in sections)
    return (
        '<section class="page details" id="details">'
        f"<h1>Camera with automated face analysis: full information</h1>{body}"
        '<p class="legal">Generated by kiosk notice from the device\'s configuration (GDPR Art. 13; EU AI Act '
        "Art. 50(3); EDPB guidelines 3/2019 on video devices).</p>"
        "</section>"
    )


def render_notice(cfg: KioskConfig, layer: str = "both") -> str:
    """The notice as one HTML file: the sign (page 1), the full notice (page 2), or one of them."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    facts = notice_facts(cfg)
    pages = []
    if layer in ("both", "sign"):
        pages.append(_sign(cfg, facts))
    if layer in ("both", "details"):
        pages.append(_details(cfg, facts))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>Camera notice: {escape(cfg.notice.controller or '')}</title><style>{CSS}</style></head>"
        f"<body>{''.join(pages)}</body></html>\n"
    )
