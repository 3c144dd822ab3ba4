"""The report's PNG charts (matplotlib, Agg backend: no display needed).

Each function draws one figure from plain rows and returns how many data points it
drew, so the report can say "no data" instead of showing an empty frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from dashboards.limits import Line  # noqa: E402

# Alert kinds (alert.schema.json) in words a reader outside the operations team follows.
KIND_WORDS = {
    "range.physical": "impossible reading",
    "range.realistic": "implausible reading",
    "flatline": "sensor stuck on one value",
    "spike": "sudden spike",
    "rate": "implausibly fast change",
    "humidity_pm": "dust reading affected by humidity",
    "spatial_outlier": "differs from nearby sensors",
    "offline": "unit silent",
    "battery_low": "battery low",
    "reboot": "unit restarted",
}
SEVERITY_COLOURS = {"info": "#4c78a8", "warning": "#f58518", "critical": "#d62728"}
LINE_COLOURS = {"EU": "#d62728", "WHO": "#ff7f0e"}
DPI = 110
plt.rcParams.update({"font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold"})


def kind_words(kind: str) -> str:
    """'threshold.noise_night' -> 'limit exceeded: noise night'."""
    if kind.startswith("threshold."):
        return "limit exceeded: " + kind.removeprefix("threshold.").replace("_", " ")
    return KIND_WORDS.get(kind, kind.replace("_", " "))


def _lines(ax: plt.Axes, lines: Sequence[Line]) -> None:
    for line in lines:
        colour = LINE_COLOURS.get(line.label.split()[0], "#d62728")
        ax.axhline(line.value, color=colour, linestyle="--", linewidth=1.6, label=line.label)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def _no_data(ax: plt.Axes, text: str) -> None:
    ax.text(
        0.5,
        0.75,
        text,
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="#555",
        bbox={"facecolor": "white", "edgecolor": "#ccc", "boxstyle": "round"},
    )


def daily_bars(
    ax: plt.Axes,
    days: Sequence[str],
    units: Sequence[str],
    values: dict[tuple[str, str], float],
    faded: set[tuple[str, str]],
    lines: Sequence[Line],
    ylabel: str,
    title: str,
    ymin: float = 0.0,
) -> int:
    """Grouped bars: one group per day, one bar per unit, rising from `ymin`; `faded` bars
    are provisional. Returns the number of bars drawn."""
    colours = plt.get_cmap("tab10" if len(units) <= 10 else "tab20")
    width = 0.8 / max(len(units), 1)
    drawn = 0
    for j, unit in enumerate(units):
        xs, ys, alphas = [], [], []
        for i, day in enumerate(days):
            value = values.get((day, unit))
            if value is None:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(value)
            alphas.append(0.35 if (day, unit) in faded else 0.95)
        for x, y, a in zip(xs, ys, alphas):
            ax.bar(
                x,
                y - ymin,
                bottom=ymin,
                width=width,
                color=colours(j),
                alpha=a,
                edgecolor="white",
                linewidth=0.3,
            )
        drawn += len(ys)
    _lines(ax, lines)
    handles = ax.get_legend_handles_labels()[0]
    handles += [Patch(color=colours(j), label=unit) for j, unit in enumerate(units)]
    if faded & values.keys():
        handles.append(Patch(color="grey", alpha=0.35, label="pale: incomplete day"))
    ax.set_xticks(range(len(days)), days, rotation=0 if len(days) <= 7 else 45)
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.grid(axis="y", alpha=0.3)
    if not drawn:
        _no_data(ax, "no complete values in this period")
    top = max([*values.values(), *(line.value for line in lines)], default=ymin + 10)
    ax.set_ylim(ymin, top + (top - ymin) * 0.12)
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False
    )
    return drawn


def two_panel_daily(
    path: Path,
    days: Sequence[str],
    units: Sequence[str],
    panels: Sequence[tuple[dict, set, Sequence[Line], str, str]],
    ymin: float = 0.0,
) -> int:
    """A figure of daily-bar panels stacked vertically: (values, faded, lines, ylabel, title)."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.6 * len(panels)), squeeze=False)
    drawn = sum(
        daily_bars(ax, days, units, values, faded, lines, ylabel, title, ymin)
        for ax, (values, faded, lines, ylabel, title) in zip(axes[:, 0], panels)
    )
    fig.tight_layout()
    _save(fig, path)
    return drawn


