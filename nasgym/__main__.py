import sys

from nasgym.runners.cli import main

sys.exit(main())
