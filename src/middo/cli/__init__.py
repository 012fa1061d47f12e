"""The `middo` command line (Typer): one module per command group."""
