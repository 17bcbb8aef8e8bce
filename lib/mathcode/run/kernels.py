"""How the kit starts the kernel of a notebook it executes (papermill / nbclient).

The kernel and the process that drives it always sit on the same machine, so they talk over IPC (Unix-domain
sockets in Jupyter's runtime folder, removed when the kernel stops) instead of jupyter_client's default, TCP on
localhost. Two reasons: no TCP port is opened that another local user could connect to, and ipykernel 7 prints
"Kernel is running over TCP without encryption" into every executed phase otherwise — a harmless line that a
reader of the notebook cannot tell from a fault. Windows has no IPC transport in ZeroMQ: there the default stays.
"""
from __future__ import annotations

import os

from jupyter_client.manager import AsyncKernelManager
from traitlets import default


class LocalIPCKernelManager(AsyncKernelManager):
    """nbclient's kernel manager with the IPC transport as its default."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"


def papermill_kwargs() -> dict:
    """Extra keyword arguments for ``papermill.execute_notebook`` (they reach nbclient's ``NotebookClient``)."""
    if os.name != "posix":
        return {}
    return {"kernel_manager_class": LocalIPCKernelManager}


def lab_args() -> list[str]:
    """Command-line flags for ``jupyter lab`` that give its kernels the same IPC transport (``make lab`` and the
    JupyterLab test use them): traitlets applies ``KernelManager`` settings to jupyter_server's subclass."""
    return ["--KernelManager.transport=ipc"] if os.name == "posix" else []


if __name__ == "__main__":                      # ``python -m mathcode.run.kernels``: the flags, for the Makefile
    print(" ".join(lab_args()))
