"""The one training loop every task uses.

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
import dataclasses
import functools
import itertools
import json
import math
import random
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from restore.engine import distributed
from restore.engine.checkpoint import load_training_state, save_training_state
from restore.engine.config import ConfigError, OptimConfig, TrainConfig, from_dict, to_toml
from restore.engine.data import (
    IMAGE_SUFFIXES,
    AlignedPairs,
    DegradedPairs,
    StepSampler,
    UnalignedPairs,
    list_images,
    pad_to,
    sample_generator,
)
from restore.engine.device import autocast, resolve_device
from restore.io.atomic import atomic_write, remove_stale_temps
from restore.io.image import ImageReadError
from restore.io.medical import MedicalReadError
from restore.engine.objectives import Objective, PairedObjective, UnpairedObjective, Updater
from restore.metrics import psnr, ssim
from restore.metrics.quality import SSIM_WINDOW
from restore.nets import network_spec, parse_network_spec
from restore.weights import WeightsError, load_weights, save_weights
from restore.zoo.finetune import community_training
from restore.zoo.network import ARCH as COMMUNITY
from restore.tasks import get_task

VALIDATION_SEED = 20_240_601  # fixed so validation pairs never change between runs


# Validations in a row whose PSNR agrees to within STALL_TOLERANCE_DB: the output has stopped
# changing. Training noise moves validation PSNR by far more than this between evaluations.
STALL_VALIDATIONS = 3
STALL_TOLERANCE_DB = 1e-4


# what a run writes into its folder (see the module docstring), as globs under it
RUN_OUTPUTS = (
    "config.toml", "last.pt", "metrics.jsonl", "best*.safetensors", "last*.safetensors",
    "samples/step_*.png", "tensorboard/events.out.tfevents.*",
)


class RunExists(ValueError):
    """The run folder holds an earlier run, and neither resuming nor replacing it was asked."""


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


def resolve_config(task_name: str, config_file: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """defaults < task defaults < config file < CLI overrides.

    The task's defaults are built from the options and data layout the file and flags
    give it, because they can depend on them: super-resolution's ``scale`` sets the
    generator's ``upscale``; style transfer is pix2pix on aligned data, CycleGAN on unaligned."""
    from restore.engine.config import load_toml, merge_into

    file_settings = load_toml(config_file) if config_file else {}
    try:  # every key and type checked first: the task's defaults below read some of them
        merge_into(TrainConfig(task=task_name), file_settings)
    except ConfigError as error:
        raise ConfigError(f"{config_file}: {error}") from None
    if file_settings.get("task", task_name) != task_name:
        raise ValueError(f"{config_file} is a recipe for {file_settings['task']!r}, not {task_name!r}")
    options = {**file_settings.get("task_options", {}), **overrides.get("task_options", {})}
    layout = overrides.get("data", {}).get("layout") or file_settings.get("data", {}).get("layout") or "clean"
    config = merge_into(TrainConfig(task=task_name), get_task(task_name, options).default_config_for(layout))
    config = merge_into(config, file_settings)
    config = merge_into(config, overrides)
    community = community_training(config.init_weights, task_name) if config.init_weights else None
    if community is not None:  # train the checkpoint's own architecture, at its scale
        config = dataclasses.replace(config, generator=community["generator"],
                                     task_options={**config.task_options, **community["task_options"]})
    return config


