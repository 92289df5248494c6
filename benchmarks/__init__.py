"""Benchmarks (``make bench``): each prints its figure and a ratio to a baseline run alongside."""
