"""The `hda` command line: one module per subcommand, `main` only dispatches."""
