"""`python -m trainer.cli ...` is the `dhrd` command."""

import sys

from . import main

sys.exit(main())
