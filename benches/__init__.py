"""Benchmark commands (`liveshop bench ...`): they drive a real server like its users do."""
