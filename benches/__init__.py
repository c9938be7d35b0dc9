"""Benchmark commands (``liveshop bench drop|fanout|relay``): they drive a real server like
its users do and print one JSON line. Their helpers (synthetic media, child processes)
live here too, so that no product package ships a load generator. May import anything;
nothing of the product imports this package.
"""
