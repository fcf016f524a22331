import sys

from evonas.cli import main

sys.exit(main())
