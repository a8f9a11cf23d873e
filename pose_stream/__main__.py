import sys

from pose_stream.cli.main import main

sys.exit(main())
