"""The one training loop every task uses.

The loop only: the caller hands it the task (:mod:`restore.training`), and the run
folder, the training data, validation, sample grids, RNG state and the exported weights
each have their own module (``run_folder``, ``training_data``, ``validation``,
``samples``, ``rng``, ``exports``).

A run folder holds everything about a run::

    RUN_DIR/config.toml        the fully resolved config (reproduces the run)
    RUN_DIR/last.pt            networks, optimisers, EMA, step, RNG states (atomic)
    RUN_DIR/best.safetensors   inference weights (EMA generator) + network spec
    RUN_DIR/samples/*.png      input | output | target grids (unpaired: real | translated | back)
    RUN_DIR/tensorboard/       scalars
    RUN_DIR/metrics.jsonl      validation results, one line per evaluation

Resuming loads ``last.pt`` and continues the exact sample sequence (see
``restore.engine.data``), so ``N`` steps + resume + ``N`` steps equals ``2N`` steps.
"""

from __future__ import annotations

import copy
import functools
import math
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from restore.engine import distributed
from restore.engine.checkpoint import load_training_state, save_training_state
from restore.engine.config import OptimConfig, to_toml
from restore.engine.device import autocast, resolve_device
from restore.engine.exports import export_generators
from restore.engine.objectives import Objective, PairedObjective, UnpairedObjective, Updater
from restore.engine.progress import progress_bar
from restore.engine.rng import capture_rng_state, restore_rng_state, seed_everything
from restore.engine.run_folder import RunFolder, discard_past_checkpoint
from restore.engine.samples import paired_rows, save_grid, translation_rows, translation_samples
from restore.engine.training_data import TrainingFiles, TrainingTask, training_loader
from restore.engine.validation import (
    STALL_VALIDATIONS,
    record_validation,
    stalled_psnr,
    validation_pairs,
    validation_scores,
)
from restore.io.atomic import atomic_write
from restore.weights import WeightsError, load_weights
from restore.zoo.network import ARCH as COMMUNITY


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingStalled(UserWarning):
    """Validation PSNR has not moved for several evaluations: the generator's output no longer
    depends on training (e.g. a dead ReLU tail leaves exactly the residual's base), which the
    still-moving losses do not show (``python bench/loss_trend.py RUN`` prints them)."""


