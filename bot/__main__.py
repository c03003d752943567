"""`python -m bot …` is the `golive` command line."""

from bot.adapters.cli import main

raise SystemExit(main())
