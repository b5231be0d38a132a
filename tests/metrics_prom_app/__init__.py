"""A stand-in installed app with a prometheus.py, for the /metrics discovery tests."""
