"""LiveKit worker: Silero VAD + OpenAI STT/LLM + plugin_cartesia_ws TTS."""
