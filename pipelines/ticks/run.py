"""Running the tick dataflow: one process in place, or a cluster of ``bytewax.run`` processes.

A run is described by a ``RunSpec`` (JSON-serializable, so each process of a cluster builds
the same flow from it). Its recovery store lives under the home directory, keyed by the
spec: a run that was killed resumes where its last snapshot left it when started again
with the same arguments; a run that finished leaves a ``DONE`` mark, and the next run with
the same arguments starts afresh (its lake files are rewritten identically).

A cluster is ``processes`` copies of ``python -m bytewax.run pipelines.ticks.run:
flow_from_env() -i <k> -a <addresses>``, each told its index through the environment so
its source lists only the feeds it owns (see ``routing``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir

from pipelines.cluster import free_ports
from pipelines.ticks import formats, lake
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.flow import build_flow, stats_path
from pipelines.ticks.sources import FileReplay, SyntheticReplay, TickSource
from trading.catalogue import Catalogue, default_catalogue

ENV_SPEC = "BOURSE_TICKS_SPEC"
ENV_PROCESS = "BOURSE_TICKS_PROCESS"
ENV_PROCESSES = "BOURSE_TICKS_PROCESSES"
ENV_ADDRESSES = "BOURSE_TICKS_ADDRESSES"
# The files' feeds as the launcher discovered them (JSON), so that each process of a
# cluster does not sniff, digest and read the heads of every file again at its start.
ENV_FEEDS = "BOURSE_TICKS_FEEDS"
_MAX_ENV_CHARS = 100_000  # Linux takes at most 128 KiB in one environment string
SINKS = ("lake", "redis")
# Monday 2026-01-05 00:00 UTC: a synthetic run's default start, inside the FX week.
DEFAULT_SYNTHETIC_START_NS = 1_767_571_200_000_000_000


@dataclass(frozen=True, slots=True)
class RunSpec:
    home: str
    source: str  # a file or directory, or "synthetic"
    fmt: str | None = None
    symbol: str | None = None  # files: the symbol when the file names none
    symbols: tuple[str, ...] = ()  # synthetic
    ticks: int = 0  # synthetic: ticks per symbol
    seed: int = 0
    start_ns: int = DEFAULT_SYNTHETIC_START_NS
    sinks: tuple[str, ...] = ("lake",)
    redis_url: str | None = None
    batch_rows: int = 100_000
    config_path: str | None = None
    epoch_s: float = 1.0
    inject_rate: float = 0.0  # synthetic: the share of ticks spoiled with labelled bad ticks
    lake_compression: str = str(lake.DEFAULT_COMPRESSION)  # ``lake.Compression.parse``

    def __post_init__(self) -> None:
        unknown = [s for s in self.sinks if s not in SINKS]
        if unknown:
            raise ValueError(f"unknown sink(s) {unknown}; known: {', '.join(SINKS)}")
        if "redis" in self.sinks and not self.redis_url:
            raise ValueError("the redis sink needs a Redis URL")
        if self.batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, got {self.batch_rows}")
        lake.Compression.parse(self.lake_compression)  # a ValueError naming the codecs
        if self.synthetic:
            if not self.symbols:
                raise ValueError("a synthetic source needs --symbols")
            if self.ticks < 1:
                raise ValueError(f"a synthetic source needs --ticks >= 1, got {self.ticks}")
            if not 0 <= self.inject_rate <= 0.05:
                raise ValueError(f"--inject must be within [0, 0.05], got {self.inject_rate}")
        elif self.inject_rate:
            raise ValueError("--inject applies to the synthetic source only")
        elif self.fmt not in formats.FORMATS:
            raise ValueError(f"--format must be one of {', '.join(formats.FORMATS)}")

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        doc = json.loads(text)
        doc["symbols"] = tuple(doc["symbols"])
        doc["sinks"] = tuple(doc["sinks"])
        return cls(**doc)

    @property
    def run_id(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @property
    def lake_root(self) -> Path:
        return Path(self.home) / "lake"

    @property
    def labels_dir(self) -> Path:
        """Where a synthetic run with ``inject_rate`` writes the labels of its bad ticks."""
        return self.work_dir / "labels"

    @property
    def work_dir(self) -> Path:
        return Path(self.home) / "pipelines" / "ticks" / self.run_id

    def feeds(self, catalogue: Catalogue) -> list[FileReplay] | list[SyntheticReplay]:
        if self.synthetic:
            symbols = [catalogue.resolve(s).symbol for s in self.symbols]
            return [
                SyntheticReplay(catalogue, s, self.seed, self.ticks, self.start_ns,
                                self.batch_rows, self.inject_rate, self.labels_dir)
                for s in dict.fromkeys(symbols)
            ]  # fmt: skip
        found = formats.discover(Path(self.source), str(self.fmt), catalogue, self.symbol)
        return [FileReplay(f, catalogue, self.batch_rows) for f in found]

    def filter_config(self, catalogue: Catalogue) -> FilterConfig:
        if self.config_path is None:
            return FilterConfig()
        return FilterConfig.load(Path(self.config_path), catalogue)


@dataclass(frozen=True, slots=True)
class RunReport:
    counts: dict[str, int]  # "accepted" and one entry per reason
    per_feed: dict[str, dict[str, int]]
    elapsed_s: float
    resumed: bool
    lake_root: Path
    feeds_missing_stats: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.counts.get("accepted", 0)

    @property
    def rejected(self) -> int:
        return sum(n for k, n in self.counts.items() if k != "accepted")


def make_flow(
    spec: RunSpec,
    *,
    process: int = 0,
    processes: int = 1,
    feeds: list[FileReplay] | list[SyntheticReplay] | None = None,
) -> Dataflow:
    """The flow of ``spec``; ``feeds``, when the caller has discovered them already."""
    catalogue = default_catalogue()
    if feeds is None:
        feeds = spec.feeds(catalogue)
    source = TickSource(feeds, process=process, processes=processes,
                        progress_dir=spec.work_dir / "progress")  # fmt: skip
    return build_flow(
        source,
        catalogue,
        spec.filter_config(catalogue),
        lake_root=spec.lake_root if "lake" in spec.sinks else None,
        stats_dir=spec.work_dir / "stats",
        redis_url=spec.redis_url if "redis" in spec.sinks else None,
        lake_compression=lake.Compression.parse(spec.lake_compression),
    )


def flow_from_env() -> Dataflow:
    """The flow of one cluster process, from the spec and index its launcher put in env."""
    spec = RunSpec.from_json(os.environ[ENV_SPEC])
    process = int(os.environ.get(ENV_PROCESS, "0"))
    feeds = None
    if os.environ.get(ENV_FEEDS):
        catalogue = default_catalogue()
        feeds = [
            FileReplay(formats.FileFeed(**{**doc, "path": Path(doc["path"])}), catalogue,
                       spec.batch_rows)
            for doc in json.loads(os.environ[ENV_FEEDS])
        ]  # fmt: skip
    processes = int(os.environ.get(ENV_PROCESSES, "1"))
    flow = make_flow(spec, process=process, processes=processes, feeds=feeds)
    addresses = os.environ.get(ENV_ADDRESSES, "")
    if addresses:
        _wait_for_lower_ranks(process, addresses.split(";"))
    return flow


def _wait_for_lower_ranks(process: int, addresses: list[str], timeout_s: float = 30.0) -> None:
    """Wait until the processes before this one listen, so its first connect succeeds.

    Timely connects each process to those of lower index and, refused, retries only a
    second later: with imports racing, that second was most of a small run's startup.
    """
    ports = [int(a.rsplit(":", 1)[1]) for a in addresses[:process]]
    deadline = time.monotonic() + timeout_s
    while ports and time.monotonic() < deadline:
        listening = _listening_ports()
        if listening is None or all(p in listening for p in ports):
            return
        time.sleep(0.005)


def _listening_ports() -> set[int] | None:
    """TCP ports in LISTEN state on this host (Linux), or None when it cannot tell."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            return None
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def records_read(spec: RunSpec) -> int:
    """Records the sources have read so far, across processes (for a progress bar)."""
    total = 0
    for path in (spec.work_dir / "progress").glob("*"):
        try:
            total += int(path.read_text() or 0)
        except (OSError, ValueError):
            continue  # being rewritten: the next poll sees it
    return total


