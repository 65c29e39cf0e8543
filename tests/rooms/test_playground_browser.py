"""The playground page in a real browser: headless Chromium (Debian's) joins a room through
the real LiveKit server, with a fake microphone playing eSpeak speech, and talks to the
worker; the page itself measures what it plays.

Driver: Playwright for Python, launching /usr/bin/chromium (it never downloads a browser
here). It runs on this test session's event loop, so the test drives the page, the scripted
STT/LLM and the emulator's records in one place; `wait_for_function` waits on the page's
own state instead of sleeping; and the page's data comes back as JSON. Selenium would need
a chromedriver matching Chromium's version, and raw DevTools Protocol would mean rewriting
what Playwright already does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from livekit import api

from agent.dev.audio_io import write_wav
from agent.dev.playground import PLAYGROUND_JOBS, PlaygroundServer, build_page, bundle_is_stale
from agent.dev.room_user import HEARD_RATE
from agent.dev.worker_process import REPO_ROOT
from agent.simulate import USER_RATE, espeak_utterance

from .conftest import IN_CI, Stack
from .test_voice_turn import AFTER_STOP, STOP, STORY, new_records, record_pcm

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PAGE_AGENT = "playground-test"
SCREENSHOT = REPO_ROOT / "out" / "playground.png"
QUESTION = "Tell me a story."
# Where the barge-in starts, after the end of the question. The agent's first audio comes
# ~2-4 s after the question; LiveKit ignores interruptions for the first 3 s of the first
# reply (AEC warm-up), and the story's LLM stream (0.15 s a token) runs ~12 s, so at 9 s
# the story is playing, interruptible, and its Cartesia context still open.
BARGE_IN_AFTER_S = 9.0
TAIL_S = 30.0  # silence after the barge-in: Chromium loops the file, the test ends first
TIMEOUT_MS = 60_000


def fake_mic_wav(path: Path) -> Path:
    """Question, silence, barge-in, long silence: what the fake microphone plays, from the
    moment the page opens it."""

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * USER_RATE), np.int16)

    parts = [
        silence(0.3),
        espeak_utterance(QUESTION).pcm,
        silence(BARGE_IN_AFTER_S),
        espeak_utterance(STOP).pcm,
        silence(TAIL_S),
    ]
    write_wav(str(path), np.concatenate(parts), USER_RATE)
    return path


def require(ok: bool, missing: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{missing}; CI must run the browser test")
    pytest.skip(missing)


@pytest.fixture(scope="module")
def page_bundle() -> None:
    """The page as `make playground` builds it (npm ci + esbuild) when missing or stale."""
    if bundle_is_stale():
        require(shutil.which("npm") is not None, "npm not found: cannot bundle the playground")
        build_page()


@contextlib.asynccontextmanager
async def page_server(stack: Stack, name: str, **env: str) -> AsyncIterator[PlaygroundServer]:
    """The page, and a worker of its own with the playground's job slots: the room
    outlives the page by the server's departure timeout, and the other tests' worker should
    not count it as a busy slot."""
    jobs = str(PLAYGROUND_JOBS)
    worker = await stack.start_worker(name, AGENT_NAME=name, WORKER_MAX_JOBS=jobs, **env)
    server = await PlaygroundServer(stack.settings(), name).start()
    try:
        yield server
    finally:
        await server.aclose()
        settings = stack.settings()
        async with api.LiveKitAPI(
            stack.server.http_url, settings.livekit_api_key, settings.livekit_api_secret
        ) as lk:
            for room in server.rooms:  # ends the agent's job now, so the worker stops at once
                with contextlib.suppress(api.TwirpError):  # a room already closed
                    await lk.room.delete_room(api.DeleteRoomRequest(room=room))
        worker.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def playground(stack: Stack, page_bundle: None) -> AsyncIterator[PlaygroundServer]:
    async with page_server(stack, PAGE_AGENT) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        async_playwright = None
    require(async_playwright is not None, "playwright not installed: pip install -e '.[dev]'")
    assert async_playwright is not None
    wav = fake_mic_wav(tmp_path / "mic.wav")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            viewport={"width": 1000, "height": 640},
            permissions=["microphone"],
            args=[
                "--no-sandbox",  # root in CI
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            yield context
        finally:
            await context.close()


async def test_talk_to_the_agent_in_the_browser(
    stack: Stack, playground: PlaygroundServer, browser: Any
) -> None:
    stack.script.transcript = QUESTION
    stack.script.replies[QUESTION] = STORY
    stack.script.replies[STOP] = AFTER_STOP
    stack.openai.token_interval = 0.15  # the story's context is still open at the barge-in
    before = set(stack.emulator.records)
    page = browser.pages[0] if browser.pages else await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(playground.url)
        await page.click("#connect")
        await wait(page, "playground.connection === 'connected'")
        await wait(page, "playground.agent !== null")
        # the page opens the mic when the agent listens: the fake mic's file starts there
        await wait(page, "playground.speech.user.length >= 1")
        # the story plays in the page: its level is measured on the remote track
        await wait(page, "playground.speech.agent.length >= 1")
        stack.script.transcript = STOP  # what the STT hears next: the barge-in
        answered = f"t => t.who === 'agent' && t.text.includes({AFTER_STOP!r})"
        await wait(page, f"playground.transcript.some({answered})")
        await wait(page, "playground.turns.length >= 2")
        view = await page.evaluate("playground")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT))
        await page.click("#connect")  # Disconnect: the agent's session ends with the room
        await wait(page, "playground.connection === 'disconnected'")
    finally:
        stack.openai.token_interval = 0.02
    assert not errors, errors
    assert view["error"] is None

    # both sides' words, in order, in the page's transcript
    said = [(t["who"], t["text"].strip()) for t in view["transcript"] if t["final"]]
    assert said[0] == ("user", QUESTION)
    assert ("agent", AFTER_STOP) in said and ("user", STOP) in said
    story_text = next(t for who, t in said if who == "agent")
    assert STORY.startswith(story_text) and len(story_text) < len(STORY)  # cut short

    # the story was heard, and the barge-in stopped it long before its end
    (story,) = [r for r in new_records(stack, before) if STORY.startswith(r.transcript.strip())]
    # paced, the story went out in several contexts and its end was never sent: its full
    # length is estimated from the rate of what was synthesized
    family = [r for r in new_records(stack, before) if r.context_id.startswith(story.context_id)]
    synthesized_s = sum(len(record_pcm(r)) for r in family) / HEARD_RATE
    sent = "".join(r.transcript for r in family)
    full_s = synthesized_s * len(STORY) / max(len(sent), 1)
    user, agent = view["speech"]["user"], view["speech"]["agent"]
    barge_in = user[1]
    story_spans = [s for s in agent if s[0] < barge_in[0]]
    heard_s = (story_spans[-1][1] - story_spans[0][0]) / 1000
    assert heard_s > 1.0, story_spans
    assert story_spans[-1][1] > barge_in[0]  # it was playing when the user spoke up
    assert heard_s < full_s - 2.0, (heard_s, full_s)
    assert family[-1].cancelled
    # one latency per turn, each measured after the user fell silent
    assert len(view["turns"]) == 2 and all(t["latencyMs"] > 0 for t in view["turns"])


GREETING = (
    "Hello! I am the playground's agent. I will keep talking for a while, so that you can "
    "disconnect while I speak. One, two, three, four, five, six, seven, eight, nine, ten."
)


async def test_the_page_gets_an_agent_after_a_reload_a_reconnect_and_in_a_second_tab(
    stack: Stack, page_bundle: None, browser: Any
) -> None:
    """Issue 22: each of these left "agent not joined" for 25-30 s (one job slot, the old
    room still closing, LiveKit's dispatch not retried: `no servers available`). Also: a
    Disconnect while the agent talks throws nothing, and leaves no meter lit and no line
    grey; the page asks for no favicon."""
    server_log = stack.server.log_path
    assert server_log is not None
    refused_before = server_log.read_text().count("no servers available")
    errors: list[str] = []
    failed: list[str] = []

    def watch(page: Any) -> Any:
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        return page

    async with page_server(stack, "playground-again", AGENT_GREETING=GREETING) as server:
        page = watch(browser.pages[0] if browser.pages else await browser.new_page())
        await page.goto(server.url)
        await page.click("#connect")
        await wait(page, "playground.agent !== null")
        # Disconnect while the agent talks (its greeting), then Connect at once
        await wait(page, "playground.agentState === 'speaking'")
        await wait(page, "playground.transcript.some(t => t.who === 'agent')")
        await page.click("#connect")
        await wait(page, "playground.connection === 'disconnected'")
        settled = await page.evaluate(
            "[document.getElementById('agent-level').style.width,"
            " playground.transcript.every(t => t.final)]"
        )
        assert settled == ["0%", True]
        await page.click("#connect")
        await wait(page, "playground.agent !== null")
        # a reload
        await page.reload()
        await page.click("#connect")
        await wait(page, "playground.agent !== null")
        # a second tab, while the first one stays in its room
        second = watch(await browser.new_page())
        await second.goto(server.url)
        await second.click("#connect")
        await wait(second, "playground.agent !== null")
        for tab in (page, second):
            await tab.click("#connect")
            await wait(tab, "playground.connection === 'disconnected'")
        await second.close()
        views = [await page.evaluate("playground")]
    assert not errors, errors
    assert failed == []  # no favicon.ico 404
    assert views[0]["notice"] is None and views[0]["error"] is None
    assert len(server.rooms) == 4
    assert server_log.read_text().count("no servers available") == refused_before


async def wait(page: Any, condition: str) -> None:
    """Wait until `condition` holds in the page; on timeout, fail with what the page shows."""
    from playwright.async_api import TimeoutError as PageTimeout

    try:
        await page.wait_for_function(f"() => {condition}", timeout=TIMEOUT_MS)
    except PageTimeout:
        view = await page.evaluate("JSON.stringify(playground)")
        pytest.fail(f"the page never got to {condition!r}; it shows {view}")
