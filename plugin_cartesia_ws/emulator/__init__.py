"""Offline Cartesia TTS emulator."""
