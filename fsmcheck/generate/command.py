"""``fsmcheck generate``: compile verified models into a pytest conformance pack."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..console import make_console
from ..model.options import MODEL, load_or_report
from ..options import no_color_option, quiet_option
from ..verifier.exit_codes import EXIT_INPUT, EXIT_OK

__all__ = ["generate"]


@click.command()
@click.argument("models", nargs=-1, type=MODEL)
@click.option("-o", "--output", default="generated_tests", show_default=True, type=click.Path(file_okay=False),
              help="Directory of the pack.")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 if the pack in OUTPUT is stale or missing.")
@click.option("--no-verify", is_flag=True, help="Generate even if a property fails (not recommended).")
@quiet_option("Print only errors and the summary line (not each file written).")
@no_color_option()
def generate(models, output, check_only, no_verify, quiet, no_color):
    """Compile verified MODELS into pytest conformance modules in OUTPUT.

    Without MODELS, the models named in the stamps of the pack already in
    OUTPUT are used (so `fsmcheck generate --check` checks a committed pack),
    else the shipped models/*.toml. Each model is verified first (both
    engines); a model whose properties do not all hold is not compiled
    (exit 1) unless --no-verify. Output is
    byte-identical on every run and stamped with the model's SHA-256 and the
    fsmcheck version. Run the pack with `pytest OUTPUT
    [--fsmcheck-adapter=module:factory]`.
    """
    from ..model.shipped import shipped_model_path
    from ..verifier.verify import verify_model
    from ..verifier.verify_report import exit_code
    from .pack import pack_files, stamped_models, unshipped_stamps
    from ..outputs import check_output
    from .writer import stale_files, write_files

    out, err = make_console(no_color), make_console(no_color, stderr=True)
    directory = Path(output)
    if not check_only:
        check_output(directory, directory=True)
    if not models:
        unshipped = unshipped_stamps(directory) if directory.is_dir() else []
        if unshipped:
            err.print(f"{directory}: the pack was generated from model(s) {', '.join(unshipped)}, which fsmcheck "
                      "does not ship: name their files (fsmcheck generate MODEL.toml ...)", markup=False)
            sys.exit(EXIT_INPUT)
        found = stamped_models(directory) if directory.is_dir() else []
        if not found:
            found = [shipped_model_path(name) for name in ("vfio_v1", "vfio_v2")]
        models = tuple(str(p) for p in found)
    files, code = {}, EXIT_OK
    for path in models:
        model = load_or_report(path, err)
        if model is None:
            sys.exit(EXIT_INPUT)
        if not no_verify:
            results = verify_model(model)
            verdict = exit_code(results)
            if verdict != EXIT_OK:
                failing = ", ".join(f"{r.prop.name} [{r.config}]" for r in results if r.status != "holds")
                err.print(f"{path}: not generated: properties do not hold: {failing}", markup=False)
                sys.exit(verdict)
        try:
            files.update(pack_files(model))
        except ValueError as exc:
            err.print(f"{path}: {exc}", markup=False)
            sys.exit(EXIT_INPUT)
    if check_only:
        stale = stale_files(directory, files)
        for name in stale:
            out.print(f"stale: {directory / name}", markup=False)
        if stale:
            out.print(f"the pack in {directory} is stale: run fsmcheck generate {' '.join(models)} -o {output}",
                      markup=False)
            sys.exit(1)
        out.print(f"the pack in {directory} is current ({len(files)} modules)", markup=False)
        sys.exit(EXIT_OK)
    written = write_files(directory, files)
    if not quiet:
        for path in written:
            out.print(f"wrote {path}", markup=False)
    out.print(f"generated {len(files)} modules in {directory}", markup=False)
    sys.exit(code)
