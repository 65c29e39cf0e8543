"""Side-by-side benchmarks of ``plugin_cartesia_ws`` and ``livekit-plugins-cartesia``.

Run ``python -m benchmarks`` (or ``make bench``); see ``benchmarks/README.md``.
"""
