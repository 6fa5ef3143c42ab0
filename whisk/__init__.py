"""whisk: an Apache OpenWhisk-compatible function-as-a-service platform in one asyncio program."""

__version__ = "0.1.0"
