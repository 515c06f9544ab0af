"""``python -m flows.cli``: the console script without its entry point (a copy of the repository in tests)."""
from flows.cli import main

main()