def lr_factor(optim: OptimConfig, step: int, total_steps: int) -> float:
    """Learning-rate multiplier at ``step``: warm-up, then the configured schedule.

    Computed from the step alone (no scheduler state), so a resumed run gets the same
    rates as an uninterrupted one."""
    if optim.warmup_steps and step < optim.warmup_steps:
        return (step + 1) / optim.warmup_steps
    floor = optim.min_lr_ratio
    if optim.schedule == "constant":
        return 1.0
    if optim.schedule == "linear":  # pix2pix: constant, then linear decay to the floor
        start = int(optim.decay_start * total_steps)
        if step < start:
            return 1.0
        return 1.0 - (1.0 - floor) * (step - start) / max(1, total_steps - start)
    if optim.schedule == "cosine":
        progress = min(1.0, (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if optim.schedule == "step":
        if optim.step_every <= 0:
            raise ValueError("the step schedule needs optim.step_every > 0")
        return optim.step_gamma ** (step // optim.step_every)
    raise ValueError(f"unknown lr schedule {optim.schedule!r}: constant, linear, cosine or step")


class EMA:
    """Exponential moving average of a generator's weights; inference prefers it because it
    averages out the last steps' noise (BasicSR, Real-ESRGAN)."""

    def __init__(self, network: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(network).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        shadow = list(self.shadow.parameters())
        torch._foreach_lerp_(shadow, list(network.parameters()), 1.0 - self.decay)
        for shadow_buffer, buffer in zip(self.shadow.buffers(), network.buffers()):
            shadow_buffer.copy_(buffer)


class Trainer:
    """Trains any task into a run folder (see :func:`restore.engine.run_folder.open_run`)."""

    def __init__(self, run: RunFolder, task: TrainingTask, progress: bool = True) -> None:
        """``task``: the run's task, which the caller resolves from ``run.config`` (see
        :func:`restore.training.build_trainer`)."""
        self.run_dir = run.path
        self.replaced = run.replaced
        self.dist = distributed.setup()
        self.resume = run.resume
        self.config = config = run.config
        self.task = task
        upscale = config.generator.get("upscale", 1)
        if config.data.layout == "clean" and upscale != task.scale:
            raise ValueError(
                f"task {config.task!r} makes x{task.scale} pairs but generator.upscale is {upscale}: "
                "set task_options.scale and generator.upscale to the same value"
            )
        self.device = resolve_device(config.device) if not self.dist.enabled else self.dist.device(config.device)
        self.amp = functools.partial(autocast, self.device, config.precision)
        self.progress = progress and self.dist.is_main
        self.step = 0
        seed_everything(config.seed)
        self.objective = self._build_objective()
        # a resumed run has its own weights in last.pt; a community architecture was built with them
        if config.init_weights and not run.resume and config.generator.get("arch") != COMMUNITY:
            self._load_init_weights(config.init_weights)
        self.updater = Updater(self.device, config.precision, config.optim.grad_clip)
        self.emas = {
            name: EMA(self.objective.networks[name], config.optim.ema_decay)
            for name in self.objective.generator_names
            if config.optim.ema_decay > 0
        }
        self.best_score = -math.inf
        self.files = TrainingFiles(config, task, warn=self.dist.is_main)
        self._writer = None
        if run.resume:
            self._load_state(load_training_state(self.run_dir / "last.pt"))
        self.resumed_step = self.step if run.resume else None  # what was logged after it is discarded
        self.objective.wrapped = self.dist.wrap(self.objective.networks, self.device)

    # -- setup ---------------------------------------------------------------------------

    def _load_init_weights(self, path: str) -> None:
        """Start every generator from ``path``: all of it (shapes must match the run's
        network, after the network's own ``adapt_state_dict`` if it has one: a U-Net with
        resize-convolutions takes a transposed-convolution file), or with
        ``init_strict = false`` the tensors whose name and shape match."""
        saved, _ = load_weights(path)
        for name in self.objective.generator_names:
            network = self.objective.networks[name]
            adapt = getattr(network, "adapt_state_dict", None)
            state_dict = adapt(saved) if adapt is not None else saved
            if not self.config.init_strict:
                own = network.state_dict()
                matching = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
                if not matching:
                    raise WeightsError(f"init_weights {path}: no tensor fits this run's generator")
                state_dict = {**own, **matching}
                if self.dist.is_main:
                    skipped = sorted(set(own) - set(matching))
                    print(f"init_weights: {len(matching)} of {len(own)} tensors from {path}; "
                          f"kept the random init of {', '.join(skipped) or 'none'}", file=sys.stderr)
            try:
                network.load_state_dict({key: value.float() for key, value in state_dict.items()})
            except RuntimeError as error:
                raise WeightsError(f"init_weights {path} do not fit this run's generator "
                                   f"(init_strict = false takes the tensors that do): {error}") from error

    def _build_objective(self) -> Objective:
        objective_class = UnpairedObjective if self.config.data.layout == "unaligned" else PairedObjective
        objective = objective_class(self.config)
        for network in objective.networks.values():
            network.to(self.device)
            if self.config.channels_last:
                network.to(memory_format=torch.channels_last)
        return objective

    # -- state ---------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "best_score": self.best_score,
            "networks": {name: net.state_dict() for name, net in self.objective.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.objective.optimizers.items()},
            "ema": {name: ema.shadow.state_dict() for name, ema in self.emas.items()},
            "scaler": self.updater.scaler.state_dict(),
            "objective": self.objective.extra_state(),
            "rng": capture_rng_state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.best_score = float(state["best_score"])
        for name, network in self.objective.networks.items():
            network.load_state_dict(state["networks"][name])
        for name, optimizer in self.objective.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, ema in self.emas.items():
            ema.shadow.load_state_dict(state["ema"][name])
        self.updater.scaler.load_state_dict(state["scaler"])
        self.objective.load_extra_state(state["objective"])
        restore_rng_state(state["rng"])

    def inference_network(self, name: str = "G") -> nn.Module:
        """The EMA generator when there is one, else the raw one."""
        return self.emas[name].shadow if name in self.emas else self.objective.networks[name]

    @torch.no_grad()
    def generate(self, names: Sequence[str], batch: torch.Tensor) -> list[torch.Tensor]:
        """``batch`` through the inference generators ``names`` in turn (CycleGAN's there and
        back), in eval mode and autocast: each output as float, on the device. The trained
        generators are back in training mode after."""
        networks = [self.inference_network(name).eval() for name in names]
        outputs = []
        with self.amp():
            batch = self._to_device(batch)
            for network in networks:
                batch = network(batch).float()
                outputs.append(batch)
        for name in names:
            if self.inference_network(name) is self.objective.networks[name]:
                self.objective.networks[name].train()
        return outputs

    def _save(self, best: bool) -> None:
        if not self.dist.is_main:
            return
        save_training_state(self.run_dir / "last.pt", self._state())
        generators = {name: self.inference_network(name) for name in self.objective.generator_names}
        export_generators(self.run_dir, self.config, self.step, generators, best)

    # -- loop ----------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train to ``config.steps``; returns the last validation metrics (may be empty)."""
        self._start()
        config = self.config
        batches = iter(training_loader(self.files, self.step, self.dist.rank, self.dist.world_size))
        validation = self._validation_pairs()
        translations = self._translation_samples()
        metrics: dict[str, float] = {}
        bar = self._progress_bar()
        for network in self.objective.networks.values():
            network.train()
        try:
            while self.step < config.steps:
                for name, optimizer in self.objective.optimizers.items():
                    for group in optimizer.param_groups:
                        group["lr"] = self.objective.base_lrs[name] * lr_factor(config.optim, self.step, config.steps)
                batch = [self._to_device(tensor) for tensor in next(batches)]
                losses = self.objective.train_step(batch, self.updater, self.amp)
                if not all(math.isfinite(value) for value in losses.values()):
                    raise TrainingDiverged(
                        f"step {self.step}: loss is not finite ({losses}); stopped. The last good "
                        f"checkpoint {self.run_dir / 'last.pt'} is kept: resume with a lower lr or --precision fp32"
                    )
                for name, ema in self.emas.items():
                    ema.update(self.objective.networks[name])
                self.step += 1
                self._log(losses, bar)
                best = False
                if validation and self._due(config.log.val_every):
                    metrics = self._validate(validation)
                    score = metrics["psnr"]
                    best = score > self.best_score
                    self.best_score = max(self.best_score, score)
                if self._due(config.log.sample_every) and validation:
                    save_grid(self.run_dir, self.step, paired_rows(validation, self.generate))
                if self._due(config.log.sample_every) and translations:
                    save_grid(self.run_dir, self.step, translation_rows(translations, self.generate))
                if self._due(config.log.checkpoint_every) or best or self.step == config.steps:
                    self._save(best or (not validation and self.step == config.steps))
        finally:
            if bar is not None:
                bar.close()
            self._close_writer()
        self.dist.barrier()
        return metrics

    def _start(self) -> None:
        """Make the run folder ready: a resumed run drops what it logged after its last
        checkpoint, a replaced run's outputs go, and the resolved config is written."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            if self.resume:
                discard_past_checkpoint(self.run_dir, self.resumed_step)
            for path in self.replaced:
                path.unlink(missing_ok=True)
            atomic_write(self.run_dir / "config.toml", lambda temp: temp.write_text(to_toml(self.config)))

    def _due(self, every: int) -> bool:
        return every > 0 and (self.step % every == 0 or self.step == self.config.steps)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        return tensor.contiguous(memory_format=torch.channels_last) if self.config.channels_last else tensor

    def _progress_bar(self):
        if not self.progress:
            return None
        return progress_bar(total=self.config.steps, initial=self.step, desc=f"train {self.config.task}", unit="step", dynamic_ncols=True)

    def _log(self, losses: dict[str, float], bar) -> None:
        if bar is not None:
            bar.update(1)
            if self.step % 10 == 0:
                bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
        if self.dist.is_main and self._due(self.config.log.log_every) and self.writer is not None:
            for name, value in losses.items():
                self.writer.add_scalar(f"loss/{name}", value, self.step)
            self.writer.add_scalar("lr/G", self.objective.optimizers["G"].param_groups[0]["lr"], self.step)

    def _close_writer(self) -> None:
        """Flush and stop the TensorBoard writer (its thread lives until closed: a process that
        trains many times, like a test run or a notebook, would collect them)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def writer(self):
        """TensorBoard writer, created on first use; None when disabled or not installed."""
        if self._writer is None and self.config.log.tensorboard and self.dist.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.config.log.tensorboard = False
                return None
            purge_step = None if self.resumed_step is None else self.resumed_step + 1
            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge_step)
        return self._writer

    # -- validation and samples ----------------------------------------------------------

    def _size_multiple(self, generator: str) -> int:
        """What sizes ``generator`` accepts (pix2pix_unet: 2 ** num_downs)."""
        return int(getattr(self.objective.networks[generator], "size_multiple", 1))

    def _validation_pairs(self) -> list[tuple[torch.Tensor, ...]]:
        """Fixed (input, target) pairs from the held-out images (rank 0 validates)."""
        data = self.config.data
        if not (data.val or data.val_holdout) or data.layout == "unaligned" or not self.dist.is_main:
            return []
        images = self.files.load(self.files.train, held_out=True)
        return validation_pairs(self.config, self.task, images, self._size_multiple("G"))

    def _translation_samples(self) -> list[tuple[torch.Tensor, str]]:
        """An unpaired run's sample images, with the generator to apply (rank 0 writes them)."""
        if self.config.data.layout != "unaligned" or not self.dist.is_main:
            return []
        return translation_samples(self.files, self._size_multiple("G_A"))

    def _validate(self, pairs: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
        scores = validation_scores(pairs, self.generate)
        record_validation(self.run_dir, self.step, scores, self.writer)
        stalled = stalled_psnr(self.run_dir)
        if stalled is not None:  # a warning, not an error: the user may want to finish the run anyway
            warnings.warn(
                f"step {self.step}: validation PSNR has been {stalled:.4f} dB for {STALL_VALIDATIONS} "
                f"evaluations: the generator's output has stopped changing (a dead layer, or a learning "
                f"rate of ~0). Check the samples in {self.run_dir / 'samples'} before training on.",
                TrainingStalled,
                stacklevel=2,
            )
        return scores
