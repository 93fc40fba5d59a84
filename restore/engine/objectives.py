"""What one training step optimises. The :class:`~restore.engine.train.Trainer` owns the
loop, schedules, EMA, checkpoints and logging; an objective owns the networks, their
optimisers and the losses of one step.

- :class:`PairedObjective`: pix2pix. G maps input to target with a reconstruction loss;
  with ``adversarial_weight > 0`` a conditional PatchGAN judges ``(input, output)`` pairs.
  ``adversarial_weight = 0`` is a plain PSNR-oriented model trained by the same loop.
- :class:`UnpairedObjective`: CycleGAN. Two generators, two discriminators, cycle and
  identity losses, image pools.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from restore.engine.config import TrainConfig
from restore.losses import (
    GANLoss,
    ImagePool,
    VGGPerceptualLoss,
    feature_matching_loss,
    gradient_penalty,
    r1_penalty,
    reconstruction_loss,
    ssim_loss,
)
from restore.nets import build_network
from restore.zoo.finetune import community_generator
from restore.zoo.network import ARCH as COMMUNITY
from restore.nets.init import init_weights


class Updater:
    """Backward + optimiser step with the run's gradient scaling (fp16) and clipping."""

    def __init__(self, device: torch.device, precision: str, grad_clip: float) -> None:
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.grad_clip = grad_clip

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(parameters, self.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()


def _adam(networks: list[nn.Module], lr: float, betas: list[float]) -> torch.optim.Adam:
    parameters = [p for network in networks for p in network.parameters()]
    return torch.optim.Adam(parameters, lr=lr, betas=(betas[0], betas[1]))


def _set_requires_grad(network: nn.Module, flag: bool) -> None:
    for parameter in network.parameters():
        parameter.requires_grad_(flag)


class Objective:
    """Shared plumbing: networks by name, their optimisers, and the GAN loss pieces."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.loss = config.loss
        self.networks: dict[str, nn.Module] = {}
        # what train_step calls: the same modules, or their DistributedDataParallel wrappers
        self.wrapped: dict[str, nn.Module] = self.networks
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lrs: dict[str, float] = {}
        self.gan = GANLoss(config.loss.gan, config.loss.label_smoothing)
        self.perceptual: VGGPerceptualLoss | None = None
        if config.loss.perceptual_weight > 0:
            self.perceptual = VGGPerceptualLoss(config.loss.vgg_weights)

    def extra_state(self) -> dict[str, Any]:
        """State beyond networks and optimisers that a bit-exact resume needs."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        del state  # nothing beyond networks and optimisers by default

    @property
    def generator_names(self) -> list[str]:
        """Networks whose EMA is kept and exported for inference."""
        return [name for name in self.networks if name.startswith("G")]

    def _add_networks(self, optimizer: str, names: list[str], spec: dict[str, Any], lr: float, betas: list[float]) -> None:
        """Build ``names`` from one spec and give them one Adam optimiser (as CycleGAN
        chains both generators' parameters into a single optimiser)."""
        init = spec.get("init", {})
        for name in names:
            if spec.get("arch") == COMMUNITY:  # fine-tuning a community checkpoint: its own weights
                network = community_generator(spec, self.config.init_weights, self.config.task)
            else:
                network = build_network(spec)
                init_weights(network, init.get("type", "normal"), init.get("gain", 0.02))
            self.networks[name] = network
        self.optimizers[optimizer] = _adam([self.networks[name] for name in names], lr, betas)
        self.base_lrs[optimizer] = lr

    def discriminator_loss(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's loss on real vs (detached) fake inputs, with the configured penalties."""
        if self.loss.r1_weight > 0:
            real = real.detach().requires_grad_(True)
        real_outputs = discriminator(real)
        fake_outputs = discriminator(fake.detach())
        loss = self.gan.discriminator_loss(real_outputs, fake_outputs)
        if self.loss.gan == "wgangp":
            loss = loss + self.loss.gradient_penalty_weight * gradient_penalty(discriminator, real, fake)
        if self.loss.r1_weight > 0:
            loss = loss + self.loss.r1_weight * r1_penalty(real_outputs, real)
        return loss

    def generator_adversarial_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor:
        fake_outputs = discriminator(fake)
        loss = self.gan.generator_loss(fake_outputs)
        if self.loss.feature_matching_weight > 0:
            with torch.no_grad():
                real_outputs = discriminator(real)
            loss = loss + self.loss.feature_matching_weight * feature_matching_loss(real_outputs, fake_outputs)
        return loss

    def output_losses(
        self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Reconstruction (+ SSIM, + perceptual) between an output and its target;
        ``weight`` is the task's per-pixel weight of the reconstruction term, if any."""
        loss = self.loss.reconstruction_weight * reconstruction_loss(self.loss.reconstruction, output, target, weight)
        if self.loss.ssim_weight > 0:
            loss = loss + self.loss.ssim_weight * ssim_loss(output, target)
        if self.perceptual is not None:
            loss = loss + self.loss.perceptual_weight * self.perceptual(output, target)
        return loss


class PairedObjective(Objective):
    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        optim = config.optim
        self._add_networks("G", ["G"], config.generator, optim.lr_g, optim.betas_g)
        self.adversarial = config.loss.adversarial_weight > 0
        if self.adversarial:
            if not config.discriminator:
                raise ValueError("adversarial_weight > 0 needs a [discriminator] section")
            self._add_networks("D", ["D"], config.discriminator, optim.lr_d, optim.betas_d)

    def train_step(self, batch: tuple[torch.Tensor, ...], updater: Updater, amp) -> dict[str, float]:
        """``batch``: inputs, targets and optionally per-pixel loss weights (see Task.make_pair)."""
        source, target, *weight = batch
        with amp():
            output = self.wrapped["G"](source).float()
        losses: dict[str, float] = {}
        if self.adversarial:
            condition = source[:, : target.shape[1]] if source.shape[-1] == target.shape[-1] else None
            real, fake = _conditioned(condition, target), _conditioned(condition, output)
            _set_requires_grad(self.networks["D"], True)
            with amp():
                d_loss = self.discriminator_loss(self.wrapped["D"], real, fake)
            updater.step(d_loss, self.optimizers["D"])
            losses["D"] = d_loss.item()
            _set_requires_grad(self.networks["D"], False)
        with amp():
            g_loss = self.output_losses(output, target, weight[0] if weight else None)
            if self.adversarial:
                adversarial = self.generator_adversarial_loss(self.networks["D"], real, fake)
                losses["G_adv"] = adversarial.item()
                g_loss = g_loss + self.loss.adversarial_weight * adversarial
        updater.step(g_loss, self.optimizers["G"])
        losses["G"] = g_loss.item()
        return losses


def _conditioned(condition: torch.Tensor | None, image: torch.Tensor) -> torch.Tensor:
    """pix2pix's conditional D sees the input next to the image being judged; where sizes
    differ (super-resolution) it judges the image alone."""
    return image if condition is None else torch.cat([condition, image], dim=1)


class UnpairedObjective(Objective):
    """CycleGAN: G_A: A->B, G_B: B->A, D_A judges B-domain images, D_B judges A-domain ones."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        optim = config.optim
        self._add_networks("G", ["G_A", "G_B"], config.generator, optim.lr_g, optim.betas_g)
        self._add_networks("D", ["D_A", "D_B"], config.discriminator, optim.lr_d, optim.betas_d)
        self.pools = {"A": ImagePool(config.loss.pool_size), "B": ImagePool(config.loss.pool_size)}

    def extra_state(self) -> dict[str, Any]:
        return {name: pool.state_dict() for name, pool in self.pools.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, pool in self.pools.items():
            pool.load_state_dict(state[name])

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], updater: Updater, amp) -> dict[str, float]:
        real_a, real_b = batch
        # The generators run through their DDP wrappers; the discriminators' G-step passes
        # use the plain modules: they are frozen there, and DDP would wait for their grads.
        n = {**self.networks, "G_A": self.wrapped["G_A"], "G_B": self.wrapped["G_B"]}
        cycle, identity = self.loss.cycle_weight, self.loss.identity_weight * self.loss.cycle_weight
        for name in ("D_A", "D_B"):
            _set_requires_grad(n[name], False)
        with amp():
            fake_b, fake_a = n["G_A"](real_a).float(), n["G_B"](real_b).float()
            g_loss = self.gan.generator_loss(n["D_A"](fake_b)) + self.gan.generator_loss(n["D_B"](fake_a))
            cycle_loss = (
                reconstruction_loss("l1", n["G_B"](fake_b).float(), real_a)
                + reconstruction_loss("l1", n["G_A"](fake_a).float(), real_b)
            )
            g_loss = g_loss + cycle * cycle_loss
            if identity > 0:
                g_loss = g_loss + identity * (
                    reconstruction_loss("l1", n["G_A"](real_b).float(), real_b)
                    + reconstruction_loss("l1", n["G_B"](real_a).float(), real_a)
                )
        updater.step(g_loss, self.optimizers["G"])
        losses = {"G": g_loss.item(), "cycle": cycle_loss.item()}
        for name in ("D_A", "D_B"):
            _set_requires_grad(n[name], True)
        with amp():
            # D_A judges B-domain images (G_A's outputs), D_B judges A-domain ones; halved as in CycleGAN
            d_a = 0.5 * self.discriminator_loss(self.wrapped["D_A"], real_b, self.pools["B"].query(fake_b.detach()))
            d_b = 0.5 * self.discriminator_loss(self.wrapped["D_B"], real_a, self.pools["A"].query(fake_a.detach()))
        updater.step(d_a + d_b, self.optimizers["D"])
        losses.update(D_A=d_a.item(), D_B=d_b.item())
        return losses
