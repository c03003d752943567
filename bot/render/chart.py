"""Pictures of a soak: a PNG chart for the completion announcement and a text sparkline."""

from __future__ import annotations

import io
import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SPARK_BARS = "▁▂▃▄▅▆▇█"
SPARK_GAP = "·"
_ERRORS_COLOUR = "#c0392b"
_LATENCY_COLOUR = "#2c6fbb"
_BREACH_COLOUR = "#e74c3c"
_REFERENCE_COLOUR = "#555555"


@dataclass(frozen=True)
class SoakSample:
    """One tick of a soak: 5xx share (0..1) and p95 (seconds); None where nothing was measured.

    `errors_breach`/`latency_breach` mark ticks judged FAIL; None for latency means "p95 above
    the SLO".
    """

    at: datetime
    error_ratio: float | None = None
    p95_seconds: float | None = None
    errors_breach: bool = False
    latency_breach: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SoakSample:
        """A sample from a stored row (`at` as ISO text or datetime)."""
        at = data["at"]
        latency_breach = data.get("latency_breach")
        return cls(
            at=at if isinstance(at, datetime) else datetime.fromisoformat(str(at)),
            error_ratio=_optional_float(data.get("error_ratio")),
            p95_seconds=_optional_float(data.get("p95_seconds")),
            errors_breach=bool(data.get("errors_breach")),
            latency_breach=None if latency_breach is None else bool(latency_breach),
        )


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def sparkline(
    values: Iterable[float | None], *, low: float | None = None, high: float | None = None
) -> str:
    """Values as ▁▂▃▄▅▆▇█ scaled between `low` and `high` (default their range); None is `·`."""
    items = [v if v is not None and math.isfinite(v) else None for v in values]
    present = [v for v in items if v is not None]
    if not present:
        return SPARK_GAP * len(items)
    bottom = min(present) if low is None else low
    top = max(present) if high is None else high
    span = top - bottom
    out = []
    for value in items:
        if value is None:
            out.append(SPARK_GAP)
        elif span <= 0:
            out.append(SPARK_BARS[0] if value <= 0 else SPARK_BARS[3])
        else:
            share = min(max((value - bottom) / span, 0.0), 1.0)
            out.append(SPARK_BARS[min(int(share * len(SPARK_BARS)), len(SPARK_BARS) - 1)])
    return "".join(out)


def _with_gaps(
    samples: Sequence[SoakSample],
) -> tuple[list[datetime], list[float], list[float]]:
    """Times, 5xx % and p95 ms, with NaN inserted where ticks are missing (lines break there)."""
    times: list[datetime] = []
    ratios: list[float] = []
    p95s: list[float] = []
    steps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(samples)]
    positive = [s for s in steps if s > 0]
    usual = statistics.median(positive) if positive else 0.0
    for index, sample in enumerate(samples):
        if index and usual and steps[index - 1] > 1.5 * usual:
            times.append(samples[index - 1].at + timedelta(seconds=usual))
            ratios.append(math.nan)
            p95s.append(math.nan)
        times.append(sample.at)
        ratios.append(math.nan if sample.error_ratio is None else sample.error_ratio * 100.0)
        p95s.append(math.nan if sample.p95_seconds is None else sample.p95_seconds * 1000.0)
    return times, ratios, p95s


