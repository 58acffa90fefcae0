import sys

from peftrun.cli import main

sys.exit(main())
