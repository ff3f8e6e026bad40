"""The QuickFIX C++ engine's example counterparties, run on loopback for interop tests.

    with start_executor(tmp_path, clients=["BOURSE"]) as cp:    # FIX 4.4, fills limits at once
        ... an initiator logs on to 127.0.0.1:cp.port as BOURSE -> cp.comp_id ...
    with start_ordermatch(tmp_path, clients=["B1", "B2"]) as cp:  # FIX 4.2, a real order book

Debian ships both prebuilt in `libquickfix-doc` (gzipped, under its examples), linked to
`libquickfix17`; `make install` (scripts/ensure-tools.sh) installs the two packages. Each
start unpacks the binary into the test's directory, writes a session config of its own
(one acceptor session per client, a free port, the data dictionary of the `fix` extra's
quickfix), and waits until the port accepts connections.

Their acceptors bind every interface (QuickFIX 1.15 has no setting for the address), so
each runs with `loopback_bind.c` preloaded: compiled with `cc` once per test run, it turns
every bind() into a bind to 127.0.0.1 (or ::1) on the port asked for. `listening_on(port)`
reads `ss -ltn` so a test can check that.

A missing package, library, compiler or `ss` raises `CounterpartyMissing` with the fix;
the tests turn it into a failure, never a skip.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tests.servers import LOOPBACK, free_port

EXAMPLES = Path("/usr/share/doc/libquickfix-doc/examples")
BINARIES = {
    "executor": EXAMPLES / "executor" / "C++" / ".libs" / "executor.gz",
    "ordermatch": EXAMPLES / "ordermatch" / ".libs" / "ordermatch.gz",
}
LIBRARY = "libquickfix.so.17"
INSTALL_HINT = (
    "run `make install` (scripts/ensure-tools.sh installs libquickfix-doc and libquickfix17)"
)
SHIM_SOURCE = Path(__file__).with_name("loopback_bind.c")
# Bounds, not timings under test: how long a counterparty may take to listen or to stop.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 5


class CounterpartyError(RuntimeError):
    """A counterparty could not be started or stopped."""


class CounterpartyMissing(CounterpartyError):
    """Something a counterparty needs is not installed (the message says what to run)."""


# --- what they need ---------------------------------------------------------------------


def spec_dir() -> Path:
    """The FIX data dictionaries shipped by the `fix` extra's quickfix (share/quickfix)."""
    for root in (Path(sys.prefix), Path(sys.base_prefix)):
        if (root / "share" / "quickfix" / "FIX44.xml").is_file():
            return root / "share" / "quickfix"
    raise CounterpartyMissing(
        f"the FIX data dictionaries (share/quickfix/FIX44.xml under {sys.prefix}) are missing: "
        "install the `fix` extra (uv sync --frozen --extra fix)"
    )


def _library_present() -> bool:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    return LIBRARY in out or any(
        Path(d, LIBRARY).exists() for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/lib")
    )