def expected_records(spec: RunSpec) -> int | None:
    """How many records the run will read, when known before reading (synthetic runs)."""
    return spec.ticks * len(set(spec.symbols)) if spec.synthetic else None


def run(
    spec: RunSpec,
    *,
    processes: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> RunReport:
    """Run the flow to the end of its sources and report the counts.

    ``on_progress`` is called from a watcher thread with the records read so far.
    Raises ``formats.FeedError`` (bad path, format or symbol) before anything starts, and
    ``RuntimeError`` when a process of the cluster fails.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    catalogue = default_catalogue()
    feeds = spec.feeds(catalogue)
    spec.filter_config(catalogue)  # a bad config fails here, not in every process
    if "redis" in spec.sinks and spec.redis_url:
        from pipelines.ticks.redis_sink import check_reachable

        check_reachable(spec.redis_url)  # before anything is created
    recovery = spec.work_dir / "recovery"
    done = spec.work_dir / "DONE"
    sources = sorted({f.source for f in feeds})
    # Resume only this very run's unfinished state: a run with other settings (another
    # batch size writes other lake file names) may have replayed these sources since.
    resumed = (
        recovery.exists()
        and not done.exists()
        and (spec.work_dir / "processes").is_file()
        and (spec.work_dir / "processes").read_text() == str(processes)
        and all(_owner(spec, s) == spec.run_id for s in sources)
    )
    if not resumed:
        shutil.rmtree(spec.work_dir, ignore_errors=True)
        if "lake" in spec.sinks:
            for source in sources:
                lake.remove_source(spec.lake_root, source)
        for source in sources:
            _claim(spec, source)
        recovery.mkdir(parents=True)
        init_db_dir(recovery, processes)  # type: ignore[no-untyped-call]
        (spec.work_dir / "processes").write_text(str(processes))
    started = time.perf_counter()
    stop = threading.Event()
    if on_progress is not None:
        threading.Thread(
            target=_watch, args=(spec, on_progress, stop), name="ticks-progress", daemon=True
        ).start()
    try:
        _execute(spec, processes, recovery, feeds)
    finally:
        stop.set()
    if on_progress is not None:
        on_progress(records_read(spec))
    elapsed = time.perf_counter() - started
    done.write_text(dt.datetime.now(dt.UTC).isoformat())
    return _report(spec, [f.key for f in feeds], elapsed, resumed)


def injected(spec: RunSpec) -> tuple[int, int | None]:
    """A synthetic run with ``inject_rate``: how many labelled bad ticks it injected, and
    how many of them the lake holds rejected with the labelled reason (None without the
    lake sink)."""
    import polars as pl

    files = sorted(spec.labels_dir.glob("*.parquet"))
    if not files:
        return 0, None
    labels = pl.read_parquet(files)
    rejected = sorted((spec.lake_root / lake.REJECTED_DIR).glob("date=*/instrument=*/*.parquet"))
    if "lake" not in spec.sinks:
        return labels.height, None
    from pipelines.ticks import synthetic

    source = synthetic.source_name(spec.seed)
    got = (
        pl.scan_parquet(rejected)
        .filter(pl.col("source") == source)
        .select("symbol", "source_seq", pl.col("reason").cast(pl.String))
        .collect()
        if rejected
        else pl.DataFrame(schema={"symbol": pl.String, "source_seq": pl.Int64, "reason": pl.String})
    )
    caught = labels.with_columns(pl.col("reason").cast(pl.String)).join(
        got, on=["symbol", "source_seq", "reason"], how="semi"
    )
    return labels.height, caught.height


def _owners_dir(spec: RunSpec) -> Path:
    return Path(spec.home) / "pipelines" / "ticks" / "owners"


def _owner(spec: RunSpec, source: str) -> str | None:
    """The run that last started a source afresh in this home (its lake files are that
    run's), or None."""
    try:
        return (_owners_dir(spec) / lake.safe_name(source)).read_text()
    except OSError:
        return None


def _claim(spec: RunSpec, source: str) -> None:
    _owners_dir(spec).mkdir(parents=True, exist_ok=True)
    path = _owners_dir(spec) / lake.safe_name(source)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(spec.run_id)
    os.replace(tmp, path)


def _watch(spec: RunSpec, on_progress: Callable[[int], None], stop: threading.Event) -> None:
    while not stop.wait(0.2):
        on_progress(records_read(spec))


def _execute(
    spec: RunSpec,
    processes: int,
    recovery: Path,
    feeds: list[FileReplay] | list[SyntheticReplay],
) -> None:
    if processes == 1:
        from bytewax.run import cli_main

        cli_main(  # type: ignore[no-untyped-call]
            make_flow(spec, feeds=feeds),  # discovered once: a headerless file is read whole
            epoch_interval=dt.timedelta(seconds=spec.epoch_s),
            recovery_config=RecoveryConfig(str(recovery)),  # type: ignore[no-untyped-call]
        )
    else:
        _run_cluster(spec, processes, recovery, feeds)


def _run_cluster(
    spec: RunSpec,
    processes: int,
    recovery: Path,
    feeds: list[FileReplay] | list[SyntheticReplay],
) -> None:
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
    env = {**os.environ, ENV_SPEC: spec.to_json(), ENV_PROCESSES: str(processes),
           ENV_ADDRESSES: addresses}  # fmt: skip
    env.pop(ENV_FEEDS, None)
    files = [f.feed for f in feeds if isinstance(f, FileReplay)]
    if files and len(files) == len(feeds):
        text = json.dumps([{**dataclasses.asdict(f), "path": str(f.path)} for f in files])
        if len(text) < _MAX_ENV_CHARS:  # else each process discovers the files itself
            env[ENV_FEEDS] = text
    # Each process runs one worker; Polars' own thread pool would otherwise take every
    # core in every process and the processes would fight over them.
    env.setdefault("POLARS_MAX_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    # bytewax.run takes whole seconds between snapshots.
    every_s = str(max(1, round(spec.epoch_s)))
    procs = []
    for k in range(processes):
        cmd = [
            sys.executable, "-m", "bytewax.run", "pipelines.ticks.run:flow_from_env()",
            "-i", str(k), "-a", addresses, "-r", str(recovery), "-s", every_s, "-b", "0",
        ]  # fmt: skip
        # The command is built here from our own module path and numbers, not from input.
        procs.append(subprocess.Popen(cmd, env={**env, ENV_PROCESS: str(k)}))  # noqa: S603
    try:
        codes = [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        raise
    if any(codes):
        raise RuntimeError(f"tick pipeline process exit codes {codes}")


def _report(spec: RunSpec, keys: list[str], elapsed: float, resumed: bool) -> RunReport:
    total: Counter[str] = Counter()
    per_feed: dict[str, dict[str, int]] = {}
    missing = []
    for key in keys:
        path = stats_path(spec.work_dir / "stats", key)
        if not path.exists():
            missing.append(key)
            continue
        counts: dict[str, Any] = json.loads(path.read_text())["counts"]
        per_feed[key] = {k: int(v) for k, v in counts.items()}
        total.update(per_feed[key])
    return RunReport(dict(total), per_feed, elapsed, resumed, spec.lake_root, missing)
