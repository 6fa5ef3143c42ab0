"""The `process://` backend: a runtime proxy as a local process, optionally sandboxed (bwrap, seccomp, cgroups)."""
