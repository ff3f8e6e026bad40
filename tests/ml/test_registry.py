"""The registry: versions with their meta, the promoted pointer, refusals."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ml.features import FEATURES
from ml.model import FraudModel
from ml.registry import PROMOTED, Registry, RegistryError


def _register(home: Path, model: FraudModel, **meta: object) -> tuple[Registry, str]:
    registry = Registry(home)
    version = registry.register(copy.deepcopy(model), {"metrics": {"pr_auc": 0.5}, **meta})
    return registry, version


def test_registry_when_a_model_is_registered_then_its_meta_says_what_it_is(
    tmp_path: Path, tiny: FraudModel
) -> None:
    # Act
    registry, version = _register(tmp_path, tiny, data_sha256="ab" * 32)

    # Assert
    folder = tmp_path / "ml" / "models" / version
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["version"] == version
    assert meta["features"] == list(FEATURES)
    assert meta["data_sha256"] == "ab" * 32
    assert meta["seed"] == tiny.seed
    assert meta["metrics"] == {"pr_auc": 0.5}
    assert set(meta["libraries"]) == {"python", "scikit-learn", "numpy", "polars"}
    assert meta["model_sha256"] == hashlib.sha256((folder / "model.pkl").read_bytes()).hexdigest()
    assert [m["version"] for m in registry.list()] == [version]
    assert registry.list()[0]["promoted"] is False


def test_registry_when_promoted_then_the_flow_loads_the_same_model(
    tmp_path: Path, tiny: FraudModel
) -> None:
    registry, first = _register(tmp_path, tiny)
    _, second = _register(tmp_path, tiny)
    x = np.zeros((2, len(FEATURES)))

    registry.promote(first)
    loaded = Registry(tmp_path).promoted()

    assert first != second
    assert loaded.version == first
    np.testing.assert_array_equal(loaded.score(x), tiny.score(x))
    assert (tmp_path / "ml" / "models" / PROMOTED).read_text().strip() == first
    assert [m["promoted"] for m in registry.list()] == [True, False]


def test_registry_when_nothing_is_promoted_then_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no promoted model"):
        Registry(tmp_path).promoted()
    with pytest.raises(RegistryError, match="no model v9"):
        Registry(tmp_path).promote("v9")
    with pytest.raises(RegistryError, match="is not a model version"):
        Registry(tmp_path).promote("../etc")


def test_registry_when_the_feature_list_differs_then_the_model_is_refused(
    tmp_path: Path, tiny: FraudModel
) -> None:
    # Arrange: a model trained when the code had one feature fewer and one other.
    old = copy.deepcopy(tiny)
    old.features = (*FEATURES[:-1], "retired_feature")
    registry, version = _register(tmp_path, old)

    # Act / Assert
    with pytest.raises(RegistryError, match=f"lacks {FEATURES[-1]}; has retired_feature"):
        registry.promote(version)
    (tmp_path / "ml" / "models" / PROMOTED).write_text(version)
    with pytest.raises(RegistryError, match="other features than the code's FEATURES"):
        registry.promoted()


def test_registry_when_the_pickle_was_changed_then_it_is_not_loaded(
    tmp_path: Path, tiny: FraudModel
) -> None:
    registry, version = _register(tmp_path, tiny)
    pkl = tmp_path / "ml" / "models" / version / "model.pkl"
    pkl.write_bytes(pkl.read_bytes()[:-10])

    with pytest.raises(RegistryError, match="does not match the sha256"):
        registry.promote(version)
    assert registry.promoted_version() is None


def test_registry_when_meta_is_garbage_then_listed_with_its_error(
    tmp_path: Path, tiny: FraudModel
) -> None:
    registry, version = _register(tmp_path, tiny)
    (tmp_path / "ml" / "models" / version / "meta.json").write_text("{not json")

    listed = registry.list()

    assert listed[0]["version"] == version
    assert "unreadable meta.json" in listed[0]["error"]
    with pytest.raises(RegistryError, match=r"unreadable meta\.json"):
        registry.load(version)
