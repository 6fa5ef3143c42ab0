"""Action runtimes: the proxies that run inside a container (python/proxy.py, nodejs/proxy.js) and the manifest."""
