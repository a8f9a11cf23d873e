import sys

from pose_stream.cli.main import console_main

sys.exit(console_main())
