"""A stand-in installed app whose collector raises, for the /metrics isolation test."""
