"""A small FIX market-data acceptor for tests: plays a script of top-of-book quotes.

    with start_mdsim(tmp_path, {"BTC/USDT": [("43000.15", "43000.40", "1.5", "2")]}) as md:
        ... an initiator logs on to 127.0.0.1:md.port as CLIENT -> MDSIM, sends 35=V ...

Each subscription (35=V, one symbol per request, as ``trading.venues.fix.marketdata`` sends
them) is answered with the symbol's first quote as a full refresh (35=W: a bid and an
offer), then each later quote as an incremental refresh (35=X: a change of the bid and of the
offer; a side given as None is deleted instead), ``interval_s`` apart, then nothing. A
symbol without a script gets 35=Y, MDReqRejReason 0 (unknown symbol).

It runs as its own process (``python -m tests.fix.mdsim CONFIG.json``), with the loopback
bind shim preloaded like the QuickFIX example counterparties (``counterparties.launch``):
quickfix's acceptor listens on every interface otherwise. SIGTERM logs out and ends it.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.fix.counterparties import Counterparty, launch, session_config, spec_dir

Quote = tuple[str | None, str | None, str | None, str | None]  # bid, ask, bid size, ask size


def start_mdsim(
    home: Path, quotes: Mapping[str, Sequence[Quote]], *, clients: Sequence[str] = ("CLIENT",),
    begin_string: str = "FIX.4.4", comp_id: str = "MDSIM", interval_s: float = 0.05,
) -> Counterparty:  # fmt: skip
    """Starts the simulator on a free loopback port; it plays ``quotes`` to each subscriber."""
    home.mkdir(parents=True, exist_ok=True)
    dictionary = spec_dir() / f"{begin_string.replace('.', '')}.xml"

    def command(port: int, attempt: int) -> list[str]:
        cfg = home / f"mdsim-{attempt}.cfg"
        text = session_config(port=port, begin_string=begin_string, comp_id=comp_id,
                              clients=clients, home=home, dictionary=dictionary)  # fmt: skip
        cfg.write_text(text)
        script = home / f"mdsim-{attempt}.json"
        played = {s: list(q) for s, q in quotes.items()}
        script.write_text(
            json.dumps({"config": str(cfg), "interval_s": interval_s, "quotes": played})
        )
        return [sys.executable, "-m", "tests.fix.mdsim", str(script)]

    return launch("mdsim", home, begin_string=begin_string, comp_id=comp_id, clients=clients,
                  command=command)  # fmt: skip


# --- the simulator process --------------------------------------------------------------


def _main(script_path: str) -> None:
    import quickfix as fix
    import quickfix42 as fix42
    import quickfix44 as fix44

    script = json.loads(Path(script_path).read_text())
    quotes: dict[str, list[list[str | None]]] = script["quotes"]
    interval_s = float(script["interval_s"])

    def entry(group: Any, side: str, price: str | None, size: str | None) -> None:
        group.setField(fix.MDEntryType(side))
        if price is not None:
            group.setField(fix.StringField(270, price))  # the script's decimal text, exactly
        if size is not None:
            group.setField(fix.StringField(271, size))

    class App(fix.Application):  # type: ignore[misc]
        def onCreate(self, sessionID: Any) -> None:
            pass

        def onLogon(self, sessionID: Any) -> None:
            pass

        def onLogout(self, sessionID: Any) -> None:
            pass

        def toAdmin(self, message: Any, sessionID: Any) -> None:
            pass

        def fromAdmin(self, message: Any, sessionID: Any) -> None:
            pass

        def toApp(self, message: Any, sessionID: Any) -> None:
            pass

        def fromApp(self, message: Any, sessionID: Any) -> None:
            if message.getHeader().getField(35) != "V":
                return
            mod = fix42 if sessionID.getBeginString().getValue() == "FIX.4.2" else fix44
            req_id = message.getField(262)
            related = mod.MarketDataRequest.NoRelatedSym()
            symbols = []
            for i in range(1, int(message.getField(146)) + 1):
                message.getGroup(i, related)
                symbols.append(related.getField(55))
            for symbol in symbols:
                if symbol not in quotes:
                    reject = mod.MarketDataRequestReject()
                    reject.setField(fix.MDReqID(req_id))
                    reject.setField(fix.MDReqRejReason(fix.MDReqRejReason_UNKNOWN_SYMBOL))
                    reject.setField(fix.Text(f"unknown symbol {symbol}"))
                    fix.Session.sendToTarget(reject, sessionID)
                    continue
                threading.Thread(target=play, args=(mod, sessionID, req_id, symbol),
                                 daemon=True).start()  # fmt: skip

    def play(mod: Any, session_id: Any, req_id: str, symbol: str) -> None:
        first, *rest = quotes[symbol]
        bid, ask, bid_size, ask_size = first
        snapshot = mod.MarketDataSnapshotFullRefresh()
        snapshot.setField(fix.MDReqID(req_id))
        snapshot.setField(fix.Symbol(symbol))
        for side, price, size in ((fix.MDEntryType_BID, bid, bid_size),
                                  (fix.MDEntryType_OFFER, ask, ask_size)):  # fmt: skip
            group = mod.MarketDataSnapshotFullRefresh.NoMDEntries()  # fresh: no stale fields
            if price is not None:
                entry(group, side, price, size)
                snapshot.addGroup(group)
        fix.Session.sendToTarget(snapshot, session_id)
        for bid, ask, bid_size, ask_size in rest:
            time.sleep(interval_s)
            update = mod.MarketDataIncrementalRefresh()
            update.setField(fix.MDReqID(req_id))
            for side, price, size in ((fix.MDEntryType_BID, bid, bid_size),
                                      (fix.MDEntryType_OFFER, ask, ask_size)):  # fmt: skip
                group = mod.MarketDataIncrementalRefresh.NoMDEntries()
                group.setField(
                    fix.MDUpdateAction(
                        fix.MDUpdateAction_DELETE if price is None else fix.MDUpdateAction_CHANGE
                    )
                )
                group.setField(fix.Symbol(symbol))
                entry(group, side, price, size)
                update.addGroup(group)
            fix.Session.sendToTarget(update, session_id)

    settings = fix.SessionSettings(script["config"])
    acceptor = fix.SocketAcceptor(App(), fix.FileStoreFactory(settings), settings,
                                  fix.ScreenLogFactory(settings))  # fmt: skip
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    acceptor.start()
    print("mdsim: listening", flush=True)
    done.wait()
    acceptor.stop()


if __name__ == "__main__":
    _main(sys.argv[1])
