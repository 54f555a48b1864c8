"""Failures storage reports in its own terms, so services never catch SQLAlchemy's."""

from __future__ import annotations


class Duplicate(Exception):
    """A row would repeat a value that must be unique (a name, a membership)."""
