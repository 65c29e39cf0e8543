"""The local stack: stand-ins and tooling for running the worker on this machine (LiveKit's
server, an OpenAI-compatible server, local STT, an offline LLM, a room participant, the
worker as a child process, the browser playground). It imports the product; the product
never imports it."""
