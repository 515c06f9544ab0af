"""The ``winnow`` command line: the app and its shared helpers in ``app``, commands grouped by what they do
(``run``: curate, plan, compare, select; ``study``: experiment, tune, feedback; ``mixture``: search, fit, rank,
suggest; ``ops``: ingest, retrain, serve, server, demo-data, prepare-model, settings; ``export``: export, runs)."""
from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from flows.cli import run, study, mixture, ops, export  # noqa: F401  (their commands register on the app, in this order)
from flows.cli.app import app, report_error


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"winnow {version('winnow')}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                          help="print the version and exit")] = None) -> None:
    """Winnow: choose the data to fine-tune a language model on."""


def main() -> None:
    """Runs a command. An expected error (a usage mistake, or a ``WinnowError`` from the CLI, a flow or a task
    on a Dask worker) ends it with one line and exit code 2, its traceback only in the log file. Anything else
    keeps its traceback: that is a bug to report."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    from winnow.errors import WinnowError

    try:
        code = app(prog_name="winnow", standalone_mode=False)
    except NoArgsIsHelpError as e:  # `winnow` alone: the help text, as asked
        e.show()
        sys.exit(0)
    except UsageError as e:
        where = f"winnow {e.ctx.command_path.split(' ', 1)[1]} --help" if e.ctx and " " in e.ctx.command_path \
            else "winnow --help"
        typer.secho(f"error: {e.format_message()} (see `{where}`)", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except ClickException as e:
        typer.secho(f"error: {e.format_message()}", fg=typer.colors.RED, err=True)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except WinnowError as e:
        report_error(str(e))
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
