"""Process-wide settings an entry point makes once (the CLI, the GUI, each worker process), never an import.

:func:`quiet_library_warnings`: detectron2 and torch warn about their own internals when they are
imported and on a model's first forward pass; none of it means anything to a user.
"""

from __future__ import annotations

import logging
import warnings


def quiet_library_warnings() -> None:
    """Silence torch's and detectron2's notices about their own internals, in this process."""
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated")
    # ... and on the first forward pass (detectron2's anchor grid, its fx-tracing check)
    warnings.filterwarnings("ignore", message="torch.meshgrid: in an upcoming release")
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    # ... and in training: detectron2's mapper makes tensors of resized masks it never writes to
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable",
                            module=r"detectron2\.data\.detection_utils")
