"""Presenting results: terminal tables (rich), JSON and CSV. Nothing here computes metrics."""
