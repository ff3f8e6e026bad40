"""`bourse ml train|evaluate|models|promote`, checked from outside."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from ml.engine import feature_matrix
from ml.events import write_frame
from ml.registry import Registry
from serving.cli import app
from tests.ml.builders import random_history

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A home with one model trained by the CLI on a hand-made file, and that file."""
    root = tmp_path_factory.mktemp("cli_ml")
    events = write_frame(random_history(5, n=400).frame(), root / "events.parquet")
    code, output = _run("ml", "train", "--home", str(root / "home"), "--seed", "3",
                        "--events", str(events))  # fmt: skip
    assert code == 0, output
    assert re.search(r"model \S+ \(promoted\): validation pr_auc=", output), output
    return root / "home", events


def test_cli_ml_when_evaluating_then_the_last_line_holds_the_figures(
    trained_home: tuple[Path, Path], tmp_path: Path
) -> None:
    # Arrange: another hand-made file, scored independently with the promoted model.
    home, _ = trained_home
    h = random_history(8, n=250)
    path = write_frame(h.frame(), tmp_path / "other.parquet")
    scores = Registry(home).promoted().score(feature_matrix(h.events))
    y = np.asarray(h.labels)
    k = math.ceil(250 / 100)
    alerted = sorted(range(250), key=lambda i: (-scores[i], i))[:k]
    recall = y[alerted].sum() / y.sum()
    ap = average_precision_score(y, scores)

    # Act
    code, output = _run("ml", "evaluate", "--home", str(home), "--events", str(path))

    # Assert
    assert code == 0, output
    last = output.strip().splitlines()[-1]
    assert last == f"pr_auc={ap:.4f} recall_at_1pct={recall:.4f}"


def test_cli_ml_when_listing_and_promoting_then_the_table_follows(
    trained_home: tuple[Path, Path],
) -> None:
    home, _ = trained_home
    version = Registry(home).promoted_version()
    assert version is not None

    code, output = _run("ml", "promote", version, "--home", str(home))
    listed_code, listed = _run("ml", "models", "--home", str(home))

    assert code == 0, output
    assert f"promoted {version}" in output
    assert listed_code == 0, listed
    assert version in listed
    assert "yes" in listed


def test_cli_ml_when_the_file_has_no_label_then_one_line_and_exit_2(
    trained_home: tuple[Path, Path], tmp_path: Path
) -> None:
    home, events = trained_home
    frame = pl.read_parquet(events).with_columns(pl.lit(0, dtype=pl.Int8).alias("label"))
    path = write_frame(frame, tmp_path / "clean.parquet")

    code, output = _run("ml", "evaluate", "--home", str(home), "--events", str(path))

    assert code == 2
    assert "no labelled event" in output
    assert len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ml", "evaluate", "--home", "{tmp}/nowhere", "--events", "{tmp}/x.parquet"),
         "no home at"),
        (("ml", "models", "--home", "{tmp}"), "no model under"),
        (("ml", "promote", "v1", "--home", "{tmp}"), "no model v1"),
        (("ml", "train", "--home", "{tmp}", "--events", "{tmp}/missing.parquet"),
         "no event file at"),
    ],
)  # fmt: skip
def test_cli_ml_when_nothing_to_work_on_then_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, output = _run(*(a.format(tmp=tmp_path) for a in args))

    assert code == 2, output
    assert message in output
    assert len(output.strip().splitlines()) == 1


def test_cli_ml_when_evaluating_without_a_promoted_model_then_exit_2(tmp_path: Path) -> None:
    code, output = _run("ml", "evaluate", "--home", str(tmp_path), "--events", "x.parquet")

    assert code == 2
    assert "no promoted model" in output
