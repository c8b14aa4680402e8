"""Errand: an execution gateway that lets AI agents act safely."""

__version__ = "0.1.0"
