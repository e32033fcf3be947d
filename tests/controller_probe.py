"""A Train controller callback, in a module without torch, that notes as its run ends
whether the controller process imported torch."""

import sys
from pathlib import Path

from ray.train.v2._internal.execution.callback import ControllerCallback


class TorchInController(ControllerCallback):
    def __init__(self, path: Path) -> None:
        self.path = path

    async def before_controller_shutdown(self) -> None:
        self.path.write_text(str("torch" in sys.modules))
