"""What comes in: the paths by which sessions arrive, each handing dicts to the write path."""
