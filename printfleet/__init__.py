"""The `printfleet` command line: one module per subcommand, each a thin front over a package."""
