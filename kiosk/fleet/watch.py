"""`kiosk watch`: one readable line per message a device publishes (summary, status, stats).

For people, not machines: central servers use the JSON (``--json``) and ``docs/schema``.
A zone's visits or passers-by that are suppressed (1 to k-1 people) are shown as ``<k``; any other
suppressed figure as ``hidden``: it may have been hidden beside a small one (complementary
suppression), so it says nothing about its own size.
"""

from __future__ import annotations

import json


def _n(v) -> str:
    return "<k" if v is None else str(v)


def _hidden(v) -> str:
    return "hidden" if v is None else str(v)


def _top(counts: dict | None, n: int = 2) -> str:
    if not counts:
        return "hidden"
    items = sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: -kv[1])[:n]
    hidden = [k for k, v in counts.items() if v is None]
    if hidden and not items:
        return "hidden"
    text = ", ".join([f"{k} {v}" for k, v in items] + ([f"{len(hidden)} hidden"] if hidden else []))
    return text or "none"


def format_message(topic: str, payload: bytes) -> str:
    kind = topic.rsplit("/", 1)[-1]
    try:
        msg = json.loads(payload)
    except ValueError:
        return f"{topic}: (not JSON, {len(payload)} bytes)"
    device = f"{msg.get('store_id')}/{msg.get('device_id')}"
    if kind == "summary":
        head = (
            f"summary {device} seq {msg['seq']} {msg['period_start']}..{msg['period_end'][11:]} "
            f"(k={msg['k']}, {msg['suppressed_cells']} cells suppressed, clock_synced={msg['clock_synced']})"
        )
        lines = [head]
        for z in msg["zones"]:
            dwell = z.get("dwell_s") or {}
            if z["visits"] == 0:
                lines.append(f"    {z['zone']}: no visits, passers-by {_n(z['passers_by'])}")
                continue
            if z["visits"] is None:
                lines.append(f"    {z['zone']}: visits <k (their figures hidden), passers-by {_n(z['passers_by'])}")
                continue
            mean = dwell.get("mean")
            lines.append(
                f"    {z['zone']}: visits {_n(z['visits'])}, attentive {_hidden(z['attentive'])}, "
                f"passers-by {_n(z['passers_by'])}, mean dwell {'hidden' if mean is None else f'{mean} s'}, "
                f"mood {_top(z.get('dominant_emotion'))}, gender {_top(z.get('gender'))}, "
                f"age {_top(z.get('age_bands'))}"
            )
        if not msg["zones"]:
            lines.append("    nobody seen")
        cov = msg.get("coverage")
        if isinstance(cov, dict) and cov.get("frames") == 0:
            lines.append("    camera off the whole period: nothing was watched (not the same as nobody came)")
        elif isinstance(cov, dict) and cov.get("camera_changes"):
            lines.append(
                f"    camera went offline or came back {cov['camera_changes']} time(s); "
                f"{cov['analysed_s']:.0f} s watched"
            )
        return "\n".join(lines)
    if kind == "status":
        extra = f", error: {msg['error']}" if msg.get("error") else ""
        return f"status  {device} {msg['state']} (version {msg.get('version')}, config {msg.get('config_hash')}){extra}"
    if kind == "stats":
        return (
            f"stats   {device} {msg.get('frames_per_s')} frames/s, {msg.get('faces_per_s')} faces/s, "
            f"{msg.get('inference_ms')} ms/frame, camera {msg.get('camera_state')}, "
            f"outbox {msg['outbox_backlog']}"
        )
    return f"{topic}: {payload[:200]!r}"
