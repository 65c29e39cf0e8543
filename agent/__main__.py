"""`python -m agent`: the CLI lives in agent.cli (imported once, never as __main__)."""

from agent.cli import main

raise SystemExit(main())
