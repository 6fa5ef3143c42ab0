"""OpenWhisk's entities: pure data and validation, no I/O; the standard library and orjson only
(tests/test_imports.py)."""
