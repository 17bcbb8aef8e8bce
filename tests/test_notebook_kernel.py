"""The kernels the kit starts for papermill talk to it over IPC: no TCP port, and no "Kernel is running over TCP
without encryption" line in the output of every phase (ipykernel prints it for any TCP kernel)."""
from __future__ import annotations

import os

import pytest

from mathcode.run import kernels


@pytest.mark.skipif(os.name != "posix", reason="ZeroMQ's IPC transport needs Unix-domain sockets")
def test_papermill_kernel_runs_over_ipc_without_the_tcp_warning(tmp_path, capfd):
    import nbformat
    import papermill as pm
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import json, sys\n"
                                          "from ipykernel.kernelapp import IPKernelApp\n"
                                          "print(IPKernelApp.instance().transport, 6 * 7)")]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
                        **kernels.papermill_kwargs())
    printed = "".join(o.get("text", "") for o in nbformat.read(out, 4).cells[0].outputs)
    assert printed.split() == ["ipc", "42"]
    seen = capfd.readouterr()
    assert "without encryption" not in seen.out + seen.err
    assert not list(tmp_path.glob("*-ipc-*"))          # the sockets live in Jupyter's runtime folder, and go
