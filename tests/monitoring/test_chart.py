"""The soak chart (a PNG) and the release card's sparkline."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta

import numpy as np
from matplotlib.image import imread

from bot.render.chart import SPARK_GAP, SoakSample, render_soak_chart, sparkline

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def soak(n: int = 30, *, breach: range = range(0), gaps: tuple[int, ...] = ()) -> list[SoakSample]:
    """n ticks 30 s apart at 1% / 120 ms, 5% during `breach`, no data at `gaps`."""
    samples = []
    for i in range(n):
        bad = i in breach
        if i in gaps:
            samples.append(SoakSample(T0 + timedelta(seconds=30 * i)))
            continue
        samples.append(
            SoakSample(
                T0 + timedelta(seconds=30 * i), 0.05 if bad else 0.01, 0.12, errors_breach=bad
            )
        )
    return samples


def size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk."""
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def shaded_pixels(png: bytes) -> int:
    """How many pixels have the pale red of a breach band (15% #e74c3c over white)."""
    image = imread(io.BytesIO(png))[:, :, :3] * 255
    red = np.array([0xE7, 0x4C, 0x3C], dtype=float)
    target = 255.0 - 0.15 * (255.0 - red)
    return int((np.abs(image - target).max(axis=2) <= 3).sum())


def test_a_soak_renders_as_a_png() -> None:
    """Thirty ticks render as a 900×560 PNG."""
    png = render_soak_chart(soak(), baseline_ratio=0.01, slo_seconds=0.4, title="v2.4.0 soak")
    assert size(png) == (900, 560)


def test_breaches_are_shaded() -> None:
    """Breach ticks put a pale red band on the chart; a clean soak has none."""
    kwargs = {"baseline_ratio": 0.01, "slo_seconds": 0.4, "title": "v2.4.0"}
    assert shaded_pixels(render_soak_chart(soak(), **kwargs)) == 0
    assert shaded_pixels(render_soak_chart(soak(breach=range(10, 16)), **kwargs)) > 2000


def test_latency_above_the_slo_is_shaded_without_a_flag() -> None:
    """With latency_breach unset, p95 above the SLO is shaded as a breach."""
    samples = [
        SoakSample(s.at, s.error_ratio, 0.8 if 5 <= i < 9 else s.p95_seconds)
        for i, s in enumerate(soak())
    ]
    png = render_soak_chart(samples, baseline_ratio=0.01, slo_seconds=0.4, title="p95")
    assert shaded_pixels(png) > 1000


def test_empty_missing_and_single_samples_do_not_crash() -> None:
    """No samples, all-missing samples, gaps, one sample, no baseline/SLO: each still renders."""
    cases = [
        [],
        [SoakSample(T0), SoakSample(T0 + timedelta(seconds=30))],
        soak(gaps=(3, 4, 5, 20)),
        soak()[:3] + soak()[10:],  # a hole in time, not just in values
        soak(1),
    ]
    for samples in cases:
        png = render_soak_chart(samples, baseline_ratio=None, slo_seconds=None, title="t")
        assert size(png) == (900, 560)


def test_stored_rows_become_samples() -> None:
    """SoakSample.from_dict reads ISO times and treats null/NaN as missing."""
    sample = SoakSample.from_dict(
        {"at": "2026-11-20T14:00:00+00:00", "error_ratio": None, "p95_seconds": float("nan")}
    )
    assert sample == SoakSample(T0, None, None)


def test_sparkline_scales_values_and_marks_gaps() -> None:
    """Lowest value ▁, highest █, None and NaN as the gap character, fixed bounds honoured."""
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, None, 3.0, float("nan")]) == f"▁{SPARK_GAP}█{SPARK_GAP}"
    assert sparkline([0.5, 0.5], low=0, high=1) == "▅▅"
    assert sparkline([0.0, 0.0]) == "▁▁" and sparkline([2.0, 2.0]) == "▄▄"
    assert sparkline([]) == "" and sparkline([None, None]) == SPARK_GAP * 2
    assert sparkline([5.0, 50.0], low=0, high=10) == "▅█"
