"""LiveKit's TTS plugin acceptance scenarios (``tests/test_tts.py`` of livekit/agents:
synthesize, synthesize_timeout, stream, stream_empty, stream_timeout), rewritten for a local
provider, plus the same checks over a slow and a thin link.

Each scenario runs for our plugin and for ``livekit.plugins.cartesia.TTS`` in the same run,
against the emulator (eSpeak voice) through the real Toxiproxy, with Whisper judging the
words. The official plugin is the baseline: where it is known to fail a scenario, that
case is an ``xfail`` carrying the reason (recorded, not a CI failure); every other case,
ours included, must pass.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from _pytest.mark.structures import ParameterSet
from livekit import rtc
from livekit.agents import APIConnectOptions, APITimeoutError
from livekit.agents import tts as lk_tts
from livekit.agents.metrics import TTSMetrics

from agent.dev.scripted import llm_tokens

from .conftest import TTSFactory, record_result
from .judge import WER_BOUND, WhisperJudge, wer
from .toxiproxy import Proxy

# Our own texts, of the kind LiveKit's suite reads: plain sentences, no numbers, no
# spellings Whisper could render two ways.
PASSAGE = (
    "A small boat drifted past the lights of the harbor as the evening tide came in. "
    "The fishermen counted their nets, folded the wet sails, and walked home along the "
    "quiet road. Nobody said much, because the wind had been cold all day and dinner was "
    "waiting."
)
SHORT = "The train to the city leaves from the second platform in the morning."

# The connect options LiveKit's suite uses.
NORMAL = APIConnectOptions(max_retry=3, timeout=5)
ONE_LONG_TRY = APIConnectOptions(max_retry=0, timeout=2.5)
FOUR_SHORT_TRIES = APIConnectOptions(max_retry=3, timeout=0.5, retry_interval=0.0)
TOKENS_PER_SECOND = 30.0  # the suite's fake LLM pace

# The two windows the suite asserts are the contract itself (a request against a server
# that never answers ends with APITimeoutError after its timeouts, not sooner, not much
# later), so they stay. The lower bounds are LiveKit's. Measured here: 2.50 s and 2.11 s,
# +-0.01 s, also while `make test` loads both cores; the upper bounds get one more second
# as headroom for a CI machine shared with other jobs (Whisper threads, a stalled event
# loop). What the windows are for still lands outside: waiting out a breaker pause (15 s),
# a prewarm's 10 s connect, a 30 s HTTP timeout, or every attempt taking twice its timeout.
SLACK_S = 1.0
ONE_LONG_TRY_WINDOW = (1.5, 3.5 + SLACK_S)
FOUR_SHORT_TRIES_WINDOW = (1.0, 3.0 + SLACK_S)
GUARD_S = 10.0  # the suite's own guard around a timeout run (ours also bounds the retries)

# What the official plugin (1.8.9) fails, found by running it here; the reason is what its
# code does. Only that failure is expected: anything else it does wrong fails the run.
KNOWN_OFFICIAL_FAILURES: dict[str, tuple[str, type[BaseException]]] = {
    "synthesize_timeout": (
        "synthesize() posts to /tts/bytes with ClientTimeout(total=30, "
        "sock_connect=conn_options.timeout): once the connection is accepted, a server that "
        "never answers is waited on for 30 s per attempt, not conn_options.timeout, so the "
        "2.5 s try is still pending at the suite's 10 s guard",
        pytest.fail.Exception,
    ),
}

T = TypeVar("T")


def providers(scenario: str) -> list[ParameterSet]:
    marks = []
    if scenario in KNOWN_OFFICIAL_FAILURES:
        reason, raises = KNOWN_OFFICIAL_FAILURES[scenario]
        marks = [
            pytest.mark.xfail(reason=f"official plugin: {reason}", raises=raises, strict=False)
        ]
    return [pytest.param("ours", id="ours"), pytest.param("official", id="official", marks=marks)]


class Collector:
    """Every ``event`` the TTS emits, in order."""

    def __init__(self, tts: lk_tts.TTS, event: str) -> None:
        self.events: list[Any] = []
        tts.on(event, self.events.append)


async def bounded(work: Coroutine[Any, Any, T], seconds: float) -> T:
    """The suite's guard: a run that hangs is a failure with a clear message."""
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        pytest.fail(f"no result after {seconds:.0f} s")


