"""Built-in workloads; each module is a template to copy for your own (see bench.workload)."""
