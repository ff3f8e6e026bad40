"""The latency benchmark's attribution of each order's wait to what overlapped it."""

from __future__ import annotations

from benchmarks.latency import _by_bucket, _overlap_ms

MS = 1_000_000  # ns


def test_overlap_when_spans_straddle_windows_then_only_the_inside_part_counts() -> None:
    windows = [(0, 10 * MS), (20 * MS, 30 * MS), (40 * MS, 41 * MS)]
    # 5-12 ms straddles the first window's end; 18-22 its second's start; 25-26 inside;
    # a 100 ms span from -50 ms covers the first window whole.
    spans = [(5 * MS, 12 * MS), (18 * MS, 22 * MS), (25 * MS, 26 * MS), (-50 * MS, 50 * MS)]
    got = _overlap_ms(windows, spans)
    assert got == [5.0 + 10.0, 2.0 + 1.0 + 10.0, 1.0]


def test_overlap_when_no_spans_then_zero() -> None:
    assert _overlap_ms([(0, MS)], []) == [0.0]


def test_by_bucket_when_latencies_ranked_then_each_bucket_holds_its_share() -> None:
    lat = [float(i) for i in range(1, 201)]  # 1..200 ms
    gc = [1.0 if x > 198 else 0.0 for x in lat]  # only the two slowest overlapped a pause
    got = _by_bucket(lat, {"gc_ms": gc})
    assert got["p0-p50"]["orders"] == 100 and got["p0-p50"]["latency"] == 50.5
    assert got["p50-p90"]["orders"] == 80 and got["p90-p99"]["orders"] == 18
    assert got["p99-p100"] == {"orders": 2.0, "latency": 199.5, "gc_ms": 1.0}
    assert got["p90-p99"]["gc_ms"] == 0.0