class Stopwatch:
    """Wall time of a ``with`` block, also when it raises."""

    elapsed = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = self.elapsed_so_far()

    def elapsed_so_far(self) -> float:
        return time.perf_counter() - self._started


# ---------------------------------------------------------------- one request, two ways
async def synthesize(
    tts: lk_tts.TTS, text: str, conn: APIConnectOptions
) -> list[lk_tts.SynthesizedAudio]:
    async with tts.synthesize(text, conn_options=conn) as stream:  # close: metrics settle
        return [ev async for ev in stream]


async def stream(
    tts: lk_tts.TTS, segments: list[str], conn: APIConnectOptions
) -> list[lk_tts.SynthesizedAudio]:
    async with tts.stream(conn_options=conn) as turn:

        async def feed() -> None:
            for segment in segments:
                for token in llm_tokens(segment):
                    turn.push_text(token)
                    await asyncio.sleep(1 / TOKENS_PER_SECOND)  # LLM pacing, the scenario
                turn.flush()
            turn.end_input()

        feeder = asyncio.create_task(feed())
        try:
            events = [ev async for ev in turn]
        finally:
            if not feeder.done():
                feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        assert feeder.done() and not feeder.cancelled(), "the stream ended before its input"
        return events


Request = Callable[[lk_tts.TTS, str, APIConnectOptions], Awaitable[list[lk_tts.SynthesizedAudio]]]


async def stream_one(
    tts: lk_tts.TTS, text: str, conn: APIConnectOptions
) -> list[lk_tts.SynthesizedAudio]:
    return await stream(tts, [text], conn)


# ---------------------------------------------------------------- the suite's invariants
def check_synthesized(events: list[lk_tts.SynthesizedAudio]) -> list[rtc.AudioFrame]:
    """Frames of one synthesize(): request ids set and never interleaved between attempts;
    in the last attempt only the last frame is final, and the last two are 0-250 ms."""
    ids = [ev.request_id for ev in events]
    assert ids and all(ids), "every frame carries a request_id"
    attempts = list(dict.fromkeys(ids))
    assert [rid for rid, _ in itertools.groupby(ids)] == attempts, "attempts interleave"
    last = [ev for ev in events if ev.request_id == attempts[-1]]
    assert len(last) >= 2, "a long text gives more than one frame"
    assert not any(ev.is_final for ev in last[:-1]), "only the last frame may be final"
    assert last[-1].is_final, "the last frame is final"
    assert 0 < last[-2].frame.duration < 0.25, f"second-last frame {last[-2].frame.duration}"
    assert 0 < last[-1].frame.duration < 0.25, f"last frame {last[-1].frame.duration}"
    return [ev.frame for ev in last]


def check_streamed(
    events: list[lk_tts.SynthesizedAudio], segments: list[str]
) -> list[list[rtc.AudioFrame]]:
    """Frames of one stream(): one request_id, one segment_id per pushed segment; in each
    segment only the last frame is final and every frame is 0-250 ms."""
    assert events, "a stream with text gives audio"
    assert events[0].request_id, "frames carry a request_id"
    assert all(ev.request_id == events[0].request_id for ev in events), "one request_id"
    assert all(ev.segment_id for ev in events), "frames carry a segment_id"
    by_segment: dict[str, list[lk_tts.SynthesizedAudio]] = defaultdict(list)
    for ev in events:
        by_segment[ev.segment_id].append(ev)
    assert len(by_segment) == len(segments), "one segment_id per pushed segment"
    for segment_events in by_segment.values():
        *middle, final = segment_events
        assert final.is_final, "a segment ends with a final frame"
        assert not any(ev.is_final for ev in middle), "only a segment's last frame is final"
        assert all(0 < ev.frame.duration < 0.25 for ev in segment_events), "frames of 0-250 ms"
    return [[ev.frame for ev in evs] for evs in by_segment.values()]


