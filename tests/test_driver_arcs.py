"""fsmcheck driver-arcs on the in-tree drivers of Linux 6.12 and the NVMe RFC."""

from __future__ import annotations

import json

import pytest


from .conftest import MODELS, cli, progress_lines

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
    return cli("driver-arcs", "--model", V2, "--json", *args)


@pytest.mark.slow
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


# --- callees declared outside the driver's folder (issue 15) -------------------

_XE_HEADER = """\
/* SPDX-License-Identifier: MIT */
#ifndef _XE_SRIOV_VFIO_H_
#define _XE_SRIOV_VFIO_H_
struct xe_device;
int xe_sriov_vfio_stop_copy_enter(struct xe_device *xe, unsigned int vfid);
int xe_sriov_vfio_stop_copy_exit(struct xe_device *xe, unsigned int vfid);
int xe_sriov_vfio_resume_enter(struct xe_device *xe, unsigned int vfid);
int xe_sriov_vfio_resume_exit(struct xe_device *xe, unsigned int vfid);
int xe_sriov_vfio_run(struct xe_device *xe, unsigned int vfid);
int xe_sriov_vfio_stop(struct xe_device *xe, unsigned int vfid);
#endif
"""

# A driver in the shape of the Xe VF migration driver: it ignores the int
# results of the two *_exit() calls on STOP_COPY -> STOP and RESUMING -> STOP.
_XE_DRIVER = """\
#include <linux/vfio.h>
#include <drm/intel/xe_sriov_vfio.h>
#include "xe_local.h"

static void xe_vfio_log(struct xe_vfio_pci_core_device *xe_vdev);

static struct file *
xe_vfio_set_state(struct xe_vfio_pci_core_device *xe_vdev, u32 new)
{
	u32 cur = xe_vdev->mig_state;
	int ret;

	if (cur == VFIO_DEVICE_STATE_RUNNING && new == VFIO_DEVICE_STATE_STOP) {
		ret = xe_sriov_vfio_stop(xe_vdev->xe, xe_vdev->vfid);
		if (ret)
			return ERR_PTR(ret);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RUNNING) {
		ret = xe_sriov_vfio_run(xe_vdev->xe, xe_vdev->vfid);
		if (ret)
			return ERR_PTR(ret);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_STOP_COPY) {
		ret = xe_sriov_vfio_stop_copy_enter(xe_vdev->xe, xe_vdev->vfid);
		if (ret)
			return ERR_PTR(ret);
		return xe_vdev->migf->filp;
	}
	if (cur == VFIO_DEVICE_STATE_STOP_COPY && new == VFIO_DEVICE_STATE_STOP) {
		xe_vfio_log(xe_vdev);
		xe_sriov_vfio_stop_copy_exit(xe_vdev->xe, xe_vdev->vfid);
		xe_vfio_helper_done(xe_vdev);
		return NULL;
	}
	if (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RESUMING) {
		ret = xe_sriov_vfio_resume_enter(xe_vdev->xe, xe_vdev->vfid);
		if (ret)
			return ERR_PTR(ret);
		return xe_vdev->migf->filp;
	}
	if (cur == VFIO_DEVICE_STATE_RESUMING && new == VFIO_DEVICE_STATE_STOP) {
		xe_sriov_vfio_resume_exit(xe_vdev->xe, xe_vdev->vfid);
		return NULL;
	}
	WARN(true, "Unknown state transition %d->%d", cur, new);
	return ERR_PTR(-EINVAL);
}

static const struct vfio_migration_ops xe_vfio_migration_ops = { };

static void xe_vfio_init(struct xe_vfio_pci_core_device *xe_vdev)
{
	xe_vdev->core_device.vdev.migration_flags = VFIO_MIGRATION_STOP_COPY;
}
"""