def unpack_binary(name: str, into: Path) -> Path:
    """The example program `name`, unpacked (it ships gzipped) into `into`, executable."""
    packed = BINARIES[name]
    if not packed.is_file():
        raise CounterpartyMissing(
            f"QuickFIX example `{name}` not found at {packed}: {INSTALL_HINT}"
        )
    if not _library_present():
        raise CounterpartyMissing(f"{LIBRARY} (package libquickfix17) not found: {INSTALL_HINT}")
    into.mkdir(parents=True, exist_ok=True)
    target = into / name
    with gzip.open(packed, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    target.chmod(0o755)
    return target


@functools.cache
def loopback_shim() -> Path:
    """`loopback_bind.c` compiled once per process into a temp dir (removed at exit)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise CounterpartyMissing(
            "no C compiler (cc) to build the loopback bind shim: apt-get install gcc"
        )
    out_dir = Path(tempfile.mkdtemp(prefix="bourse-fixshim-"))
    atexit.register(shutil.rmtree, out_dir, True)
    lib = out_dir / "loopback_bind.so"
    done = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(SHIM_SOURCE), "-ldl"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise CounterpartyError(f"compiling {SHIM_SOURCE.name} failed:\n{done.stderr}")
    return lib


def listening_on(port: int) -> list[str]:
    """The local addresses (`addr:port`, as `ss -ltn` prints them) listening on TCP `port`."""
    ss = shutil.which("ss") or "/usr/bin/ss"
    if not os.access(ss, os.X_OK):
        raise CounterpartyMissing("`ss` not found: apt-get install iproute2")
    out = subprocess.run(
        [ss, "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3] for line in out.splitlines() if len(line.split()) >= 4]


# --- running them -----------------------------------------------------------------------


@dataclass
class Counterparty:
    """A running example counterparty; leaving the `with` block stops it."""

    name: str
    begin_string: str
    comp_id: str  # its SenderCompID; each client logs on with TargetCompID = this
    clients: tuple[str, ...]  # the SenderCompIDs it accepts
    port: int
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def host(self) -> str:
        return LOOPBACK

    def log(self) -> str:
        """What it printed (QuickFIX's screen log: every message in and out)."""
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Ends it: `#quit` on stdin for ordermatch (its acceptor logs out), SIGTERM for
        executor (it has no other way out); SIGKILL if either outlives the bound."""
        if self.process.poll() is None:
            if self.name == "ordermatch" and self.process.stdin is not None:
                with contextlib.suppress(OSError):
                    self.process.stdin.write(b"#quit\n")
                    self.process.stdin.flush()
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def session_config(
    *, port: int, begin_string: str, comp_id: str, clients: Iterable[str], home: Path,
    dictionary: Path,
) -> str:  # fmt: skip
    """An acceptor config: one session per client, always in session (start = end)."""
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptPort={port}",
        "SocketReuseAddress=Y",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"FileStorePath={home / 'store'}",
        "UseDataDictionary=Y",
        f"DataDictionary={dictionary}",
        "ResetOnLogon=Y",
        "",
    ]
    for client in clients:
        lines += [
            "[SESSION]",
            f"BeginString={begin_string}",
            f"SenderCompID={comp_id}",
            f"TargetCompID={client}",
            "",
        ]
    return "\n".join(lines)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def launch(
    name: str, home: Path, *, begin_string: str, comp_id: str, clients: Sequence[str],
    command: Callable[[int, int], Sequence[str]],
) -> Counterparty:  # fmt: skip
    """Runs ``command(port, attempt)`` (an acceptor on ``port``) with the loopback shim
    preloaded, until it accepts connections; a fresh port when the last one was taken."""
    if not clients:
        raise ValueError("a counterparty needs at least one client CompID")
    shim = loopback_shim()
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    last = ""
    for attempt in range(_PORT_ATTEMPTS):
        port = free_port()
        argv = list(command(port, attempt))
        log_path = home / f"{name}-{attempt}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            argv, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
            # ordermatch reads commands from stdin and spins on EOF: a pipe nobody writes
            # to keeps it idle, and `#quit` on it stops it.
            stdin=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        cp = Counterparty(name, begin_string, comp_id, tuple(clients), port, home, process,
                          log_path, log)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _accepts(port):
                _running.append(cp)
                return cp
            time.sleep(0.05)
        cp.stop()
        last = cp.log()[-2_000:]
        if "in use" not in last.lower():
            break
    raise CounterpartyError(f"{name} did not start listening ({argv}); it printed:\n{last}")


def _start(
    name: str, home: Path, begin_string: str, comp_id: str, clients: Sequence[str]
) -> Counterparty:
    if not clients:
        raise ValueError("a counterparty needs at least one client CompID")
    home.mkdir(parents=True, exist_ok=True)
    binary = unpack_binary(name, home / "bin")
    dictionary = spec_dir() / f"{begin_string.replace('.', '')}.xml"

    def command(port: int, attempt: int) -> list[str]:
        cfg = home / f"{name}-{attempt}.cfg"
        text = session_config(port=port, begin_string=begin_string, comp_id=comp_id,
                              clients=clients, home=home, dictionary=dictionary)  # fmt: skip
        cfg.write_text(text)
        return [str(binary), str(cfg)]

    return launch(name, home, begin_string=begin_string, comp_id=comp_id, clients=clients,
                  command=command)  # fmt: skip


_running: list[Counterparty] = []


@atexit.register
def _stop_all() -> None:
    for cp in _running:
        with contextlib.suppress(Exception):
            cp.stop()


def start_executor(
    home: Path, *, clients: Sequence[str] = ("BOURSE",), begin_string: str = "FIX.4.4",
    comp_id: str = "EXECUTOR",
) -> Counterparty:  # fmt: skip
    """`executor`: fills every limit order at once with one report (35=8, 150=F in 4.4),
    rejects any other order type at session level (35=3, 373=5, 58=the bad tag), and
    answers messages it does not handle (cancel 35=F, replace 35=G) with 35=j."""
    return _start("executor", home, begin_string, comp_id, clients)


def start_ordermatch(
    home: Path, *, clients: Sequence[str] = ("BOURSE",), comp_id: str = "ORDERMATCH"
) -> Counterparty:
    """`ordermatch` (FIX 4.2 only): a price-time order book per symbol over every session;
    Day limit orders only (anything else: 35=8 rejected, with the reason in 58), partial
    fills as orders cross, cancels (35=F) answered with 35=8 canceled."""
    return _start("ordermatch", home, "FIX.4.2", comp_id, clients)