class Trainer:
    """Trains any task from a :class:`TrainConfig` into ``run_dir``."""

    def __init__(
        self, config: TrainConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
        overwrite: bool = False,
    ) -> None:
        """``overwrite``: start afresh in a folder that holds an earlier run, deleting that
        run's outputs first (without it, or ``resume``, such a folder is refused: a new run
        would replace its best weights and mix its metrics)."""
        self.run_dir = Path(run_dir)
        if resume and overwrite:
            raise ValueError("resume continues the run in the folder, overwrite replaces it: choose one")
        self.replaced = [] if resume else previous_run_files(self.run_dir)
        if self.replaced and not overwrite:
            shown = ", ".join(path.relative_to(self.run_dir).as_posix() for path in self.replaced[:3])
            raise RunExists(
                f"{self.run_dir} already holds a training run ({shown}...): continue it with --resume, "
                f"train into a fresh --out folder, or replace it with --overwrite"
            )
        self.dist = distributed.setup()
        self.resume = resume
        if resume:
            config = self._config_for_resume(config)
        self.config = config
        self.task = get_task(config.task, config.task_options)
        upscale = config.generator.get("upscale", 1)
        if config.data.layout == "clean" and upscale != self.task.scale:
            raise ValueError(
                f"task {config.task!r} makes x{self.task.scale} pairs but generator.upscale is {upscale}: "
                "set task_options.scale and generator.upscale to the same value"
            )
        self.device = resolve_device(config.device) if not self.dist.enabled else self.dist.device(config.device)
        self.amp = functools.partial(autocast, self.device, config.precision)
        self.progress = progress and self.dist.is_main
        self.step = 0
        seed_everything(config.seed)
        self.objective = self._build_objective()
        # a resumed run has its own weights in last.pt; a community architecture was built with them
        if config.init_weights and not resume and config.generator.get("arch") != COMMUNITY:
            self._load_init_weights(config.init_weights)
        self.updater = Updater(self.device, config.precision, config.optim.grad_clip)
        self.emas = {
            name: EMA(self.objective.networks[name], config.optim.ema_decay)
            for name in self.objective.generator_names
            if config.optim.ema_decay > 0
        }
        self.best_score = -math.inf
        self.skipped: set[Path] = set()  # training files that could not be read
        self._writer = None
        if resume:
            self._load_state(load_training_state(self.run_dir / "last.pt"))
        self.resumed_step = self.step if resume else None  # what was logged after it is discarded
        self.objective.wrapped = self.dist.wrap(self.objective.networks, self.device)

    # -- setup ---------------------------------------------------------------------------

    def _config_for_resume(self, config: TrainConfig) -> TrainConfig:
        """Resume with the run's own config; only the step count may be extended."""
        from restore.engine.config import load_toml

        saved_path = self.run_dir / "config.toml"
        if not (self.run_dir / "last.pt").is_file() or not saved_path.is_file():
            raise FileNotFoundError(f"{self.run_dir}: nothing to resume (no last.pt/config.toml)")
        saved = from_dict(load_toml(saved_path))
        saved.steps = max(saved.steps, config.steps)
        return saved

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

    def _load_images(self, folders: list[str], held_out: bool = False) -> list[torch.Tensor]:
        paths = self._image_paths(folders, held_out)
        images = [image for path in paths for image in self._read_training_file(path)]
        if not images:
            raise ValueError(f"none of the {len(paths)} {'validation' if held_out else 'training'} files "
                             f"in {', '.join(folders)} could be read (see the warnings above)")
        return images

    def _read_training_file(self, path: Path) -> list[torch.Tensor]:
        """The images one training file holds; a file that cannot be read (corrupt,
        truncated, not an image) is skipped with a warning naming it, as one bad photo
        among thousands should not stop a run (the batch commands skip it the same way)."""
        try:
            return self.task.training_images(path, self.config.generator.get("in_channels", 3))
        except (ImageReadError, MedicalReadError, OSError) as error:
            if self.dist.is_main and path not in self.skipped:
                self.skipped.add(path)
                reason = str(error) if str(path) in str(error) else f"{path}: {error}"
                print(f"warning: skipped a training file that cannot be read: {reason}", file=sys.stderr)
            return []

    def _image_paths(self, folders: list[str], held_out: bool = False) -> list[Path]:
        """Training images, or with ``held_out`` the validation images; ``val_holdout``
        moves the last N training images (in path order) from the first list to the second."""
        data = self.config.data
        if held_out and data.val:
            return list_images(data.val, self.task.training_suffixes or IMAGE_SUFFIXES)
        suffixes = self.task.training_suffixes or IMAGE_SUFFIXES
        paths = [path for folder in folders for path in list_images(folder, suffixes)]
        holdout = 0 if data.val else data.val_holdout
        if holdout >= len(paths):
            raise ValueError(f"val_holdout={holdout} leaves no training images out of {len(paths)}")
        return paths[len(paths) - holdout :] if held_out else paths[: len(paths) - holdout]

    def _dataset(self):
        data = self.config.data
        if not data.train:
            raise ValueError("no training data: give --data DIR or data.train in the config")
        if data.layout == "clean":
            return DegradedPairs(self._load_images(data.train), self.task, self.config.task_options, data.crop, self.config.seed)
        if data.layout == "aligned":
            return AlignedPairs(self._load_images(data.train), data.crop, self.config.seed, data.direction, data.load_size)
        if data.layout == "unaligned":
            roots = [Path(folder) for folder in data.train]
            domain_a = self._load_images([str(root / "trainA") for root in roots])
            domain_b = self._load_images([str(root / "trainB") for root in roots])
            if data.direction == "BtoA":
                domain_a, domain_b = domain_b, domain_a
            return UnalignedPairs(domain_a, domain_b, data.crop, self.config.seed, data.load_size)
        raise ValueError(f"unknown data layout {data.layout!r}: clean, aligned or unaligned")

    def _loader(self) -> DataLoader:
        data = self.config.data
        sampler = StepSampler(data.batch_size, self.step, self.dist.rank, self.dist.world_size)
        return DataLoader(
            self._dataset(),
            batch_size=data.batch_size,
            sampler=sampler,
            # Its own generator: starting an iterator draws a worker seed from the one it
            # has, which from the global RNG would shift the dropout and image-pool draws
            # of a resumed run. Samples never use that seed (see restore.engine.data).
            generator=torch.Generator().manual_seed(self.config.seed),
            num_workers=data.workers,
            persistent_workers=data.workers > 0,
            prefetch_factor=4 if data.workers > 0 else None,
        )

    # -- state ---------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "best_score": self.best_score,
            "networks": {name: net.state_dict() for name, net in self.objective.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.objective.optimizers.items()},
            "ema": {name: ema.shadow.state_dict() for name, ema in self.emas.items()},
            "scaler": self.updater.scaler.state_dict(),
            "objective": self.objective.extra_state(),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": torch.from_numpy(np.frombuffer(json.dumps(_numpy_state()).encode(), dtype=np.uint8).copy()),
                "python": torch.from_numpy(np.frombuffer(json.dumps(random.getstate()).encode(), dtype=np.uint8).copy()),
            },
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        return state

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
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        _set_numpy_state(json.loads(bytes(rng["numpy"].tolist()).decode()))
        random.setstate(_tuples(json.loads(bytes(rng["python"].tolist()).decode())))
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def inference_network(self, name: str = "G") -> nn.Module:
        """The EMA generator when there is one, else the raw one."""
        return self.emas[name].shadow if name in self.emas else self.objective.networks[name]

    def _direction_of(self, generator: str) -> str:
        """What ``generator`` translates: G and CycleGAN's G_A go the run's direction,
        G_B (which maps the B side back) the other way."""
        direction = self.config.data.direction
        if generator == "G_B":
            return {"AtoB": "BtoA", "BtoA": "AtoB"}[direction]
        return direction

    def _network_spec(self) -> dict[str, Any]:
        """The generator's spec as saved with its weights: every field, no init."""
        if self.config.generator.get("arch") == COMMUNITY:
            return self.config.generator  # recognised from the checkpoint, already complete
        return network_spec(parse_network_spec(self.config.generator))

    def _save(self, best: bool) -> None:
        if not self.dist.is_main:
            return
        save_training_state(self.run_dir / "last.pt", self._state())
        for name in self.objective.generator_names:
            suffix = "" if name == "G" else f"_{name[2:]}"
            metadata = {
                "task": self.config.task,
                "network": self._network_spec(),
                "task_options": self.config.task_options,
                "step": self.step,
                "direction": self._direction_of(name),
            }
            weights = self.inference_network(name).state_dict()
            save_weights(self.run_dir / f"last{suffix}.safetensors", weights, metadata)
            if best:
                save_weights(self.run_dir / f"best{suffix}.safetensors", weights, metadata)

    # -- loop ----------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train to ``config.steps``; returns the last validation metrics (may be empty)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            if self.resume:
                self._discard_past_checkpoint()
            for path in self.replaced:
                path.unlink(missing_ok=True)
            atomic_write(self.run_dir / "config.toml", lambda temp: temp.write_text(to_toml(self.config)))
        config = self.config
        batches = iter(self._loader())
        validation = self._validation_pairs()
        translations = self._translation_samples()
        metrics: dict[str, float] = {}
        bar = self._progress_bar()
        for network in self.objective.networks.values():
            network.train()
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
                self._write_samples(validation)
            if self._due(config.log.sample_every) and translations:
                self._write_translation_samples(translations)
            if self._due(config.log.checkpoint_every) or best or self.step == config.steps:
                self._save(best or (not validation and self.step == config.steps))
        if bar is not None:
            bar.close()
        self.dist.barrier()
        return metrics

    def _discard_past_checkpoint(self) -> None:
        """A killed run may have got further than its last checkpoint: remove the temp files
        of the writes it was killed in, and the validation lines of the steps that now run
        again, so that metrics.jsonl keeps one line per step (TensorBoard events are
        dropped the same way, by the writer's ``purge_step``)."""
        remove_stale_temps([self.run_dir, self.run_dir / "samples"])
        log = self.run_dir / "metrics.jsonl"
        if log.is_file():
            lines = log.read_text().splitlines(keepends=True)
            kept = [line for line in lines if _logged_step(line) <= self.resumed_step]
            atomic_write(log, lambda temp: temp.write_text("".join(kept)))

    def _due(self, every: int) -> bool:
        return every > 0 and (self.step % every == 0 or self.step == self.config.steps)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        return tensor.contiguous(memory_format=torch.channels_last) if self.config.channels_last else tensor

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.config.steps, initial=self.step, desc=f"train {self.config.task}", unit="step", dynamic_ncols=True)

    def _log(self, losses: dict[str, float], bar) -> None:
        if bar is not None:
            bar.update(1)
            if self.step % 10 == 0:
                bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
        if self.dist.is_main and self._due(self.config.log.log_every) and self.writer is not None:
            for name, value in losses.items():
                self.writer.add_scalar(f"loss/{name}", value, self.step)
            self.writer.add_scalar("lr/G", self.objective.optimizers["G"].param_groups[0]["lr"], self.step)

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

    # -- validation ----------------------------------------------------------------------

    def _validation_pairs(self) -> list[tuple[torch.Tensor, ...]]:
        """Fixed (input, target) pairs from the held-out folder; the same in every run."""
        data = self.config.data
        if not (data.val or data.val_holdout) or data.layout == "unaligned" or not self.dist.is_main:
            return []
        # each architecture says what sizes it accepts (pix2pix_unet: 2 ** num_downs)
        multiple = int(getattr(self.objective.networks["G"], "size_multiple", 1))
        images = self._load_images(data.train, held_out=True)
        pairs = []
        for index, image in enumerate(images[: data.val_images]):
            if data.layout == "aligned":
                half = image.shape[-1] // 2
                a, b = image[..., :half], image[..., half : 2 * half]
                pair = (a, b) if data.direction == "AtoB" else (b, a)
                pairs.append(tuple(_crop_to(x, multiple, 256) for x in pair))
            else:
                clean = _crop_to(image, multiple * self.task.scale, 256 * self.task.scale)
                pairs.append(self.task.make_pair(clean, self.config.task_options, sample_generator(VALIDATION_SEED, index)))
        return pairs

    @torch.no_grad()
    def _validate(self, pairs) -> dict[str, float]:
        network = self.inference_network("G").eval()
        scores = {"psnr": 0.0, "ssim": 0.0}
        for source, target, *_ in pairs:  # *_: a task's loss weights
            with self.amp():
                output = network(self._to_device(source[None])).float().clamp(0, 1).cpu()
            scores["psnr"] += psnr(output, target[None]) / len(pairs)
            scores["ssim"] += ssim(output, target[None]) / len(pairs)
        if network is self.objective.networks["G"]:
            network.train()
        if self.writer is not None:
            for name, value in scores.items():
                self.writer.add_scalar(f"val/{name}", value, self.step)
        with open(self.run_dir / "metrics.jsonl", "a") as log:
            log.write(json.dumps({"step": self.step, **scores}) + "\n")
        self._warn_if_stalled()
        return scores

    def _warn_if_stalled(self) -> None:
        """:class:`TrainingStalled` when the last ``STALL_VALIDATIONS`` validation PSNRs in
        metrics.jsonl (so a resumed run counts the ones before it) agree to within
        ``STALL_TOLERANCE_DB``. A warning, not an error: the run may be one the user wants
        to finish anyway."""
        lines = (self.run_dir / "metrics.jsonl").read_text().splitlines()
        recent = [json.loads(line)["psnr"] for line in lines[-STALL_VALIDATIONS:]]
        if len(recent) == STALL_VALIDATIONS and max(recent) - min(recent) <= STALL_TOLERANCE_DB:
            warnings.warn(
                f"step {self.step}: validation PSNR has been {recent[-1]:.4f} dB for {STALL_VALIDATIONS} "
                f"evaluations: the generator's output has stopped changing (a dead layer, or a learning "
                f"rate of ~0). Check the samples in {self.run_dir / 'samples'} before training on.",
                TrainingStalled,
                stacklevel=2,
            )

    @torch.no_grad()
    def _write_samples(self, pairs) -> None:
        network = self.inference_network("G").eval()
        rows = []
        for source, target, *_ in pairs[:4]:  # *_: a task's loss weights
            with self.amp():
                output = network(self._to_device(source[None])).float().clamp(0, 1).cpu()[0]
            shown_input = source[: target.shape[0]]
            if shown_input.shape[-1] != target.shape[-1]:
                shown_input = torch.nn.functional.interpolate(shown_input[None], size=target.shape[-2:], mode="nearest")[0]
            rows += [shown_input.clamp(0, 1), output, target]
        if network is self.objective.networks["G"]:
            network.train()
        self._save_grid(rows)

    def _translation_samples(self) -> list[tuple[torch.Tensor, str]]:
        """Unpaired runs have no targets to validate against; their sample grids show the
        first two images of each domain (after ``direction``) with the generator to apply."""
        data = self.config.data
        if data.layout != "unaligned" or not self.dist.is_main:
            return []
        multiple = int(getattr(self.objective.networks["G_A"], "size_multiple", 1))
        suffixes = self.task.training_suffixes or IMAGE_SUFFIXES
        folders = ("trainA", "trainB") if data.direction == "AtoB" else ("trainB", "trainA")
        samples = []
        for generator, folder in zip(("G_A", "G_B"), folders):
            paths = [path for root in data.train for path in list_images(Path(root) / folder, suffixes)]
            firsts = (image for path in paths for image in self._read_training_file(path)[:1])
            images = list(itertools.islice(firsts, 2))
            samples += [(_crop_to(image, multiple, 256), generator) for image in images]
        return samples

    @torch.no_grad()
    def _write_translation_samples(self, samples: list[tuple[torch.Tensor, str]]) -> None:
        """Rows of real | translated | translated back (CycleGAN's real, fake, rec)."""
        rows = []
        for image, name in samples:
            forward = self.inference_network(name).eval()
            backward = self.inference_network("G_B" if name == "G_A" else "G_A").eval()
            with self.amp():
                translated = forward(self._to_device(image[None])).float()
                restored = backward(translated).float()
            rows += [image.clamp(0, 1), translated.clamp(0, 1).cpu()[0], restored.clamp(0, 1).cpu()[0]]
        for name in ("G_A", "G_B"):
            if self.inference_network(name) is self.objective.networks[name]:
                self.objective.networks[name].train()
        self._save_grid(rows)

    def _save_grid(self, rows: list[torch.Tensor]) -> None:
        """``samples/step_N.png``: the images three to a row. Held-out images differ in size
        (validation crops them only down to a limit): they are padded to the largest, as
        the grid needs equal tiles."""
        from torchvision.utils import save_image

        height, width = max(row.shape[-2] for row in rows), max(row.shape[-1] for row in rows)
        rows = [torch.nn.functional.pad(row, (0, width - row.shape[-1], 0, height - row.shape[-2])) for row in rows]
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        atomic_write(path, lambda temp: save_image(rows, temp, nrow=3, format="png"))


