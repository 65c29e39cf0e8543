"""Issue 22: a worker on the local stand-ins logs their names, not OpenAI's defaults
("llm": "gpt-4o-mini" while the offline echo answered)."""

from __future__ import annotations

from agent.dev.local_stack import echo_openai, worker_env
from agent.settings import Settings


async def test_a_worker_on_the_local_stand_ins_names_them() -> None:
    livekit = Settings(
        livekit_url="ws://127.0.0.1:7880", livekit_api_key="k", livekit_api_secret="s"
    )
    async with echo_openai(None, lambda: "hello") as fake:
        env = worker_env(livekit, openai=fake)
        components = Settings.from_env(env, dotenv_path=None).components()
    assert components["llm"] == f"offline-echo-llm at {fake.base_url}"
    assert components["stt"] == f"fixed-transcript at {fake.base_url}"
