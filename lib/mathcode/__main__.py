import sys

from mathcode.cli import main

sys.exit(main())
