"""`netgpt models ...` and `netgpt cloud ...` commands. Heavy imports (torch, transformers) stay inside the commands."""
import typer

app = typer.Typer(help="Build, fine-tune and inspect the language models.", no_args_is_help=True)
cloud_app = typer.Typer(help="The cloud LLM service (OpenAI API).", no_args_is_help=True)
