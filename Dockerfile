# The LiveKit worker (python -m agent start). Build: docker build -t voice-agent .
# Run:  docker run --env-file .env -p 8081:8081 voice-agent
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# an unprivileged user; job processes inherit it
RUN useradd --create-home --uid 10001 agent
WORKDIR /app

# the plugin (the wheel) with the worker's extra, pinned like CI; agent/ is the application
# and runs from /app. The Silero VAD model ships inside its wheel: nothing is downloaded
# at run time
COPY pyproject.toml README.md constraints.txt ./
COPY plugin_cartesia_ws ./plugin_cartesia_ws
RUN pip install -c constraints.txt ".[worker]"
COPY agent ./agent

USER agent
# the worker's health check: GET / -> "OK" (503 once the LiveKit connection has failed),
# GET /worker -> JSON with agent_name and worker_load
EXPOSE 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8081/', timeout=4).status != 200)"

# LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, CARTESIA_API_KEY, OPENAI_API_KEY, ...
# come from the environment (docker run --env-file .env, or the orchestrator's secrets).
CMD ["python", "-m", "agent", "start"]
