"""placeholder: filled in by #19 (docs/compute.md)."""
import typer

app = typer.Typer(no_args_is_help=True)
