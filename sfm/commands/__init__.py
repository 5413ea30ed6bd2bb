"""``sfm`` subcommands, one module each (discovered by :func:`sfm.cli.build_parser`)."""
