"""A teacher's identity: a hash of everything that determines the trained teacher."""

from __future__ import annotations

import hashlib
import json

from trainers.config import JobConfig


def teacher_fingerprint(job: JobConfig) -> str:
    """Dataset + split, clip, architecture, optimisation, enhancement and its parameters,
    seed. Anything else (resources, tracking, names) does not change the teacher."""
    d = job.dataset
    identity = {
        "dataset": {
            "format": d.format,
            "root": str(d.root),
            "split": d.split,
            "lists": [str(x) for x in (d.train_list, d.val_list, d.test_list)],
            "val_fraction": d.val_fraction,
            # only when set, so that fingerprints of full-data teachers stay as they were
            **({"max_per_class": d.max_per_class} if d.max_per_class else {}),
        },
        "clip": job.clip.model_dump(mode="json"),
        "model": job.model.model_dump(mode="json", exclude={"compile", "channels_last"}),
        "optim": job.optim.model_dump(mode="json"),
        "enhancement": {"name": job.enhancement.name, **job.enhancement.params()},
        "deepspeed": job.deepspeed,
        "seed": job.seed,
    }
    blob = json.dumps(identity, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
