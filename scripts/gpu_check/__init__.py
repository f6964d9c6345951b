"""The GPU device check's parts (scripts/device_check.py is its entry point; docs/benchmarks.md, "GPU")."""
