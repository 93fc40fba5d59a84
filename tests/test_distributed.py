"""Training under ``torchrun``: two CPU processes (gloo), DDP, rank 0 writes, resume.

Each launch costs ~10 s of process start-up and imports on two cores, so one launch runs
several jobs in sequence (the process group is joined once and reused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from restore.engine.checkpoint import load_training_state
from restore.engine.config import TrainConfig, to_toml
from s3_server import free_port

# Runs Trainer jobs: argv = config.toml, then (run_dir, steps, new|resume) triples. After
# each job every rank saves its parameters next to the run folder, to compare replicas.
SCRIPT = """
import dataclasses, sys
import torch
from restore.engine.config import from_dict, load_toml
from restore.training import build_trainer

config = from_dict(load_toml(sys.argv[1]))
jobs = sys.argv[2:]
for run_dir, steps, mode in zip(jobs[::3], jobs[1::3], jobs[2::3]):
    trainer = build_trainer(dataclasses.replace(config, steps=int(steps)), run_dir, resume=mode == "resume", progress=False)
    trainer.fit()
    parameters = {
        f"{name}.{key}": value.detach()
        for name, network in trainer.objective.networks.items()
        for key, value in network.named_parameters()
    }
    torch.save(parameters, f"{run_dir}.rank{trainer.dist.rank}.pt")
"""


def torchrun(tmp_path: Path, config: TrainConfig, *jobs: tuple[Path, int, str], nodes: int = 1) -> None:
    """Launch ``torchrun --standalone --nproc_per_node 2`` on the jobs; fail with its output.
    ``nodes=2``: two launchers, as on two machines, that meet by c10d rendezvous on
    127.0.0.1 (``--nnodes 2 --nproc_per_node 1``), one process each."""
    script, config_path = tmp_path / "train_jobs.py", tmp_path / "config.toml"
    script.write_text(SCRIPT)
    config_path.write_text(to_toml(config))
    arguments = [str(value) for job in jobs for value in job]
    environment = {key: value for key, value in os.environ.items() if key not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    environment.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")  # gloo on the CPU
    command = [sys.executable, "-m", "torch.distributed.run"]
    if nodes == 1:
        launchers = [[*command, "--standalone", "--nproc_per_node", "2"]]
    else:
        rendezvous = ["--nnodes", str(nodes), "--nproc_per_node", "1", "--rdzv-backend", "c10d",
                      "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "restore-test"]
        launchers = [[*command, *rendezvous] for _ in range(nodes)]
    running = [subprocess.Popen([*launcher, str(script), str(config_path), *arguments], cwd=tmp_path,
                                env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for launcher in launchers]
    try:
        outputs = [launched.communicate(timeout=300)[0] for launched in running]
    finally:
        for launched in running:  # only where one timed out: the launchers this test started
            if launched.poll() is None:
                launched.kill()
                launched.wait()
    for launched, output in zip(running, outputs):
        assert launched.returncode == 0, f"torchrun failed:\n{output[-5000:]}"


def assert_replicas_agree(run_dir: Path) -> None:
    """DDP averaged the gradients: both ranks hold the same parameters, although each
    trained on different samples."""
    rank0 = torch.load(f"{run_dir}.rank0.pt", weights_only=True)
    rank1 = torch.load(f"{run_dir}.rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key


def assert_written_once(run_dir: Path, launches: int) -> None:
    """Only rank 0 writes: one TensorBoard file per launch, each validation logged once,
    no leftovers of two processes replacing the same file."""
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == launches
    assert not list(run_dir.rglob("*.tmp"))
    if (run_dir / "metrics.jsonl").exists():
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert len(steps) == len(set(steps))


def test_denoise_under_torchrun(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config("denoise", clean_images, steps=0, log={"val_every": 2, "log_every": 1})
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    torchrun(tmp_path, config, (straight, 4, "new"), (resumed, 2, "new"))
    assert load_training_state(resumed / "last.pt")["step"] == 2
    torchrun(tmp_path, config, (resumed, 4, "resume"))
    for run, launches in ((straight, 1), (resumed, 2)):
        assert_written_once(run, launches)
        assert_replicas_agree(run)
        assert (run / "best.safetensors").is_file() and list((run / "samples").glob("*.png"))
    # the resumed run continued the exact sample sequence of every rank
    final, reference = load_training_state(resumed / "last.pt"), load_training_state(straight / "last.pt")
    assert final["step"] == reference["step"] == 4
    for section in ("networks", "optimizers", "ema"):
        for name, state in reference[section].items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, final[section][name][key]), f"{section}.{name}.{key}"


def test_cyclegan_under_torchrun(unaligned_images: Path, tmp_path: Path, tiny_config) -> None:
    """Each generator runs three times before one backward (fakes, cycle, identity); DDP
    must still average its gradients."""
    config = tiny_config(
        "denoise",
        unaligned_images,
        steps=0,
        generator={"arch": "resnet", "base_channels": 4, "n_blocks": 1},
        discriminator={"arch": "patch", "base_channels": 4, "n_layers": 2},
        data={"layout": "unaligned", "val_holdout": 0},
        loss={"pool_size": 3},
    )
    run = tmp_path / "run"
    torchrun(tmp_path, config, (run, 2, "new"))
    assert_replicas_agree(run)
    torchrun(tmp_path, config, (run, 4, "resume"))
    assert_written_once(run, launches=2)
    assert_replicas_agree(run)
    assert load_training_state(run / "last.pt")["step"] == 4
    assert {path.name for path in run.glob("*.safetensors")} == {
        "best_A.safetensors", "best_B.safetensors", "last_A.safetensors", "last_B.safetensors",
    }


def test_two_nodes_meet_by_rendezvous_and_resume(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    """Two launchers as two machines (``--nnodes 2 --rdzv-backend c10d``), one process each:
    the run finishes, both ranks hold the same weights, and ``--resume`` continues it."""
    config = tiny_config("denoise", clean_images, steps=0, log={"val_every": 2, "log_every": 1})
    run = tmp_path / "run"
    torchrun(tmp_path, config, (run, 2, "new"), nodes=2)
    assert_replicas_agree(run)
    assert load_training_state(run / "last.pt")["step"] == 2
    torchrun(tmp_path, config, (run, 4, "resume"), nodes=2)
    assert_replicas_agree(run)
    assert_written_once(run, launches=2)
    assert load_training_state(run / "last.pt")["step"] == 4 and (run / "best.safetensors").is_file()
