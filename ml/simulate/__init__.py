"""The scenario simulator: normal clients of several kinds, the hard negatives a broker
sees, and the five frauds, written as a labelled event file (docs/fraud.md, §The scenario
simulator)."""

from ml.simulate.fraud import FRAUD_KINDS
from ml.simulate.run import DEFAULT_MIX, DEFAULT_START, parse_mix, simulate, simulate_world
from ml.simulate.world import NORMAL_KINDS, Member

__all__ = [
    "DEFAULT_MIX",
    "DEFAULT_START",
    "FRAUD_KINDS",
    "NORMAL_KINDS",
    "Member",
    "parse_mix",
    "simulate",
    "simulate_world",
]
