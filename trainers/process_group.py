"""The torch process group of a job's Train workers, set up without torch in Train's controller.

Ray's TorchConfig lives in a module that imports torch, and Train's controller unpickles it
as the run starts: a second of every job's start, before any worker exists, for one call
(`dist.is_available()`) in a process that never touches a tensor (bench/job_overhead.py).
`ProcessGroupConfig` does what TorchConfig does for gloo and NCCL, the backends TorchTrainer
picks for CPU and GPU jobs, with Ray's own worker-side functions, imported on the workers.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

import ray
from ray._private.ray_constants import env_integer
from ray.exceptions import GetTimeoutError
from ray.train._internal.utils import get_address_and_port
from ray.train.backend import Backend, BackendConfig
from ray.train.constants import (
    DEFAULT_TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S,
    TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S,
)
from ray.train.v2._internal.util import TrainingFramework

logger = logging.getLogger(__name__)


@dataclass
class ProcessGroupConfig(BackendConfig):
    """TorchConfig's fields; TorchTrainer sets `backend` (nccl with GPUs, else gloo)."""

    backend: str | None = None
    timeout_s: int = 1800

    def to_dict(self) -> dict[str, Any]:
        """What Train's state export records of the run's backend, as for TorchConfig."""
        return asdict(self)

    @property
    def backend_cls(self) -> type[Backend]:
        return ProcessGroupBackend

    @property
    def train_func_context(self) -> type:
        return CudaDeviceContext

    @property
    def framework(self) -> TrainingFramework:
        return TrainingFramework.TORCH


class CudaDeviceContext:
    """Around the train function on each worker, as TorchConfig: its GPU, if any, is the
    default CUDA device."""

    def __enter__(self) -> None:
        from ray.train.torch.config import TorchConfigContextManager

        TorchConfigContextManager().__enter__()

    def __exit__(self, *exc: object) -> bool:
        return False


class ProcessGroupBackend(Backend):
    """TorchConfig's backend (ray.train.torch.config._TorchBackend) for gloo and NCCL
    with "env://" rendezvous on worker 0; its workers share CUDA_VISIBLE_DEVICES per node."""

    share_cuda_visible_devices: bool = True

    def on_start(self, worker_group: Any, backend_config: ProcessGroupConfig) -> None:
        address, port = worker_group.execute_single(0, get_address_and_port)
        worker_group.execute(_rendezvous_env, address=address, port=port)
        size = len(worker_group)
        ray.get([
            worker_group.execute_single_async(i, _join, backend=backend_config.backend,
                                              world_rank=i, world_size=size,
                                              timeout_s=backend_config.timeout_s)
            for i in range(size)
        ])  # fmt: skip

    def on_shutdown(self, worker_group: Any, backend_config: ProcessGroupConfig) -> None:
        timeout_s = env_integer(
            TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S, DEFAULT_TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S
        )
        futures = worker_group.execute_async(_leave, destroy=len(worker_group) > 1)
        try:
            ray.get(futures, timeout=timeout_s)
        except GetTimeoutError:  # as Ray's: the workers are stopped next regardless
            logger.warning("Torch process group shutdown timed out after %s s", timeout_s)


def _rendezvous_env(address: str, port: int) -> None:
    """On a worker: where rank 0 listens, and the torchrun variables (RANK, LOCAL_RANK ...)."""
    from ray.train.torch.config import _set_torch_distributed_env_vars

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = address, str(port)
    _set_torch_distributed_env_vars()


def _join(backend: str, world_rank: int, world_size: int, timeout_s: int) -> None:
    from ray.train.torch.config import _setup_torch_process_group

    _setup_torch_process_group(backend, world_rank, world_size, "env://", timeout_s)


def _leave(destroy: bool) -> None:
    from ray.train.torch.config import _shutdown_torch

    _shutdown_torch(destroy_process_group=destroy)
