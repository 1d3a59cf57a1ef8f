"""File storage behind a small interface: local files in the instance folder for now.

Keys are random; a key never reveals the organization or the original file name, and
files are only ever served through views that check who may see them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app


class Storage(Protocol):
    def save(self, data: bytes, suffix: str = "") -> str: ...
    def open(self, key: str) -> BinaryIO: ...
    def path(self, key: str) -> Path: ...
    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files under one folder, named by random keys."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise ValueError("bad storage key")
        return self.root / key[:2] / key

    def save(self, data: bytes, suffix: str = "") -> str:
        key = secrets.token_hex(16) + suffix
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return key

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def path(self, key: str) -> Path:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def storage(app: Flask | None = None) -> Storage:
    """The app's file storage (STORAGE_DIR, by default instance/files)."""
    app = app or current_app
    store = app.extensions.get("inclusive.storage")
    if store is None:
        store = LocalStorage(app.config.get("STORAGE_DIR") or Path(app.instance_path) / "files")
        app.extensions["inclusive.storage"] = store
    return store
