"""The order domain in plain Python: commands, events, aggregates and decisions."""
