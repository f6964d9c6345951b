"""Benchmarks and tools run from the checkout; a package so `scripts.gpu_check` wins over any other `scripts`."""
