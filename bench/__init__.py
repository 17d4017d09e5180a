"""Benchmark: rolebook's evaluator and `rolebook serve` against Cedar, Casbin and Cerbos."""
