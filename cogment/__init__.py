"""Cogment Python SDK."""
