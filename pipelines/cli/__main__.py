"""`python -m pipelines.cli` runs the `rag` command."""

import sys

from pipelines.cli import main

sys.exit(main())
