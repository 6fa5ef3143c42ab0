"""The `docker://` backend: a runtime proxy in a Docker container, reached over a unix socket."""
