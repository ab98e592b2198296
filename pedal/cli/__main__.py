"""`python -m pedal.cli` is `pedal`."""
import sys

from . import main

sys.exit(main())
