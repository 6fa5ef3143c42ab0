"""Container backends behind one port (`base.py`): `process/` runs a runtime proxy as a local process, `docker/` in a
Docker container. The pool (`whisk/containerpool/`) imports only the port; whisk/roles.py picks the backend."""
