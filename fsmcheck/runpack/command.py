"""``fsmcheck run-pack``: one command for a real VFIO device, no code to write."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click

from ..console import make_console
from ..options import PYTEST_EXIT, quiet_option
from ..verifier.exit_codes import EXIT_INPUT, EXIT_INTERNAL

__all__ = ["run_pack_command", "coverage_lines"]

LINUX_ADAPTER = "fsmcheck.adapters.linux:factory"
VFIO_USER_ADAPTER = "fsmcheck.adapters.vfio_user:factory"
#: The built-in reference device (``--reference``): the v2 reference driver
#: of :mod:`fsmcheck.drivers.reference`, which the pack passes.
REFERENCE_ADAPTER = "fsmcheck.drivers.reference:factory"
# pytest -q's last line: "2804 passed in 13.32s", "3 failed, 2801 passed in ...", "no tests ran in ...".
_PYTEST_SUMMARY = re.compile(r"^(\d+ (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)\b|no tests ran)")


def coverage_lines(log: str) -> list[str]:
    """The coverage summary the pack's pytest plugin printed (the lines after
    its ``fsmcheck coverage`` rule line, up to the next rule line or the
    final pytest summary); empty when none was printed."""
    lines, out, inside = log.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if "fsmcheck coverage" in stripped and stripped.startswith("-"):
            inside = True
            continue
        if inside:
            if stripped.startswith(("===", "---")) or not stripped or _PYTEST_SUMMARY.match(stripped):
                break
            out.append(stripped)
    return out


def missing_device_files(env: dict) -> list[str]:
    """The device files the Linux adapter will open that do not exist, for
    the device named in ``env`` (``FSMCHECK_VFIO_*``, as
    :func:`fsmcheck.adapters.linux.target_from_env` reads it): the container
    ``/dev/vfio/vfio`` and the group, or the cdev and ``/dev/iommu``. Opens
    nothing (opening the device would reset it)."""
    from ..adapters.linux import target_from_env

    return _missing_files(target_from_env(env))


def _missing_files(target) -> list[str]:
    paths = [target.cdev, "/dev/iommu"] if target.cdev else ["/dev/vfio/vfio", target.group]
    return [p for p in paths if not os.path.exists(p)]


def fleet_devices(path: str) -> list[str]:
    """The devices of a ``--fleet`` file (one a line, ``GROUP:NAME`` or a
    cdev path, ``#`` comments), as the pack's ``--fsmcheck-devices`` reads it.

    Raises:
        click.UsageError: the file names no device, names one twice, or a
            line is neither form (:func:`fsmcheck.adapters.linux.target_from_spec`).
    """
    import pytest

    from ..adapters.linux import DeviceRefused, target_from_spec
    from ..pack.plugin import read_devices

    try:
        devices = read_devices([], path)
        for device in devices:
            target_from_spec(device)
    except (pytest.UsageError, DeviceRefused) as exc:
        raise click.UsageError(str(exc)) from None
    return devices


def _vfio_user_probe(template: str, err) -> str:
    """Check a ``--vfio-user-server`` template before any test runs: it
    parses, has ``{socket}``, its program exists, and one server started from
    it creates its socket, answers VERSION and its migration flags (then it
    is stopped). The adapter factory to run the pack with.

    Raises:
        SystemExit(2): the template is unusable or the server did not start
            (one line on stderr, with the server's stderr tail).
    """
    from ..adapters.vfio_user import probe
    from ..adapters.vfio_user_server import ServerError, TemplateError

    try:
        flags = probe(template)
    except (TemplateError, ServerError) as exc:
        err.print(f"error: --vfio-user-server: {exc}; nothing was run", markup=False, highlight=False)
        sys.exit(EXIT_INPUT)
    err.print(f"run-pack: vfio-user server started and answered (migration flags {flags:#x})",
              markup=False, highlight=False)
    return flags


def _suite_for_flags(pack: Path, flags: int) -> Path:
    """The pack's module for the flag set whose value is ``flags`` (the
    other suites would only skip, one server start each); the whole pack when
    no flag set has that value (its flags-defined test then fails)."""
    from ..generate.render import module_name
    from ..model import load_model
    from ..model.shipped import shipped_model_path

    model = load_model(shipped_model_path("vfio_v2"))
    for config in model.configs():
        names = [f for f in model.flag_order if f in config.flags]
        if sum(1 << model.flag_bits[f] for f in names) == flags and (pack / module_name(model.name, names)).is_file():
            return pack / module_name(model.name, names)
    return pack


def _write_pack(directory: Path) -> list[Path]:
    """The v2 pack of the shipped model, written into ``directory`` (other
    ``test_*.py`` there are removed: the run is of this pack alone)."""
    from ..generate.pack import pack_files
    from ..outputs import write_files
    from ..model import load_model
    from ..model.shipped import shipped_model_path

    files = pack_files(load_model(shipped_model_path("vfio_v2")))
    if directory.is_dir():
        for old in directory.glob("test_*.py"):
            if old.name not in files:
                old.unlink()
    return write_files(directory, files)


@click.command("run-pack")
@click.option("--vfio-group", metavar="GROUP", help="The device's IOMMU group: /dev/vfio/N or N (with --device).")
@click.option("--device", metavar="NAME", help="The device's name in the group (a PCI address or an mdev UUID).")
@click.option("--vfio-cdev", metavar="PATH", help="The device's cdev, /dev/vfio/devices/vfioN (iommufd).")
@click.option("--fleet", "devices_file", type=click.Path(dir_okay=False, exists=True),
              help="A fleet: a file of devices, one a line (GROUP:NAME such as /dev/vfio/12:0000:01:00.0, or a "
                   "cdev path; '#' comments). The pack runs with pytest-xdist, one worker per device.")
@click.option("--devices", "devices_alias", type=click.Path(dir_okay=False, exists=True), hidden=True,
              help="The former name of --fleet.")
@click.option("--reference", is_flag=True,
              help="No device: run the whole flow against fsmcheck's built-in reference device (the v2 "
                   "reference driver), to try run-pack and read its results.")
@click.option("--vfio-user-server", "vfio_user_server", metavar="'CMD ARGS {socket}'",
              help="A vfio-user device instead: the command that starts its server, {socket} standing for the "
                   "socket path; one fresh server per device the pack opens (fsmcheck.adapters.vfio_user).")
@click.option("--errata", type=click.Path(dir_okay=False, exists=True),
              help="Known deviations of the driver, reported as xfailed (fsmcheck.pack.errata).")
@click.option("-o", "--output", default="fsmcheck-results", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the pack, junit.xml, coverage.txt, pytest.log and results.html.")
@click.option("--seed", type=int, default=None, help="State-machine seed (default: random, printed).")
@click.option("--adapter", default=LINUX_ADAPTER, hidden=True,
              help="Adapter factory (tests: run the same command against another driver).")
@quiet_option("Do not echo pytest's output (it is still written to OUTPUT/pytest.log); print the summary.")
def run_pack_command(vfio_group, device, vfio_cdev, devices_file, devices_alias, reference, vfio_user_server, errata,
                     output, seed, adapter, quiet):
    """Run the shipped v2 conformance pack against one real VFIO device, or a fleet.

    Name the device by its group and name (--vfio-group /dev/vfio/N
    --device NAME, the legacy container path) or by its cdev (--vfio-cdev
    /dev/vfio/devices/vfioN); or name a fleet with --fleet FILE: the
    pack's tests are shared out over the devices, one pytest-xdist worker
    per device, and the coverage summary is given per device and in total;
    or try it all without a device: --reference runs the pack against the
    built-in reference device; or test a vfio-user device:
    --vfio-user-server 'CMD ARGS {socket}' (fsmcheck.adapters.vfio_user).
    A VFIO device's run goes through fsmcheck.adapters.linux
    with its safety rules (only the device named; refused if in use; reset
    on open and on close; every fd closed). Writes into OUTPUT the pack,
    junit.xml, coverage.txt, pytest.log and results.html (which catalogue
    rules held, which failed with their reproductions, which drew
    advisories).

    Exit codes are fsmcheck's (pytest's mapped onto them): 0 every test
    passed; 1 a test failed, or no test ran; 2 bad options or input (also
    an errata or fleet file pytest refused), before anything runs where it
    can be told; 3 the pytest run broke or was interrupted.
    """
    from ..outputs import check_output, output_dir, write_file
    from .html import results_html
    from .results import junit_cases, rule_outcomes

    err = make_console(False, stderr=True)
    if devices_file and devices_alias:
        raise click.UsageError("name the fleet once: --fleet FILE (--devices is its former name)")
    devices_file = devices_file or devices_alias
    if reference:
        if devices_file or vfio_cdev or vfio_group or device or vfio_user_server is not None \
                or adapter != LINUX_ADAPTER:
            raise click.UsageError("--reference runs the built-in reference device: name no other device")
        adapter = REFERENCE_ADAPTER
    elif vfio_user_server is not None:
        if devices_file or vfio_cdev or vfio_group or device:
            raise click.UsageError("name one target: --vfio-user-server, or a VFIO device (--vfio-cdev, "
                                   "--vfio-group with --device, --fleet)")
        adapter, server_flags = VFIO_USER_ADAPTER, _vfio_user_probe(vfio_user_server, err)
    elif devices_file and (vfio_cdev or vfio_group or device):
        raise click.UsageError("name the devices once: --fleet FILE, or --vfio-cdev / --vfio-group with --device")
    elif vfio_cdev and (vfio_group or device):
        raise click.UsageError("name one device: --vfio-cdev, or --vfio-group with --device, not both")
    elif not devices_file and not vfio_cdev and not (vfio_group and device):
        raise click.UsageError("name the device: --vfio-group /dev/vfio/N --device NAME, or --vfio-cdev PATH "
                               "(or a fleet: --fleet FILE; or no device: --reference)")
    check_output(output, directory=True)
    if errata:  # a bad errata file is one diagnostic, exit 2, before the pack is written or run
        from ..pack.errata import load_errata

        load_errata(errata)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSMCHECK_VFIO_")}
    fleet: list[str] = []
    if reference:
        named = "the built-in reference device (fsmcheck.drivers.reference)"
    elif vfio_user_server is not None:
        from ..adapters.vfio_user import ENV

        env[ENV], named = vfio_user_server, f"vfio-user server {vfio_user_server}"
    elif devices_file:
        from ..adapters.linux import target_from_spec

        fleet = fleet_devices(devices_file)
        named = ", ".join(fleet)
        missing = [f"{d}: {p}" for d in fleet for p in _missing_files(target_from_spec(d))]
    elif vfio_cdev:
        env["FSMCHECK_VFIO_CDEV"] = vfio_cdev
        named = vfio_cdev
    else:
        env["FSMCHECK_VFIO_GROUP"], env["FSMCHECK_VFIO_DEVICE"] = vfio_group, device
        named = f"{vfio_group} {device}"
    if adapter == LINUX_ADAPTER:
        missing = missing if fleet else missing_device_files(env)
        if missing:  # every test would fail to open the device: say so once, run nothing
            err.print(f"error: {named}: no such device file(s): {', '.join(missing)} (is vfio loaded and the "
                      "device bound to a vfio driver?); nothing was run", markup=False, highlight=False)
            sys.exit(EXIT_INPUT)
    out = output_dir(Path(output))
    pack = out / "pack"
    _write_pack(pack)
    junit = out / "junit.xml"
    target = _suite_for_flags(pack, server_flags) if vfio_user_server is not None else pack
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(pack),
           f"--junitxml={junit}", f"--fsmcheck-adapter={adapter}", str(target)]
    if fleet:
        cmd += [f"--fsmcheck-devices={Path(devices_file).resolve()}"] + (["-n", str(len(fleet))] if len(fleet) > 1 else [])
    if errata:
        cmd.append(f"--fsmcheck-errata={errata}")
    if seed is not None:
        cmd.append(f"--fsmcheck-seed={seed}")
    if not quiet:
        err.print(f"run-pack: {' '.join(cmd)}", markup=False, highlight=False)
    log = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            if not quiet:
                sys.stdout.write(line)
            log.append(line)
    pytest_code = proc.returncode
    code = PYTEST_EXIT.get(pytest_code, EXIT_INTERNAL)
    text = "".join(log)
    write_file(out / "pytest.log", text)
    coverage = coverage_lines(text)
    write_file(out / "coverage.txt", "\n".join(coverage) + ("\n" if coverage else ""))
    if junit.is_file():
        outcomes = rule_outcomes(pack, junit_cases(junit))
        page = results_html("fsmcheck run-pack: VFIO v2 conformance", named, outcomes, coverage, code)
        write_file(out / "results.html", page)
        failed = sum(1 for o in outcomes if o.verdict == "failed")
        held = sum(1 for o in outcomes if o.verdict == "held")
        err.print(f"run-pack: {held} rules held, {failed} failed; wrote {junit}, {out / 'coverage.txt'}, "
                  f"{out / 'results.html'} (exit {code})", markup=False, highlight=False)
    else:
        err.print(f"run-pack: pytest wrote no JUnit XML (pytest exit {pytest_code}, fsmcheck exit {code}); "
                  f"see {out / 'pytest.log'}", markup=False)
    sys.exit(code)
