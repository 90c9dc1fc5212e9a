"""The SQLite store: the only package that imports sqlite_utils."""

from .database import Database

__all__ = ["Database"]
