"""Run one benchmark script and keep its output for the manual.

``python bench/record.py OUTDIR bench/bench_x.py [ARGS...]`` runs the
script with this interpreter, passes its output through, and writes it to
``OUTDIR/bench_x.txt`` after two header lines (the command, and the UTC
time and load average at its start); ``make docs`` shows those files as the
measured figures (``tools/docs_gen.py``). The file is replaced only when
the script exits 0; the exit code is the script's.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

from fsmcheck.generate.writer import write_file


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: record.py OUTDIR SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    outdir, script, args = Path(argv[0]), argv[1], argv[2:]
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = " ".join(["python", script, *args])
    lines = [f"$ {command}", f"# run {started}, load average {load:.2f} at start, {os.cpu_count()} CPUs"]
    with subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line.rstrip("\n"))
    if proc.returncode != 0:
        return proc.returncode
    write_file(outdir / (Path(script).stem + ".txt"), "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
