"""A run's recovery state and lake files belong to that run and its sources alone."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.ticks import lake
from pipelines.ticks import run as run_module
from pipelines.ticks.run import RunSpec, run
from tests.pipelines.test_flow import HISTDATA, TRUEFX


def _crash(monkeypatch: pytest.MonkeyPatch, spec: RunSpec) -> None:
    """``spec`` run until it has set up its state, then killed (nothing snapshotted)."""

    def die(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "_execute", die)
        with pytest.raises(KeyboardInterrupt):
            run(spec)


def test_run_when_killed_then_the_same_command_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RunSpec(home=str(tmp_path), source=str(TRUEFX), fmt="truefx", batch_rows=100)
    _crash(monkeypatch, spec)
    assert run(spec).resumed


def test_run_when_other_settings_ran_since_a_kill_then_the_stale_state_is_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: killed with one batch size, then a full run with another
    first = RunSpec(home=str(tmp_path), source=str(HISTDATA), fmt="histdata", batch_rows=700)
    other = RunSpec(home=str(tmp_path), source=str(HISTDATA), fmt="histdata", batch_rows=3_000)
    _crash(monkeypatch, first)
    run(other)
    # Act: the first command again
    report = run(first)
    # Assert: a fresh run, and the lake holds each record once
    assert not report.resumed
    accepted = lake.read(first.lake_root)
    assert report.accepted == accepted.height == 9_500
    assert not accepted["source_seq"].is_duplicated().any()


def test_run_when_a_run_finished_then_the_next_one_starts_afresh(tmp_path: Path) -> None:
    spec = RunSpec(home=str(tmp_path), source=str(TRUEFX), fmt="truefx", batch_rows=100)
    run(spec)
    again = run(spec)
    assert not again.resumed
    assert again.accepted == lake.read(spec.lake_root).height == 999


def test_run_when_two_files_share_a_name_then_both_keep_their_lake_files(
    tmp_path: Path,
) -> None:
    # Arrange: two vendors' files named alike, of other content
    a, b = tmp_path / "a" / "eurusd.csv", tmp_path / "b" / "eurusd.csv"
    for path, lines in ((a, slice(0, 400)), (b, slice(400, 1_000))):
        path.parent.mkdir()
        path.write_text("".join(HISTDATA.read_text().splitlines(keepends=True)[lines]))
    home = str(tmp_path / "home")
    # Act
    run(RunSpec(home=home, source=str(a), fmt="histdata"))
    run(RunSpec(home=home, source=str(b), fmt="histdata"))
    # Assert
    accepted = lake.read(Path(home) / "lake")
    counts = dict(accepted.group_by("source").len().iter_rows())
    assert sorted(counts.values()) == [400, 600]
    assert all(s.startswith("eurusd.csv@") for s in counts)
    assert accepted.select("source", "source_seq").is_duplicated().sum() == 0
    assert pl.Series(list(counts)).n_unique() == 2


def test_run_when_the_lake_has_files_of_a_source_without_digest_then_they_are_replaced(
    tmp_path: Path,
) -> None:
    # A lake written before sources carried a content digest named files by the bare name.
    spec = RunSpec(home=str(tmp_path), source=str(TRUEFX), fmt="truefx")
    legacy = (spec.lake_root / "ticks" / "date=2013-01-01" / "instrument=USDJPY"
              / f"{TRUEFX.name}-000000000000-000000000009.parquet")  # fmt: skip
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"old")
    run(spec)
    assert not legacy.exists()
    assert lake.read(spec.lake_root).height == 999
