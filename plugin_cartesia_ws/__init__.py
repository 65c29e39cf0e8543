"""Streaming Cartesia WebSocket TTS for LiveKit Agents."""
