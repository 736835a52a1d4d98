"""The report's charts (matplotlib, drawn off-screen into PNG bytes). Suppressed figures are drawn
as hatched grey marks labelled "<k", never as bars of a height."""

from __future__ import annotations

import io

from kiosk.config.vocabulary import EMOTIONS

EMOTION_COLORS = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#2ca02c",
    "sad": "#1f77b4",
    "surprise": "#ff7f0e",
    "neutral": "#7f7f7f",
}
SUPPRESSED = dict(color="#dddddd", hatch="///", edgecolor="#999999")


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("kiosk report draws charts with matplotlib: pip install 'kiosk[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def interest_chart(rows: list[dict]) -> bytes:
    plt = _plt()
    zones = [r["zone"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ax = axes[0]
    bars = ax.bar(zones, [r["visits"] for r in rows], color="#4c72b0")
    for bar, r in zip(bars, rows):
        note = f"{r['visits']}" + (f"\n+{r['visits_suppressed']} periods <k" if r["visits_suppressed"] else "")
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_title("Visits per zone")
    ax = axes[1]
    ax.bar(zones, [100 * (r["attentive_share"] or 0) for r in rows], color="#55a868")
    ax.set_ylim(0, 105)
    ax.set_title("Attentive visits (%)")
    ax = axes[2]
    x = range(len(zones))
    ax.bar([i - 0.2 for i in x], [r["dwell_median_s"] or 0 for r in rows], 0.4, label="dwell")
    ax.bar([i + 0.2 for i in x], [r["attention_median_s"] or 0 for r in rows], 0.4, label="attention")
    ax.set_xticks(list(x), zones)
    ax.set_title("Median dwell and attention (s)")
    ax.legend(fontsize=8)
    for a in axes:
        a.tick_params(axis="x", labelrotation=20, labelsize=8)
    return _png(fig)


def reactions_chart(rows: list[dict]) -> bytes:
    plt = _plt()
    zones = sorted({r["zone"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.6 * len(zones) + 1.8), squeeze=False)
    for ax, kind, title in (
        (axes[0][0], "dominant", "Dominant emotion of visits"),
        (axes[0][1], "first_reaction", "First reaction"),
    ):
        left = [0.0] * len(zones)
        for e in EMOTIONS:
            counts = []
            for z in zones:
                total = sum(r["visits"] for r in rows if r["zone"] == z and r["kind"] == kind)
                n = next(r["visits"] for r in rows if r["zone"] == z and r["kind"] == kind and r["emotion"] == e)
                counts.append(100.0 * n / total if total else 0.0)
            ax.barh(zones, counts, left=left, color=EMOTION_COLORS[e], label=e)
            left = [a + b for a, b in zip(left, counts)]
        ax.set_xlim(0, 100)
        ax.set_title(f"{title} (% of visits)")
    axes[0][1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(fig)


def splits_chart(age_rows: list[dict], gender_rows: list[dict]) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
    for ax, rows, title in ((axes[0], age_rows, "Visits by age band"), (axes[1], gender_rows, "Visits by gender")):
        zones = sorted({r["zone"] for r in rows})
        values = sorted({r["value"] for r in rows})
        width = 0.8 / max(1, len(values))
        for j, v in enumerate(values):
            xs, hs, supp = [], [], []
            for i, z in enumerate(zones):
                r = next((r for r in rows if r["zone"] == z and r["value"] == v), None)
                xs.append(i + j * width - 0.4 + width / 2)
                hs.append(r["visits"] if r else 0)
                supp.append(bool(r and r["suppressed"]))
            ax.bar(xs, hs, width, label=v)
            for x, h, s in zip(xs, hs, supp):
                if s:
                    ax.annotate("+<k", (x, h), ha="center", va="bottom", fontsize=7, color="#666666")
        ax.set_xticks(range(len(zones)), zones)
        ax.set_title(f"{title} (one attribute at a time)")
        ax.legend(fontsize=8)
    return _png(fig)


def timeline_chart(rows: list[dict]) -> bytes:
    plt = _plt()
    zones = sorted({r["zone"] for r in rows})[:8]
    fig, axes = plt.subplots(len(zones), 1, figsize=(13, 2.4 * len(zones) + 0.6), squeeze=False, sharex=True)
    periods = sorted({r["period_start"] for r in rows})
    index = {p: i for i, p in enumerate(periods)}
    for ax, z in zip((a[0] for a in axes), zones):
        zr = [r for r in rows if r["zone"] == z]
        bottom = {r["period_start"]: 0.0 for r in zr}
        top = max([r["visits"] or 0 for r in zr] + [1])
        for e in EMOTIONS:
            xs = [index[r["period_start"]] for r in zr if r[e] is not None]
            hs = [r[e] for r in zr if r[e] is not None]
            bs = [bottom[r["period_start"]] for r in zr if r[e] is not None]
            ax.bar(xs, hs, bottom=bs, color=EMOTION_COLORS[e], label=e, width=0.85)
            for r in zr:
                if r[e] is not None:
                    bottom[r["period_start"]] += r[e]
        for r in zr:  # visits with no emotion (not sampled) on top, in outline
            if r["visits"] is not None and r["visits"] > bottom[r["period_start"]]:
                ax.bar(
                    index[r["period_start"]],
                    r["visits"] - bottom[r["period_start"]],
                    bottom=bottom[r["period_start"]],
                    color="white",
                    edgecolor="#4c72b0",
                    width=0.85,
                )
        supp = [index[r["period_start"]] for r in zr if r["visits"] is None]
        if supp:
            ax.bar(supp, [top * 0.15] * len(supp), width=0.85, **SUPPRESSED, label="suppressed (<k)")
        unwatched = [index[r["period_start"]] for r in zr if r.get("watched_s") == 0]
        for x in unwatched:  # no frame analysed: a gap in what is known, not a period nobody came in
            ax.axvspan(
                x - 0.45,
                x + 0.45,
                color="#fbe3e3",
                zorder=0,
                label="camera off (not watched)" if x == unwatched[0] else None,
            )
        last = None
        for r in zr:  # content/campaign changes
            if r["content"] and r["content"] != last:
                x = index[r["period_start"]] - 0.5
                ax.axvline(x, color="black", linestyle="--", linewidth=0.8)
                ax.text(x + 0.1, top * 1.05, r["content"], fontsize=8, va="bottom")
                last = r["content"]
        ax.set_ylim(0, top * 1.3)
        ax.set_ylabel(z, fontsize=9)
    axes[0][0].set_title("Visits per period by dominant emotion; dashed lines: content/campaign changes")
    axes[0][0].legend(fontsize=7, ncol=8, loc="upper right")
    step = max(1, len(periods) // 12)
    seconds = any(not p.endswith(":00Z") for p in periods)  # periods shorter than a minute (tests, demos)
    label = (lambda p: p[11:19]) if seconds else (lambda p: p[5:16].replace("T", " "))
    axes[-1][0].set_xticks(
        range(0, len(periods), step), [label(periods[i]) for i in range(0, len(periods), step)], rotation=30, fontsize=8
    )
    return _png(fig)


def compare_chart(rows: list[dict]) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    names = [r["name"] for r in rows]
    colors = ["#4c72b0", "#dd8452"]
    for ax, key, title in (
        (axes[0], "visits", "Visits"),
        (axes[1], "attentive_share", "Attentive share"),
        (axes[2], "dwell_median_s", "Median dwell (s)"),
    ):
        ax.bar(names, [r[key] or 0 for r in rows], color=colors[: len(rows)])
        ax.set_title(title)
    ax = axes[3]
    x = range(len(EMOTIONS))
    for j, r in enumerate(rows):
        ax.bar(
            [i + (j - 0.5) * 0.4 for i in x],
            [r[f"share_{e}"] or 0 for e in EMOTIONS],
            0.4,
            label=r["name"],
            color=colors[j],
        )
    ax.set_xticks(list(x), EMOTIONS, rotation=45, fontsize=8)
    ax.set_title("Dominant emotion share")
    ax.legend(fontsize=8)
    return _png(fig)


def queue_chart(rows: list[dict]) -> bytes:
    plt = _plt()
    zones = sorted({r["zone"] for r in rows})
    fig, axes = plt.subplots(len(zones), 1, figsize=(13, 2.6 * len(zones) + 0.4), squeeze=False)
    for ax, z in zip((a[0] for a in axes), zones):
        zr = [r for r in rows if r["zone"] == z]
        xs = range(len(zr))
        nan = float("nan")  # a suppressed period is a gap in the line, never a zero
        ax.plot(
            xs,
            [nan if r["occupancy_mean"] is None else r["occupancy_mean"] for r in zr],
            marker="o",
            label="people waiting (mean)",
        )
        ax.plot(
            xs, [nan if r["occupancy_peak"] is None else r["occupancy_peak"] for r in zr], linestyle=":", label="peak"
        )
        ax.set_ylabel(f"{z}\npeople", fontsize=9)
        twin = ax.twinx()
        twin.plot(
            [i for i, r in zip(xs, zr) if r["waiting_mean_s"] is not None],
            [r["waiting_mean_s"] for r in zr if r["waiting_mean_s"] is not None],
            color="#c44e52",
            marker="s",
            label="waiting time (s)",
        )
        twin.set_ylabel("waiting (s)", fontsize=9)
        step = max(1, len(zr) // 12)
        ax.set_xticks(list(xs)[::step], [r["period_start"][11:16] for r in zr][::step], fontsize=8)
        ax.legend(fontsize=8, loc="upper left")
        twin.legend(fontsize=8, loc="upper right")
    axes[0][0].set_title("Queue zones: occupancy and waiting time over the day")
    return _png(fig)


def audience_chart(audience_rows: list[dict], distribution_rows: list[dict]) -> bytes:
    """Opportunities, visits and viewers per zone; the dwell and attention distributions (share of
    visits per bin, per zone)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    zones = [r["zone"] for r in audience_rows]
    ax = axes[0]
    x = range(len(zones))
    for j, (col, label, color) in enumerate(
        (
            ("opportunities", "opportunities to see", "#8172b2"),
            ("visits", "visits", "#4c72b0"),
            ("viewers", "viewers", "#55a868"),
        )
    ):
        ax.bar([i + (j - 1) * 0.27 for i in x], [r[col] for r in audience_rows], 0.27, label=label, color=color)
    for i, r in enumerate(audience_rows):
        if r["conversion"] is not None:
            ax.annotate(
                f"{100 * r['conversion']:.0f}% stop", (i, r["opportunities"]), ha="center", va="bottom", fontsize=7
            )
    ax.set_xticks(list(x), zones)
    ax.set_title("Audience per zone")
    ax.legend(fontsize=7)
    for ax, measure, title in ((axes[1], "dwell", "Dwell"), (axes[2], "attention", "Attention")):
        rows = [r for r in distribution_rows if r["measure"] == measure]
        dz = sorted({r["zone"] for r in rows})
        # the zones' bins were merged differently: drawn on the edges they all share (never split)
        edges = sorted(set.intersection(*({r["from_s"] for r in rows if r["zone"] == z} for z in dz))) if dz else []
        names = [f"{e}-{b}" for e, b in zip(edges, edges[1:])] + [f"{edges[-1]}+"] if edges else []
        width = 0.8 / max(1, len(dz))
        for j, z in enumerate(dz):
            counts = [0] * len(edges)
            for r in rows:
                if r["zone"] == z:
                    counts[max(i for i, e in enumerate(edges) if e <= r["from_s"])] += r["visits"]
            total = sum(counts) or 1
            ax.bar(
                [i + j * width - 0.4 + width / 2 for i in range(len(edges))],
                [100 * c / total for c in counts],
                width,
                label=z,
            )
        ax.set_xticks(range(len(edges)), names)
        ax.set_xlabel("seconds (bin from)")
        ax.set_title(f"{title} distribution (% of visits)")
        if dz:
            ax.legend(fontsize=7)
    for a in axes:
        a.tick_params(axis="x", labelsize=8)
    return _png(fig)
