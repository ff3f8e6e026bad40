"""quickfix session settings made from an ``LpConfig`` (initiator) or the LP simulator's
options (acceptor), as the text quickfix's ``SessionSettings`` reads.

Where things live under the data directory ``HOME``: ``HOME/venues/fix/<lp>/store`` (the
FileStore: sequence numbers and every message sent, so a restart resumes the session and
answers resend requests) and ``HOME/venues/fix/<lp>/log`` (the FileLog: every message in and
out, and the session's events). The data dictionary is the spec quickfix ships for the
BeginString (``UseDataDictionary=Y``): a malformed incoming message is rejected by quickfix
at session level, never handed to the application.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trading.errors import ConfigError
from trading.venues.fix.config import LpConfig


def spec_dir() -> Path:
    """Where the quickfix wheel installs its data dictionaries (``share/quickfix``)."""
    for root in (Path(sys.prefix), Path(sys.base_prefix), Path("/usr")):
        d = root / "share" / "quickfix"
        if (d / "FIX44.xml").is_file():
            return d
    raise ConfigError("quickfix's data dictionaries (share/quickfix/FIX44.xml) are not installed")


def spec_path(begin_string: str) -> Path:
    return spec_dir() / (begin_string.replace(".", "") + ".xml")


def session_dir(home: Path, lp: str) -> Path:
    return home / "venues" / "fix" / lp


def _common(begin_string: str, directory: Path) -> list[str]:
    return [
        f"BeginString={begin_string}",
        f"FileStorePath={directory / 'store'}",
        f"FileLogPath={directory / 'log'}",
        "UseDataDictionary=Y",
        f"DataDictionary={spec_path(begin_string)}",
        # Messages are stored for resends: a gap on the other side is answered with them.
        "PersistMessages=Y",
        "SocketNodelay=Y",
        "ValidateUserDefinedFields=N",
        # Heartbeat and logon timing are the other side's to check as well; quickfix's defaults.
        "LogonTimeout=10",
        "LogoutTimeout=2",
        "TimestampPrecision=3",
    ]


def initiator_settings(lp: LpConfig, home: Path) -> str:
    directory = session_dir(home, lp.name)
    lines = [
        "[DEFAULT]",
        "ConnectionType=initiator",
        *_common(lp.begin_string, directory),
        "",
        "[SESSION]",
        f"SenderCompID={lp.sender_comp_id}",
        f"TargetCompID={lp.target_comp_id}",
        f"SocketConnectHost={lp.host}",
        f"SocketConnectPort={lp.port}",
        f"HeartBtInt={lp.heartbeat_s}",
        f"ReconnectInterval={lp.reconnect_s}",
        f"StartTime={lp.session_start}",
        f"EndTime={lp.session_end}",
        f"ResetOnLogon={'Y' if lp.reset_on_logon else 'N'}",
        "ResetOnDisconnect=N",
        "ResetOnLogout=N",
        "",
    ]
    return "\n".join(lines)


def acceptor_settings(
    *,
    port: int,
    begin_strings: tuple[str, ...],
    sender_comp_id: str,
    target_comp_id: str,
    home: Path,
    reset_on_logon: bool = False,
    allowed: tuple[str, ...] = ("127.0.0.1",),
) -> str:
    """One acceptor port serving a session per BeginString (the LP simulator). quickfix 1.16
    has no setting for the address an acceptor binds (it listens on every interface): its
    sessions accept a logon from ``allowed`` addresses only (AllowedRemoteAddresses)."""
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptPort={port}",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"ResetOnLogon={'Y' if reset_on_logon else 'N'}",
        "ResetOnDisconnect=N",
        "ResetOnLogout=N",
        # The acceptor's own log (events not tied to one session).
        f"FileLogPath={home / 'log'}",
        f"AllowedRemoteAddresses={','.join(allowed)}",
        "",
    ]
    for bs in begin_strings:
        directory = home / bs.replace(".", "")
        lines += [
            "[SESSION]",
            *_common(bs, directory),
            f"SenderCompID={sender_comp_id}",
            f"TargetCompID={target_comp_id}",
            "",
        ]
    return "\n".join(lines)
