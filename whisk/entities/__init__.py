"""OpenWhisk's entities: pure data and validation, standard library only, no I/O."""
