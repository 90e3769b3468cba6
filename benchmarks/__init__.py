"""Benchmarks of cogment against the raw gRPC floor."""
