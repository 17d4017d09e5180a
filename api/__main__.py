import sys

from rolebook.api.cli import main

sys.exit(main())
