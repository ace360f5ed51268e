"""Multi-process and multi-machine work through detectron2's own launcher (``detectron2.engine.launch``).

``--num-gpus G --num-machines M --machine-rank R --dist-url URL``: detectron2 starts G processes
on this machine (spawned), joins them with the other machines' into one ``torch.distributed``
group of G x M ranks (NCCL with GPUs, gloo without) and runs the work in each. Training is
detectron2's DDP (``DefaultTrainer`` wraps the model when the world has more than one rank);
inference gives each rank one shard of the samples (:mod:`maskreview.core.model.sharding`).

On CPU, detectron2 0.7.2 asks DDP for ``device_ids=[local rank]``, which DDP refuses for a CPU
model (facebookresearch/detectron2#5146); :func:`use_cpu_ddp` makes it pass none, as DDP wants
for CPU modules. Training ranks on CPU share this machine's cores: each gets its share of
torch's threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
import sys

from maskreview.core.errors import BadInputError, MaskreviewError, one_line
from maskreview.core.startup import quiet_library_warnings


@dataclass(frozen=True)
class Launch:
    num_gpus: int = 1  # processes on this machine (detectron2's name for it)
    num_machines: int = 1
    machine_rank: int = 0
    dist_url: str = "auto"

    def __post_init__(self):
        if self.num_gpus < 1 or self.num_machines < 1:
            raise BadInputError("--num-gpus and --num-machines must be at least 1")
        if not 0 <= self.machine_rank < self.num_machines:
            raise BadInputError(f"--machine-rank {self.machine_rank}: must lie in 0..{self.num_machines - 1} "
                                f"(--num-machines {self.num_machines})")
        if self.num_machines > 1 and self.dist_url == "auto":
            raise BadInputError("--dist-url tcp://HOST:PORT (machine rank 0's address) is needed with "
                                "--num-machines above 1; 'auto' only works on one machine")
        if self.dist_url != "auto" and not self.dist_url.startswith(("tcp://", "file://", "env://")):
            raise BadInputError(f"--dist-url {self.dist_url}: expected tcp://HOST:PORT, file://PATH, env:// or auto")

    @property
    def world_size(self) -> int:
        return self.num_gpus * self.num_machines

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main_machine(self) -> bool:
        return self.machine_rank == 0

    def check_devices(self, device: str) -> None:
        """With CUDA, one process per GPU of this machine; on CPU any number shares the cores."""
        import torch

        if device != "cpu" and torch.cuda.is_available() and self.num_gpus > torch.cuda.device_count():
            raise BadInputError(f"--num-gpus {self.num_gpus}: this machine has {torch.cuda.device_count()} GPU(s)")
        if device == "cpu" and torch.cuda.is_available() and self.distributed:
            # detectron2's launcher picks NCCL whenever CUDA is there, and NCCL has no CPU tensors
            raise BadInputError("--device cpu with --num-gpus/--num-machines on a machine with CUDA: detectron2's "
                                "launcher would use NCCL; hide the GPUs (CUDA_VISIBLE_DEVICES=) to run on CPU")


def launch(main_func, spec: Launch, *args, share_threads: bool = True) -> None:
    """``main_func(*args)`` in each of this machine's ranks, through detectron2's launcher (in this
    process when the world is one rank). A rank that fails stops the others; its own message was
    printed by the rank (see :func:`rank_main`).

    ``share_threads``: on CPU, each rank gets its share of the cores for torch's threads (training).
    Inference keeps torch's own thread count: a convolution's sums come out in the last bits
    differently with another thread count, and a rank's results must be a single run's."""
    from detectron2.engine import launch as d2_launch

    if not spec.distributed:
        main_func(*args)
        return
    import torch.multiprocessing as mp

    # a spawned rank imports detectron2 before rank_main can call quiet_library_warnings()
    quiet = "ignore:`torch.jit.script` is deprecated:FutureWarning,ignore:`broadcast_buffers` is deprecated:FutureWarning"
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    try:
        d2_launch(rank_main, spec.num_gpus, num_machines=spec.num_machines, machine_rank=spec.machine_rank,
                  dist_url=spec.dist_url, args=(main_func, share_threads, *args))
    except (mp.ProcessExitedException, mp.ProcessRaisedException) as exc:
        raise RankFailedError(f"a rank of the distributed run stopped ({_first_line(exc)}); the other ranks were "
                              "stopped too (a rerun of infer goes on where they stopped)") from None


class RankFailedError(MaskreviewError):
    pass


def _first_line(exc) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else type(exc).__name__


def rank_main(main_func, share_threads: bool, *args) -> None:
    """Each rank's entry (after detectron2 joined the group): CPU threads shared out, detectron2's
    DDP usable on CPU, a :class:`MaskreviewError` printed as the rank's one line."""

    import torch
    from detectron2.utils import comm

    quiet_library_warnings()  # a rank is a process of its own (spawned)
    if not torch.cuda.is_available():
        use_cpu_ddp()
    if not torch.cuda.is_available() and share_threads:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // comm.get_local_size()))
    try:
        main_func(*args)
    except MaskreviewError as exc:

        print(f"maskreview: error: rank {comm.get_rank()}: {one_line(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def use_cpu_ddp() -> None:
    """detectron2's trainer wraps the model with ``create_ddp_model``, which names the local rank as
    a CUDA device; a CPU model must get ``device_ids=None`` (see the module's docstring)."""
    from detectron2.engine import defaults

    original = defaults.create_ddp_model
    if getattr(original, "_cpu", False):
        return

    def create_ddp_model(model, **kwargs):
        kwargs.setdefault("device_ids", None)
        return original(model, **kwargs)

    create_ddp_model._cpu = True
    defaults.create_ddp_model = create_ddp_model


def rank() -> tuple[int, int, int]:
    """This process's (global rank, world size, local rank): (0, 1, 0) outside a launch."""
    from detectron2.utils import comm

    return comm.get_rank(), comm.get_world_size(), comm.get_local_rank()


def rank_device(device: str) -> str:
    """The device a rank runs on: its own GPU (by local rank) when CUDA is used."""
    import torch

    _, world, local = rank()
    if world > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local}"
    return device


def unwrap(model):
    """The model inside DDP (``state_dict`` keys without ``module.``; forward without collectives)."""
    return getattr(model, "module", model)