def check_format(tts: lk_tts.TTS, frames: list[rtc.AudioFrame]) -> None:
    assert all(f.sample_rate == tts.sample_rate for f in frames), "the TTS's sample rate"
    assert all(f.num_channels == tts.num_channels for f in frames), "the TTS's channels"


async def heard(judge: WhisperJudge, frames: list[rtc.AudioFrame], text: str) -> dict[str, Any]:
    """What Whisper hears in the frames, and its WER against the text."""
    transcript = await asyncio.to_thread(judge.transcribe, frames)
    seconds = sum(f.duration for f in frames)
    return {
        "wer": round(wer(text, transcript), 3),
        "audio_s": round(seconds, 2),
        "heard": transcript,
    }


def metrics_numbers(metrics: list[TTSMetrics]) -> dict[str, Any]:
    numbers: dict[str, Any] = {"metrics": len(metrics)}
    if metrics:
        numbers["ttfb_s"] = round(metrics[0].ttfb, 3)
        numbers["chars"] = metrics[0].characters_count
    return numbers


# ---------------------------------------------------------------- the scenarios
async def speak_once(
    request: pytest.FixtureRequest,
    make_tts: TTSFactory,
    judge: WhisperJudge,
    run: Request,
    text: str,
) -> None:
    """One request with text: the frame invariants, the words, one metrics event, no error."""
    tts = make_tts()
    tts.prewarm()
    metrics = Collector(tts, "metrics_collected")
    errors = Collector(tts, "error")
    try:
        with Stopwatch() as clock:
            events = await bounded(run(tts, text, NORMAL), 30)
    finally:
        await tts.aclose()
    if run is synthesize:
        frames = check_synthesized(events)
    else:
        [frames] = check_streamed(events, [text])
    check_format(tts, frames)
    judged = await heard(judge, frames, text)
    record_result(
        request,
        wer=judged["wer"],
        audio_s=judged["audio_s"],
        **metrics_numbers(metrics.events),
        errors=len(errors.events),
        elapsed_s=round(clock.elapsed, 2),
    )
    assert judged["wer"] <= WER_BOUND, f"Whisper heard {judged['heard']!r}"
    assert len(metrics.events) == 1, f"one request, one metrics event: {metrics.events}"
    assert metrics.events[0].characters_count == len(text)
    assert not errors.events, f"no error on a healthy link: {errors.events}"


async def never_answers(
    request: pytest.FixtureRequest, make_tts: TTSFactory, proxy: Proxy, run: Request
) -> None:
    """Toxiproxy's ``timeout`` toxic: connections open, nothing ever comes back. One long
    try ends in APITimeoutError after its timeout; four short tries after theirs, with one
    error event per attempt and no metrics."""
    proxy.add_toxic("timeout", timeout=0)
    tts = make_tts()
    errors = Collector(tts, "error")
    metrics = Collector(tts, "metrics_collected")
    numbers: dict[str, Any] = {}
    try:
        with Stopwatch() as one, pytest.raises(APITimeoutError):
            try:
                await bounded(run(tts, PASSAGE, ONE_LONG_TRY), GUARD_S)
            finally:
                numbers["one_try_s"] = round(one.elapsed_so_far(), 2)
        errors.events.clear()  # count the second request's alone
        metrics.events.clear()
        with Stopwatch() as four, pytest.raises(APITimeoutError):
            try:
                await bounded(run(tts, PASSAGE, FOUR_SHORT_TRIES), GUARD_S)
            finally:
                numbers["four_tries_s"] = round(four.elapsed_so_far(), 2)
                numbers["errors"] = len(errors.events)
                numbers["metrics"] = len(metrics.events)
    finally:
        record_result(request, **numbers)
        await tts.aclose()
    lo, hi = ONE_LONG_TRY_WINDOW
    assert lo <= one.elapsed <= hi, f"one 2.5 s try timed out after {one.elapsed:.2f} s"
    assert len(errors.events) == 4, f"one error per attempt: {[e.error for e in errors.events]}"
    assert [e.recoverable for e in errors.events] == [True, True, True, False]
    lo, hi = FOUR_SHORT_TRIES_WINDOW
    assert lo <= four.elapsed <= hi, f"four 0.5 s tries ended after {four.elapsed:.2f} s"
    assert not metrics.events, "no request succeeded, so no metrics"


