"""The model registry: versioned models under ``HOME/ml/models/<version>/`` (docs/fraud.md).

Each version is a folder with ``model.pkl`` (the pickled ``FraudModel``) and ``meta.json``
(version, created, seed, metrics, feature list, the training data's sha256, library
versions, the pickle's sha256). ``HOME/ml/models/PROMOTED`` names the promoted version; it
is replaced atomically, so the flow never reads half a name. A pickle is unpickled only
after its sha256 matches the one in its meta (pickles run code when loaded: a file changed
behind the registry's back is refused, not executed).

    RegistryError          no model, an unknown version, a corrupt or tampered file,
                           a feature list that differs from the code's
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.features import FEATURES
from ml.model import FraudModel

PROMOTED = "PROMOTED"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RegistryError(Exception):
    """The registry cannot give what was asked (the message says what and where)."""


def library_versions() -> dict[str, str]:
    import numpy
    import polars
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "polars": polars.__version__,
    }


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class Registry:
    """Models under ``home/ml/models``."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.root = self.home / "ml" / "models"

    def register(self, model: FraudModel, meta: dict[str, Any]) -> str:
        """Store ``model`` as a new version with ``meta`` (plus what the registry adds)."""
        created = datetime.now(UTC)
        self.root.mkdir(parents=True, exist_ok=True)
        base = created.strftime("%Y%m%dT%H%M%SZ")
        version, n = base, 1
        while (self.root / version).exists():
            n += 1
            version = f"{base}-{n}"
        model.version = version
        blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        full = {
            **meta,
            "version": version,
            "created": created.isoformat(),
            "seed": model.seed,
            "threshold": model.threshold,
            "features": list(model.features),
            "libraries": library_versions(),
            "model_sha256": hashlib.sha256(blob).hexdigest(),
        }
        folder = self.root / version
        staging = self.root / f".{version}.tmp"
        staging.mkdir()
        (staging / "model.pkl").write_bytes(blob)
        (staging / "meta.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
        staging.replace(folder)
        return version

    def meta(self, version: str) -> dict[str, Any]:
        folder = self._folder(version)
        path = folder / "meta.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RegistryError(f"model {version}: no meta.json in {folder}") from None
        except (OSError, ValueError) as exc:
            raise RegistryError(f"model {version}: unreadable meta.json ({exc})") from None
        if not isinstance(data, dict):
            raise RegistryError(f"model {version}: meta.json is not an object")
        return data

    def list(self) -> list[dict[str, Any]]:
        """Every version's meta, oldest first, with ``promoted`` set on the promoted one."""
        if not self.root.is_dir():
            return []
        current = self.promoted_version()
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue
            try:
                meta = self.meta(folder.name)
            except RegistryError as exc:
                meta = {"version": folder.name, "error": str(exc)}
            meta["promoted"] = folder.name == current
            out.append(meta)
        return out

    def promote(self, version: str) -> None:
        """Make ``version`` the promoted model, after checking it loads and fits the code."""
        self.load(version)
        _atomic_write(self.root / PROMOTED, (version + "\n").encode())

    def promoted_version(self) -> str | None:
        try:
            text = (self.root / PROMOTED).read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def promoted(self) -> FraudModel:
        """The promoted model, checked; ``RegistryError`` when there is none or it is unfit."""
        version = self.promoted_version()
        if version is None:
            raise RegistryError(
                f"no promoted model under {self.root}: run `bourse ml train --home {self.home}`"
            )
        return self.load(version)

    def load(self, version: str) -> FraudModel:
        """One version, its pickle checked against its meta and its features against code."""
        meta = self.meta(version)
        features = meta.get("features")
        if features != list(FEATURES):
            raise RegistryError(_feature_difference(version, features))
        path = self._folder(version) / "model.pkl"
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise RegistryError(f"model {version}: cannot read {path} ({exc})") from None
        if hashlib.sha256(blob).hexdigest() != meta.get("model_sha256"):
            raise RegistryError(
                f"model {version}: {path} does not match the sha256 in its meta.json "
                "(corrupt or changed): refusing to load it"
            )
        try:
            model = pickle.loads(blob)  # noqa: S301 - checked against the registry's sha256
        except Exception as exc:  # a pickle can fail in many ways (missing class, truncation)
            raise RegistryError(f"model {version}: cannot unpickle {path} ({exc})") from None
        if not isinstance(model, FraudModel):
            raise RegistryError(f"model {version}: {path} holds no FraudModel")
        if tuple(model.features) != FEATURES:
            raise RegistryError(_feature_difference(version, list(model.features)))
        return model

    def _folder(self, version: str) -> Path:
        if not _VERSION.match(version) or version == PROMOTED:
            raise RegistryError(f"{version!r} is not a model version")
        folder = self.root / version
        if not folder.is_dir():
            raise RegistryError(f"no model {version} under {self.root}")
        return folder


def _feature_difference(version: str, features: object) -> str:
    if not isinstance(features, list):
        return f"model {version}: its meta.json has no feature list"
    missing = [f for f in FEATURES if f not in features]
    extra = [f for f in features if f not in FEATURES]
    detail = []
    if missing:
        detail.append(f"lacks {', '.join(missing)}")
    if extra:
        detail.append(f"has {', '.join(map(str, extra))} the code does not")
    if not detail:
        detail.append("same features in another order")
    return (
        f"model {version} was trained on other features than the code's FEATURES "
        f"({'; '.join(detail)}): retrain with `bourse ml train`"
    )
