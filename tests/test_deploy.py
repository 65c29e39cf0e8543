"""The deployment files say what the worker does: deploy/kubernetes/worker.yaml probes the
port the worker serves its health check on (the Dockerfile's too), gives a drain longer
than the worker's own bound, sets only real settings, takes secrets from a Secret, and
requests what the density benchmark measured per session."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from agent import worker
from agent.settings import ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "deploy" / "kubernetes" / "worker.yaml"
DENSITY = ROOT / "benchmarks" / "results" / "density.json"
SECRETS = {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "CARTESIA_API_KEY", "OPENAI_API_KEY"}


def container() -> tuple[dict[str, Any], dict[str, Any]]:
    spec = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["spec"]["template"]["spec"]
    (only,) = spec["containers"]
    return spec, only


def env_values(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c["env"] if "value" in e}


def quantity(text: str) -> float:
    """Kubernetes CPU ("1", "500m") in cores, memory ("2Gi", "512Mi") in MiB."""
    units = {"m": 0.001, "Mi": 1.0, "Gi": 1024.0}
    m = re.fullmatch(r"([\d.]+)(m|Mi|Gi)?", text)
    assert m, text
    return float(m.group(1)) * units.get(m.group(2) or "", 1.0)


def test_every_variable_is_a_setting_and_secrets_come_from_a_secret() -> None:
    _, c = container()
    names = [e["name"] for e in c["env"]]
    assert set(names) <= set(ENV_NAMES), set(names) - set(ENV_NAMES)
    for e in c["env"]:
        if e["name"] in SECRETS:
            assert "value" not in e and "secretKeyRef" in e["valueFrom"], e["name"]
    # the values parse as the worker parses them
    Settings.from_env(env_values(c), dotenv_path=None)


def test_probes_use_the_workers_health_port_as_the_image_does() -> None:
    _, c = container()
    port = int(env_values(c)["WORKER_PORT"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        target = c[probe]["httpGet"]
        assert target["path"] == "/"
        assert ports[target["port"]] == port
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"EXPOSE {port}" in dockerfile
    assert f"127.0.0.1:{port}/" in dockerfile  # the image's HEALTHCHECK
    # the image's command is the worker's: the manifest does not replace it
    assert 'CMD ["python", "-m", "agent", "start"]' in dockerfile
    assert "command" not in c and "args" not in c


def test_the_grace_period_outlasts_the_workers_drain() -> None:
    spec, c = container()
    settings = Settings.from_env(env_values(c), dotenv_path=None)
    drain = worker.server_options(settings).drain_timeout
    assert drain == int(env_values(c)["WORKER_DRAIN_TIMEOUT"])
    assert spec["terminationGracePeriodSeconds"] > drain


def test_resources_cover_the_measured_sessions() -> None:
    _, c = container()
    values = env_values(c)
    sessions = int(values["WORKER_MAX_JOBS"])
    case = f"ours-{values['WORKER_JOB_EXECUTOR']}"
    measured = json.loads(DENSITY.read_text(encoding="utf-8"))["cases"][case]
    cpu, mem = measured["cpu_per_session_at_best"], measured["pss_per_session_mb_at_best"]
    requests = c["resources"]["requests"]
    assert quantity(requests["cpu"]) >= sessions * cpu, (requests, sessions, cpu)
    assert quantity(requests["memory"]) >= sessions * mem, (requests, sessions, mem)
    assert quantity(c["resources"]["limits"]["memory"]) > quantity(requests["memory"])