@pytest.mark.parametrize("provider", providers("synthesize"))
async def test_synthesize(
    request: pytest.FixtureRequest, make_tts: TTSFactory, judge: WhisperJudge
) -> None:
    await speak_once(request, make_tts, judge, synthesize, PASSAGE)


@pytest.mark.parametrize("provider", providers("synthesize_timeout"))
async def test_synthesize_timeout(
    request: pytest.FixtureRequest, make_tts: TTSFactory, proxy: Proxy
) -> None:
    await never_answers(request, make_tts, proxy, synthesize)


@pytest.mark.parametrize("provider", providers("stream"))
async def test_stream(
    request: pytest.FixtureRequest, make_tts: TTSFactory, judge: WhisperJudge
) -> None:
    await speak_once(request, make_tts, judge, stream_one, PASSAGE)


@pytest.mark.parametrize("provider", providers("stream_empty"))
async def test_stream_empty(request: pytest.FixtureRequest, make_tts: TTSFactory) -> None:
    """No text at all: the stream ends by itself, with no audio, error or metrics."""
    tts = make_tts()
    metrics = Collector(tts, "metrics_collected")
    errors = Collector(tts, "error")
    try:
        events = await bounded(stream(tts, [], NORMAL), 30)
    finally:
        await tts.aclose()
    record_result(
        request, frames=len(events), errors=len(errors.events), metrics=len(metrics.events)
    )
    assert not events and not errors.events and not metrics.events


@pytest.mark.parametrize("provider", providers("stream_timeout"))
async def test_stream_timeout(
    request: pytest.FixtureRequest, make_tts: TTSFactory, proxy: Proxy
) -> None:
    await never_answers(request, make_tts, proxy, stream_one)


# ---------------------------------------------------------------- slow and thin links
# Not in LiveKit's suite: its Toxiproxy set-up, used for the links a deployment meets.
# A slow link: 150 ms each way (+-50 ms jitter back), like a call across an ocean.
# A thin link: 64 KB/s back, about real time for 24 kHz 16-bit audio sent as base64 JSON.
REQUESTS = {"synthesize": synthesize, "stream": stream_one}


def add_slow_link(proxy: Proxy) -> None:
    proxy.add_toxic("latency", stream="upstream", latency=150, jitter=0)
    proxy.add_toxic("latency", stream="downstream", latency=150, jitter=50)


def add_thin_link(proxy: Proxy) -> None:
    proxy.add_toxic("bandwidth", stream="downstream", rate=64)


@pytest.mark.parametrize("how", list(REQUESTS))
@pytest.mark.parametrize("provider", providers("slow_link"))
async def test_slow_link(
    request: pytest.FixtureRequest,
    make_tts: TTSFactory,
    judge: WhisperJudge,
    proxy: Proxy,
    how: str,
) -> None:
    add_slow_link(proxy)
    await speak_once(request, make_tts, judge, REQUESTS[how], PASSAGE)


@pytest.mark.parametrize("how", list(REQUESTS))
@pytest.mark.parametrize("provider", providers("thin_link"))
async def test_thin_link(
    request: pytest.FixtureRequest,
    make_tts: TTSFactory,
    judge: WhisperJudge,
    proxy: Proxy,
    how: str,
) -> None:
    add_thin_link(proxy)
    await speak_once(request, make_tts, judge, REQUESTS[how], SHORT)
