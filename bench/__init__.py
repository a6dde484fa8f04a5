"""Benchmarks: ``python -m bench NAME`` runs ``bench/NAME.py``, prints a table, writes JSON.

Figures are reported as ratios against a baseline measured in the same run, so they mean the
same on a fast or a slow machine.
"""