def alert_timeline(
    path: Path,
    units: Sequence[str],
    episodes: Sequence[dict],
    start: datetime,
    end: datetime,
    tz: str,
) -> int:
    """One row per unit; a bar per alert episode from its start to its end (or to the end
    of the period while open), coloured by severity and labelled with its kind."""
    zone = ZoneInfo(tz)
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(units) + 1.6))
    row = {unit: i for i, unit in enumerate(units)}
    drawn = 0
    for e in episodes:
        if e["unit"] not in row:
            continue
        t0 = max(e["started"], start)
        t1 = max(min(e["ended"] or end, end), t0 + (end - start) / 300)  # short ones stay visible
        y = row[e["unit"]]
        ax.barh(
            y,
            mdates.date2num(t1) - mdates.date2num(t0),
            left=mdates.date2num(t0),
            height=0.6,
            color=SEVERITY_COLOURS.get(e["severity"], "grey"),
            hatch="//" if e["ended"] is None else None,
            edgecolor="black" if e["ended"] is None else "none",
            linewidth=0.4,
        )
        # The kind beside the bar, on the side with room.
        late = t1 > start + (end - start) * 0.75
        ax.text(
            mdates.date2num(t0 if late else t1),
            y,
            f" {kind_words(e['kind'])} ",
            fontsize=8,
            va="center",
            ha="right" if late else "left",
        )
        drawn += 1
    ax.set_yticks(range(len(units)), units)
    ax.set_ylim(len(units) - 0.4, -0.8)
    ax.set_xlim(mdates.date2num(start), mdates.date2num(end))
    locator = mdates.AutoDateLocator(tz=zone)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Alerts per unit (times in {tz})", loc="left")
    handles = [Patch(color=c, label=s) for s, c in SEVERITY_COLOURS.items()]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="still open"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    if not drawn:
        _no_data(ax, "no alerts in this period")
    fig.tight_layout()
    _save(fig, path)
    return drawn


def coverage_heatmap(
    path: Path,
    units: Sequence[str],
    periods: Sequence[datetime],
    received: dict[tuple[datetime, str], float],
    tz: str,
    daily: bool,
) -> int:
    """Units x periods, the share of expected uplinks received (0-100 %)."""
    grid = np.array([[received.get((p, u), 0.0) for p in periods] for u in units])
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(units) + 1.8))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    zone = ZoneInfo(tz)
    fmt = "%a %d %b" if daily else "%d %b %H:%M"
    step = max(1, len(periods) // 12)
    flat = daily and len(periods) <= 7
    ax.set_xticks(
        range(0, len(periods), step),
        [p.astimezone(zone).strftime(fmt) for p in periods[::step]],
        rotation=0 if flat else 45,
        ha="center" if flat else "right",
    )
    ax.set_yticks(range(len(units)), units)
    if len(periods) <= 14:
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:.0f} %", ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label="% of expected measurements received", fraction=0.03)
    per = "day" if daily else "hour"
    ax.set_title(f"Data coverage per unit and {per}", loc="left")
    fig.tight_layout()
    _save(fig, path)
    return int(np.count_nonzero(grid))


def period_edges(start: datetime, end: datetime, daily: bool, tz: str) -> list[datetime]:
    """Start of every local day (or hour) in [start, end), as aware UTC datetimes."""
    zone = ZoneInfo(tz)
    if not daily:
        t = start.replace(minute=0, second=0, microsecond=0)
        return [t + timedelta(hours=i) for i in range(int((end - t).total_seconds() // 3600))]
    day, last = start.astimezone(zone).date(), (end - timedelta(seconds=1)).astimezone(zone).date()
    out = []
    while day <= last:
        out.append(datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(start.tzinfo))
        day += timedelta(days=1)
    return out