def _breach_spans(
    samples: Sequence[SoakSample], flags: Sequence[bool]
) -> list[tuple[datetime, datetime]]:
    """Contiguous runs of flagged ticks as (start, end); a run ends where the next tick starts."""
    spans: list[tuple[datetime, datetime]] = []
    start: datetime | None = None
    fallback = timedelta(seconds=1)
    if len(samples) > 1:
        fallback = (samples[-1].at - samples[0].at) / (len(samples) - 1)
    for index, (sample, flagged) in enumerate(zip(samples, flags, strict=True)):
        if flagged and start is None:
            start = sample.at
        if start is not None and (not flagged or index == len(samples) - 1):
            end = sample.at if not flagged else sample.at + fallback
            spans.append((start, end))
            start = None
    return spans


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def render_soak_chart(
    samples: Sequence[SoakSample],
    *,
    baseline_ratio: float | None,
    slo_seconds: float | None,
    title: str,
) -> bytes:
    """A PNG: 5xx % and p95 ms over time (shared time axis), baseline/SLO dashed, breaches red."""
    # matplotlib is imported here, not at module level: it costs a third of a second at start-up
    # and only the completion announcement needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    ordered = sorted(samples, key=lambda s: s.at)
    figure = Figure(figsize=(9.0, 5.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    errors_axis, latency_axis = figure.subplots(2, 1, sharex=True)
    figure.suptitle(title, fontsize=13, fontweight="bold")
    times, ratios, p95s = _with_gaps(ordered)
    latency_flags = [
        s.latency_breach
        if s.latency_breach is not None
        else (s.p95_seconds is not None and slo_seconds is not None and s.p95_seconds > slo_seconds)
        for s in ordered
    ]
    panels = (
        (errors_axis, ratios, "5xx ratio (%)", _ERRORS_COLOUR, [s.errors_breach for s in ordered]),
        (latency_axis, p95s, "p95 latency (ms)", _LATENCY_COLOUR, latency_flags),
    )
    references = (
        (None if baseline_ratio is None else baseline_ratio * 100.0, "baseline"),
        (None if slo_seconds is None else slo_seconds * 1000.0, "SLO"),
    )
    for (axis, values, label, colour, flags), (reference, ref_name) in zip(
        panels, references, strict=True
    ):
        axis.set_ylabel(label)
        axis.grid(True, color="#dddddd", linewidth=0.8)
        axis.set_axisbelow(True)
        for side in ("top", "right"):
            axis.spines[side].set_visible(False)
        finite = _finite(values)
        if times:
            axis.plot(
                times,
                values,
                color=colour,
                linewidth=1.8,
                marker="o",
                markersize=3.0,
                label=label.split(" (")[0],
            )
        breach_label = "breach"
        for start, end in _breach_spans(ordered, flags):
            axis.axvspan(
                start,
                end,
                color=_BREACH_COLOUR,
                alpha=0.15,
                linewidth=0,
                label=breach_label,
            )
            breach_label = "_nolegend_"
        if reference is not None:
            text = f"{reference:.2f}%" if ref_name == "baseline" else f"{reference:.0f} ms"
            axis.axhline(
                reference,
                color=_REFERENCE_COLOUR,
                linestyle="--",
                linewidth=1.2,
                label=f"{ref_name} {text}",
            )
        top = max([*finite, reference or 0.0, 0.0])
        axis.set_ylim(0.0, top * 1.15 if top > 0 else 1.0)
        missing = [t for t, v in zip(times, values, strict=True) if not math.isfinite(v)]
        missing = [t for t in missing if t in {s.at for s in ordered}]
        if missing:
            axis.plot(
                missing,
                [0.0] * len(missing),
                linestyle="none",
                marker="x",
                color="#888888",
                markersize=5,
                label="no data",
                clip_on=False,
            )
        if not finite:
            axis.text(
                0.5,
                0.5,
                "no data",
                transform=axis.transAxes,
                ha="center",
                va="center",
                fontsize=12,
                color="#888888",
            )
        if axis.get_legend_handles_labels()[0]:
            axis.legend(
                loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, ncols=4
            )
    if times:
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        latency_axis.xaxis.set_major_locator(locator)
        formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        latency_axis.xaxis.set_major_formatter(formatter)
        if len(times) == 1:
            minute = timedelta(minutes=1)
            latency_axis.set_xlim(times[0] - minute, times[0] + minute)
    else:
        latency_axis.set_xticks([])
    latency_axis.set_xlabel("time (UTC)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
