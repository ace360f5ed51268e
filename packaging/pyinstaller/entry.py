"""Entry point of the PyInstaller bundle: the ``maskreview`` CLI, and the interpreter the app's children expect.

Frozen, ``sys.executable`` is this bundle, not a Python. Children are started as if it were one:
- ``-m MODULE ...``: the fine-tune worker (``maskreview.core.model.finetune_worker``) and the FiftyOne App server
  (``fiftyone.server.main``);
- ``SCRIPT.py ...``: FiftyOne's service wrapper (``fiftyone/service/main.py``, which starts mongod and the server);
- ``-c ...``: multiprocessing's forkserver and resource tracker (handled by ``freeze_support``, which
  PyInstaller's runtime hook extends to POSIX).

The bundle is CPU-only: it carries the CUDA libraries torch links against, not those cuDNN and
cuSOLVER load later, so GPUs are hidden unless CUDA_VISIBLE_DEVICES is set (``--device auto`` is the CPU).
"""

import multiprocessing
import os
import runpy
import sys


def _run_as_interpreter(args: list[str]) -> bool:
    """Run ``-m MODULE`` or ``SCRIPT.py`` the way ``python`` would; False when args are CLI arguments."""
    if len(args) >= 2 and args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return True
    if args and args[0].endswith(".py") and os.path.isfile(args[0]):
        sys.argv = list(args)
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        runpy.run_path(args[0], run_name="__main__")
        return True
    return False


if __name__ == "__main__":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    multiprocessing.freeze_support()
    if not _run_as_interpreter(sys.argv[1:]):
        from maskreview.cli import main

        raise SystemExit(main())
