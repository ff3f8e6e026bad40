"""The lake sink: accepted and rejected ticks as Parquet, partitioned by day and instrument.

Layout under the lake root (``<home>/lake``), described for analysts in ``docs/lake.md``::

    ticks/date=2020-01-01/instrument=EURUSD/<source>-<first seq>-<last seq>.parquet
    ticks_rejected/date=2020-01-01/instrument=EURUSD/<source>-<first seq>-<last seq>.parquet

A file's name is a function of what it holds: the feed and the range of ``source_seq`` of
its rows. The screening is deterministic, so a run resumed after a crash writes the same
rows under the same names as the run that crashed: a file is replaced by its identical
twin, never written twice under two names. Writes go to a hidden temporary file that is
fsynced and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.ticks.schema import LAKE_SCHEMA, REJECTED_SCHEMA, partition_name

ACCEPTED_DIR = "ticks"
REJECTED_DIR = "ticks_rejected"
UNKNOWN = "unknown"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
CODECS = ("zstd", "lz4", "snappy", "uncompressed")


@dataclass(frozen=True, slots=True)
class Compression:
    """How the lake's Parquet files are compressed (``docs/lake.md``: the figures behind the
    default). Every codec here is one that pyarrow, DuckDB, Spark and Polars read."""

    codec: str = "zstd"
    level: int | None = 1  # zstd only: 1 to 22

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown lake compression {self.codec!r}; known: {', '.join(CODECS)}")
        if self.level is not None and (self.codec != "zstd" or not 1 <= self.level <= 22):
            raise ValueError(f"a compression level is for zstd only, 1 to 22: {self}")

    @classmethod
    def parse(cls, text: str) -> Compression:
        """``zstd``, ``zstd:3``, ``lz4``, ``snappy`` or ``uncompressed``."""
        codec, _, level = text.strip().lower().partition(":")
        if not level:
            return cls(codec, 1 if codec == "zstd" else None)
        try:
            return cls(codec, int(level))
        except ValueError as exc:
            if "invalid literal" in str(exc):
                raise ValueError(f"not a compression level: {level!r}") from None
            raise

    def __str__(self) -> str:
        return self.codec if self.level is None else f"{self.codec}:{self.level}"


DEFAULT_COMPRESSION = Compression()


def with_day(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(day=pl.from_epoch("ts_ns", time_unit="ns").dt.date())


def safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or UNKNOWN


def write_partitioned(
    root: Path, frame: pl.DataFrame, *, source: str, compression: Compression = DEFAULT_COMPRESSION
) -> list[Path]:
    """Write ``frame`` (lake or rejected schema, ``day`` set) one file per day and symbol."""
    if frame.is_empty():
        return []
    written = []
    for day, symbol, part in _by_day_and_symbol(frame):
        day_dir = UNKNOWN if day is None else str(day)
        inst_dir = UNKNOWN if symbol is None else partition_name(str(symbol))
        first, last = int(part["source_seq"].min()), int(part["source_seq"].max())  # type: ignore[arg-type]
        name = f"{safe_name(source)}-{first:012d}-{last:012d}.parquet"
        path = root / f"date={day_dir}" / f"instrument={inst_dir}" / name
        _write_atomically(part, path, compression)
        written.append(path)
    return written


def _by_day_and_symbol(frame: pl.DataFrame) -> Iterable[tuple[object, object, pl.DataFrame]]:
    # A replay's batch is nearly always one day of one symbol: then the frame is the part,
    # without the copy a group_by makes.
    day, symbol = frame.get_column("day"), frame.get_column("symbol")
    whole = day.null_count() == 0 and symbol.null_count() == 0
    if whole and day.min() == day.max() and symbol.n_unique() == 1:
        yield day[0], symbol[0], frame
        return
    for (d, s), part in frame.group_by("day", "symbol", maintain_order=True):
        yield d, s, part


def _write_atomically(frame: pl.DataFrame, path: Path, compression: Compression) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(
        tmp,
        compression=compression.codec,  # type: ignore[arg-type]
        compression_level=compression.level,
        statistics=True,
    )
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def remove_source(root: Path, source: str) -> int:
    """Delete every lake file of ``source`` (accepted and rejected); return how many.

    A fresh replay of a source replaces what an earlier replay of it wrote: with other
    batch sizes, its files would cover the same rows under other names. A file's source
    ``name@digest`` also removes the files a replay wrote under the bare ``name``, before
    sources carried a digest of their content.
    """
    names = {safe_name(source), safe_name(source.rsplit("@", 1)[0])}
    alternatives = "|".join(re.escape(n) for n in sorted(names))
    pattern = re.compile(rf"^(?:{alternatives})-\d{{12}}-\d{{12}}\.parquet$")
    removed = 0
    for sub in (ACCEPTED_DIR, REJECTED_DIR):
        for path in (root / sub).glob("date=*/instrument=*/*.parquet"):
            if pattern.match(path.name):
                path.unlink()
                removed += 1
    return removed


class Lake:
    """Writes screened batches under ``root``; one instance per worker."""

    def __init__(self, root: Path, compression: Compression = DEFAULT_COMPRESSION) -> None:
        self.accepted_root = root / ACCEPTED_DIR
        self.rejected_root = root / REJECTED_DIR
        self.compression = compression

    def write(self, accepted: pl.DataFrame, rejected: pl.DataFrame) -> None:
        for frame, root, schema in (
            (accepted, self.accepted_root, LAKE_SCHEMA),
            (rejected, self.rejected_root, REJECTED_SCHEMA),
        ):
            if frame.is_empty():
                continue
            dated = with_day(frame).select(*schema)
            sources = dated.get_column("source")
            if sources.null_count() == 0 and sources.n_unique() == 1:
                parts: Iterable[tuple[object, pl.DataFrame]] = [(sources[0], dated)]
            else:
                parts = ((s[0], p) for s, p in dated.group_by("source", maintain_order=True))
            for source, part in parts:
                write_partitioned(root, part, source=str(source), compression=self.compression)


def read(root: Path, *, rejected: bool = False) -> pl.DataFrame:
    """Every tick under ``root`` (the lake), sorted by source and ``source_seq``."""
    base = root / (REJECTED_DIR if rejected else ACCEPTED_DIR)
    schema = REJECTED_SCHEMA if rejected else LAKE_SCHEMA
    files: Iterable[Path] = sorted(base.glob("date=*/instrument=*/*.parquet"))
    frames = [pl.read_parquet(f) for f in files]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).sort("source", "symbol", "source_seq")
