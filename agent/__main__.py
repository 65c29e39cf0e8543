"""`python -m agent`: runs agent.cli (imported once, never as __main__)."""

from agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
