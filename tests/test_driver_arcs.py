"""fsmcheck driver-arcs on the in-tree drivers of Linux 6.12 and the NVMe RFC."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fsmcheck.cli import main

from .conftest import MODELS

V2 = str(MODELS / "vfio_v2.toml")

# What each real driver yields: (file, step function, flags, arcs handled).
DRIVERS = [
    ("samples/vfio-mdev/mtty.c", "mtty_step_state", ["P2P", "PRE_COPY", "STOP_COPY"], 15),
    ("drivers/vfio/pci/mlx5/main.c", "mlx5vf_pci_step_device_state_locked", ["P2P", "PRE_COPY", "STOP_COPY"], 15),
    ("drivers/vfio/pci/qat/main.c", "qat_vf_pci_step_device_state", ["P2P", "PRE_COPY", "STOP_COPY"], 15),
    ("drivers/vfio/pci/hisilicon/hisi_acc_vfio_pci.c", "hisi_acc_vf_set_device_state", ["PRE_COPY", "STOP_COPY"], 9),
    ("drivers/vfio/pci/pds/lm.c", "pds_vfio_step_device_state_locked", ["P2P", "STOP_COPY"], 8),
]


def run(*args):
    return CliRunner().invoke(main, ["driver-arcs", "--model", V2, "--json", *args])


@pytest.mark.parametrize("rel, function, flags, count", DRIVERS, ids=[d[1] for d in DRIVERS])
def test_in_tree_driver_is_clean(kernel_tree, rel, function, flags, count):
    result = run(str(kernel_tree / rel))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["function"] == function
    assert doc["flags"] == flags
    assert len(doc["handled"]) == count == len(doc["required"])
    assert doc["missing"] == [] and doc["extra"] == []
    assert doc["session_errors"] == [] and doc["discarded_results"] == []


def test_flags_found_in_another_file_of_the_directory(kernel_tree):
    doc = json.loads(run(str(kernel_tree / "drivers/vfio/pci/pds/lm.c")).output)
    assert doc["flags_declared_at"].endswith("pds/vfio_dev.c:136")
    doc = json.loads(run(str(kernel_tree / "drivers/vfio/pci/mlx5/main.c")).output)
    assert doc["flags_declared_at"].endswith("mlx5/cmd.c:267")


def test_nvme_rfc_patch_names_its_gap(nvme_seed):
    seed = nvme_seed
    result = run(str(seed))
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["function"] == "nvmevf_pci_step_device_state_locked"
    assert doc["flags"] == ["STOP_COPY"] and doc["missing"] == [] and len(doc["handled"]) == 6
    assert doc["discarded_results"] == [
        f"{seed}:740: STOP -> RUNNING discards the result of nvmevf_cmd_resume_device(): "
        "a failed step would be reported as success"]


def test_missing_arc_and_wrong_session_are_errors(kernel_tree, tmp_path):
    text = (kernel_tree / "drivers/vfio/pci/pds/lm.c").read_text()
    branch_start = text.index("\tif (cur == VFIO_DEVICE_STATE_RUNNING_P2P && next == VFIO_DEVICE_STATE_STOP) {")
    branch_end = text.index("\t}\n", branch_start) + 3
    text = text[:branch_start] + text[branch_end:]
    text = text.replace("\t\tpds_vfio_put_save_file(pds_vfio);\n\t\tpds_vfio_dirty_disable(pds_vfio, true);\n"
                        "\t\treturn NULL;", "\t\treturn pds_vfio->save_file->filep;")
    (tmp_path / "pds").mkdir()
    for other in (kernel_tree / "drivers/vfio/pci/pds").glob("*.[ch]"):
        (tmp_path / "pds" / other.name).write_text(other.read_text())
    (tmp_path / "pds" / "lm.c").write_text(text)
    result = run(str(tmp_path / "pds" / "lm.c"))
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["missing"] == [["RUNNING_P2P", "STOP"]]
    assert len(doc["session_errors"]) == 1
    assert "STOP_COPY -> STOP returns a data_fd; the model says 'ends'" in doc["session_errors"][0]


def test_explicit_flags_make_extra_arcs_unreachable(kernel_tree):
    doc = json.loads(run(str(kernel_tree / "samples/vfio-mdev/mtty.c"), "--flags", "STOP_COPY,P2P").output)
    assert doc["missing"] == []
    assert {(a["from"], a["to"]) for a in doc["extra"]} >= {("RUNNING", "PRE_COPY"), ("PRE_COPY", "RUNNING")}
