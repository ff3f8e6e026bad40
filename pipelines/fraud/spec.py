"""A fraud run, described as plain data (JSON), so that every process of a cluster builds
the same flow from it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FraudSpec:
    home: str
    redis_url: str
    dsn: str | None = None  # the store to read accounts' clients from; None: events only
    partitions: int = 4  # the relay's event stream partitions
    until_idle: bool = False
    send_holds: bool = True
    epoch_s: int = 1

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"partitions must be positive, got {self.partitions}")
        if self.epoch_s < 1:
            raise ValueError(f"epoch_s must be a whole number of seconds >= 1, got {self.epoch_s}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FraudSpec:
        return cls(**json.loads(text))

    @property
    def lake_root(self) -> Path:
        return Path(self.home) / "lake"

    @property
    def work_dir(self) -> Path:
        return Path(self.home) / "pipelines" / "fraud"
