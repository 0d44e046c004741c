"""``python -m noisyfer``: the same command line as ``noisyfer``."""

import sys

from .cli.main import main

sys.exit(main())
