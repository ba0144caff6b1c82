"""Benchmark harness: seeding, the ceiling reference app and the load driver."""
