"""Workload generators and throughput measurement."""
