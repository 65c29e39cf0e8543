"""The real livekit-plugins-openai clients against the local OpenAI-compatible fake."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, APIStatusError, llm
from livekit.plugins import openai

from tests.fakes import FakeOpenAI, TranscriptionRequest, llm_tokens

REPLY = "Sure! It's sunny and 22 degrees in Paris today, with a light breeze."
NO_RETRY = APIConnectOptions(max_retry=0, timeout=5.0)


def _chat_ctx(user_text: str) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="You are terse.")
    ctx.add_message(role="user", content=user_text)
    return ctx


def _speechlike(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # syllable-rate loudness changes
    wave = np.sin(2 * np.pi * 140 * t) + 0.5 * np.sin(2 * np.pi * 700 * t)
    return (envelope * wave * 8000).astype(np.int16)


def test_llm_tokens_is_gpt_like_and_lossless() -> None:
    assert llm_tokens("Hello, world!") == ["Hello", ",", " world", "!"]
    assert llm_tokens("It's 2024.") == ["It", "'s", " ", "202", "4", "."]
    assert "".join(llm_tokens(REPLY)) == REPLY
    assert llm_tokens("Set OPENAI_API_KEY_2.") == [
        "Set", " OPENAI", "_", "API", "_", "KEY", "_", "2", ".",
    ]  # fmt: skip


async def test_llm_streams_the_scripted_reply() -> None:
    async with FakeOpenAI(replies=[REPLY], ttft=0.1, token_interval=0.005) as fake:
        model = openai.LLM(model="gpt-4o-mini", base_url=fake.base_url, api_key="test")
        metrics: list = []
        model.on("metrics_collected", metrics.append)
        deltas: list[str] = []
        usage = None
        try:
            async with model.chat(
                chat_ctx=_chat_ctx("Weather in Paris?"), conn_options=NO_RETRY
            ) as stream:
                async for chunk in stream:
                    if chunk.delta and chunk.delta.content:
                        deltas.append(chunk.delta.content)
                    if chunk.usage:
                        usage = chunk.usage
        finally:
            await model.aclose()

    assert "".join(deltas) == REPLY
    # streamed token by token, not in one piece
    assert deltas == llm_tokens(REPLY)
    assert usage is not None and usage.completion_tokens == len(deltas)

    (request,) = fake.chat_requests
    assert request["model"] == "gpt-4o-mini"
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    (m,) = metrics
    assert m.ttft >= 0.1  # the fake's time to first token is a lower bound
    assert m.completion_tokens == len(deltas)


async def test_llm_replies_in_order_then_repeats_the_last() -> None:
    async with FakeOpenAI(replies=["One.", "Two."], ttft=0.0, token_interval=0.0) as fake:
        model = openai.LLM(model="m", base_url=fake.base_url, api_key="test")
        got = []
        try:
            for _ in range(3):
                async with model.chat(chat_ctx=_chat_ctx("next"), conn_options=NO_RETRY) as s:
                    got.append((await s.collect()).text)
        finally:
            await model.aclose()
    assert got == ["One.", "Two.", "Two."]


async def test_llm_reply_can_depend_on_the_messages() -> None:
    def echo(messages: list[dict]) -> str:
        return f"You said: {messages[-1]['content']}"

    async with FakeOpenAI(replies=echo, ttft=0.0, token_interval=0.0) as fake:
        model = openai.LLM(model="m", base_url=fake.base_url, api_key="test")
        try:
            async with model.chat(chat_ctx=_chat_ctx("ping"), conn_options=NO_RETRY) as s:
                assert (await s.collect()).text == "You said: ping"
        finally:
            await model.aclose()


async def test_wrong_api_key_is_a_401_status_error() -> None:
    async with FakeOpenAI(api_key="right", ttft=0.0) as fake:
        model = openai.LLM(model="m", base_url=fake.base_url, api_key="wrong")
        try:
            with pytest.raises(APIStatusError) as e:
                async with model.chat(chat_ctx=_chat_ctx("hi"), conn_options=NO_RETRY) as s:
                    await s.collect()
        finally:
            await model.aclose()
    assert e.value.status_code == 401
    assert not e.value.retryable


async def test_non_streaming_chat_completion() -> None:
    async with FakeOpenAI(replies=[REPLY], ttft=0.0, token_interval=0.0) as fake:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{fake.base_url}/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            ) as resp:
                body = await resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": REPLY, "refusal": None}
    assert body["usage"]["completion_tokens"] == len(llm_tokens(REPLY))


@pytest.mark.parametrize(
    ("model", "response_format"),
    [("whisper-1", "verbose_json"), ("gpt-4o-mini-transcribe", "json")],
)
async def test_stt_recognizes_a_wav_buffer(model: str, response_format: str) -> None:
    pcm = _speechlike(1.2)
    frames = [
        rtc.AudioFrame(chunk.tobytes(), 16000, 1, len(chunk)) for chunk in np.array_split(pcm, 6)
    ]
    seen: list[TranscriptionRequest] = []

    def transcribe(req: TranscriptionRequest) -> str:
        seen.append(req)
        return "what is the weather like today"

    async with FakeOpenAI(transcripts=transcribe) as fake:
        stt = openai.STT(model=model, base_url=fake.base_url, api_key="test", language="en")
        assert not stt.capabilities.streaming  # the HTTP endpoint, one WAV per utterance
        try:
            event = await stt.recognize(buffer=frames, conn_options=NO_RETRY)
        finally:
            await stt.aclose()

    assert event.alternatives[0].text == "what is the weather like today"
    (req,) = seen
    assert req.fields["model"] == model
    assert req.fields["response_format"] == response_format
    assert req.fields["language"] == "en"
    assert req.content_type == "audio/wav" and req.filename.endswith(".wav")
    # the WAV carries exactly the audio we gave the plugin
    assert (req.sample_rate, req.num_channels) == (16000, 1)
    assert req.duration == pytest.approx(1.2, abs=1e-3)
    assert np.array_equal(req.pcm, pcm)


async def test_transcripts_list_is_used_in_order() -> None:
    frame = rtc.AudioFrame(_speechlike(0.3).tobytes(), 16000, 1, 4800)
    async with FakeOpenAI(transcripts=["first", "second"]) as fake:
        stt = openai.STT(model="whisper-1", base_url=fake.base_url, api_key="test")
        try:
            texts = [
                (await stt.recognize(buffer=[frame], conn_options=NO_RETRY)).alternatives[0].text
                for _ in range(3)
            ]
        finally:
            await stt.aclose()
        await fake.wait_for_requests(transcriptions=3, timeout=1)
    assert texts == ["first", "second", "second"]


async def test_transcription_rejects_a_request_without_audio() -> None:
    async with FakeOpenAI() as fake:
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("model", "whisper-1")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{fake.base_url}/audio/transcriptions", data=form) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["param"] == "file"
        assert fake.transcription_requests == []
