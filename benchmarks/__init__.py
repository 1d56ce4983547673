"""Side-by-side benchmarks of loopline against its peers: ``python benchmarks/run.py``."""
