"""One rank of the distributed tests (``tests/test_distributed.py``), launched by torchrun.

``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_worker.py SPEC.json``
trains each run of the spec in turn in one process group (``{"runs": [{"name", "overrides"}], "out"}``)
and saves, after every epoch, this rank's per-sample state and parameters as
``OUT/replicas/NAME/rank{R}_epoch{E}.pt``, for the test to compare across ranks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import noisyfer
from noisyfer.config import config_from_args
from noisyfer.engine.trainer import Trainer


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    end_epoch = Trainer._end_epoch

    def recording_end_epoch(self, epoch, record, writer):
        end_epoch(self, epoch, record, writer)
        folder = Path(spec["out"]) / "replicas" / self.cfg.name
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"state": self.method.state.state_dict(),
                    "params": {k: v.detach().clone() for k, v in self.method.named_parameters()}},
                   folder / f"rank{rank}_epoch{epoch}.pt")

    Trainer._end_epoch = recording_end_epoch
    try:
        for run in spec["runs"]:
            noisyfer.train(config_from_args(None, [*run["overrides"], f"name={run['name']}"]))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
