"""The local stack for development and tests: never imported by the worker itself."""