def previous_run_files(run_dir: Path) -> list[Path]:
    """The outputs of an earlier run in ``run_dir`` (only files the trainer names itself)."""
    if not run_dir.is_dir():
        return []
    return sorted({path for pattern in RUN_OUTPUTS for path in run_dir.glob(pattern) if path.is_file()})


def _logged_step(line: str) -> float:
    """The step of one metrics.jsonl line; infinite for a line a kill cut short."""
    try:
        return json.loads(line)["step"] if line.endswith("\n") else math.inf
    except (ValueError, KeyError, TypeError):
        return math.inf


def _crop_to(image: torch.Tensor, multiple: int, limit: int) -> torch.Tensor:
    """Centre crop to at most ``limit`` pixels a side and a multiple of ``multiple``. An
    image too small for that, or for SSIM's window, is padded first (as training crops are)."""
    smallest = -(-SSIM_WINDOW // multiple) * multiple
    image = pad_to(image, smallest, smallest)
    height = min(image.shape[-2], limit) // multiple * multiple
    width = min(image.shape[-1], limit) // multiple * multiple
    top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
    return image[..., top : top + height, left : left + width]


def seed_everything(seed: int) -> None:
    """Seed torch and the global numpy and Python RNGs. restore itself draws only from
    torch (samples have their own generators), but last.pt saves all three and a resumed
    run restores them: left unseeded, a fresh process starts numpy and Python from OS
    entropy, and a run resumed in another process could never match an uninterrupted one."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _numpy_state() -> list:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), position, has_gauss, cached]


def _set_numpy_state(state: list) -> None:
    name, keys, position, has_gauss, cached = state
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))


def _tuples(value):
    """JSON turns Python's RNG state tuples into lists; turn them back."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value
