"""The `pose-stream` command line: a thin layer over the library, one module per subcommand (`register`, `run`).
May import: any pose_stream package (heavy ones inside the function that runs a subcommand); nothing imports cli/.
"""