def _xe_tree(root):
    """A two-directory kernel tree: the driver under drivers/vfio/pci/xe/, its
    callees' header under include/drm/intel/."""
    (root / "include/drm/intel").mkdir(parents=True)
    (root / "include/drm/intel/xe_sriov_vfio.h").write_text(_XE_HEADER)
    (root / "include/uapi/linux").mkdir(parents=True)
    driver = root / "drivers/vfio/pci/xe"
    driver.mkdir(parents=True)
    (driver / "main.c").write_text(_XE_DRIVER)
    (driver / "xe_local.h").write_text("void xe_vfio_helper_done(struct xe_vfio_pci_core_device *d);\n")
    return driver / "main.c"


def test_callees_declared_under_include_are_resolved_through_the_tree(tmp_path):
    main_c = _xe_tree(tmp_path / "linux")
    result = run(str(main_c))
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["tree"] == str((tmp_path / "linux").resolve())
    assert doc["flags"] == ["STOP_COPY"] and doc["missing"] == []
    line = {name: _XE_DRIVER[:_XE_DRIVER.index(f"\t{name}(")].count("\n") + 1
            for name in ("xe_sriov_vfio_stop_copy_exit", "xe_sriov_vfio_resume_exit")}
    assert doc["discarded_results"] == [
        f"{main_c}:{line['xe_sriov_vfio_stop_copy_exit']}: STOP_COPY -> STOP discards the result of xe_sriov_vfio_stop_copy_exit(): "
        "a failed step would be reported as success",
        f"{main_c}:{line['xe_sriov_vfio_resume_exit']}: RESUMING -> STOP discards the result of xe_sriov_vfio_resume_exit(): "
        "a failed step would be reported as success",
    ]
    # void helpers (in the file and in a local header) are no finding and are resolved
    assert doc["unresolved_callees"] == []


def test_progress_goes_to_stderr_never_into_the_json(tmp_path):
    main_c = _xe_tree(tmp_path / "linux")
    doc, added = progress_lines("driver-arcs", "--model", V2, main_c)
    assert added == [f"reading the step function in {main_c} and its callees",
                     f"looking for migration_flags in {main_c} and its directory"]
    assert doc["flags"] == ["STOP_COPY"]


def test_explicit_tree_and_unresolved_callees_are_named(tmp_path):
    main_c = _xe_tree(tmp_path / "linux")
    # The driver alone, outside any tree: nothing says the exits return int.
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "main.c").write_text(main_c.read_text())
    doc = json.loads(run(str(alone / "main.c")).output)
    assert doc["tree"] is None and doc["discarded_results"] == []
    named = " ".join(doc["unresolved_callees"])
    for callee in ("xe_sriov_vfio_stop_copy_exit", "xe_sriov_vfio_resume_exit", "xe_vfio_helper_done"):
        assert f"calls {callee}()" in named
    text = cli("driver-arcs", "--model", V2, str(alone / "main.c")).output
    assert "info:" in text and "xe_sriov_vfio_resume_exit()" in text and "pass --tree DIR" in text
    # --tree names the kernel tree: the header resolves, the findings appear.
    doc = json.loads(run("--tree", str(tmp_path / "linux"), str(alone / "main.c")).output)
    assert [line.split(": ")[1] for line in doc["discarded_results"]] == [
        "STOP_COPY -> STOP discards the result of xe_sriov_vfio_stop_copy_exit()",
        "RESUMING -> STOP discards the result of xe_sriov_vfio_resume_exit()"]
    bad = run("--tree", str(tmp_path / "nowhere"), str(alone / "main.c"))
    assert bad.exit_code == 2


def test_pointer_results_are_not_error_results(tmp_path):
    main_c = _xe_tree(tmp_path / "linux")
    header = tmp_path / "linux/include/drm/intel/xe_sriov_vfio.h"
    header.write_text(header.read_text().replace("int xe_sriov_vfio_resume_exit",
                                                 "struct file *xe_sriov_vfio_resume_exit"))
    doc = json.loads(run(str(main_c)).output)
    assert [line.split(": ")[1] for line in doc["discarded_results"]] == [
        "STOP_COPY -> STOP discards the result of xe_sriov_vfio_stop_copy_exit()"]
