"""Bring your own model: checkpoints published by other projects, run by restore's engine.

Architectures are recognised from a state dict by spandrel (the library chaiNNer and
ComfyUI use), imported only when such a file is opened. The files are always read by
restore itself (safetensors, or ``torch.load(weights_only=True)``), never by spandrel's
loader, so no checkpoint can run code (:mod:`restore.zoo.files`).

- :mod:`restore.zoo.files`: safe reading and unwrapping of community checkpoints;
- :mod:`restore.zoo.network`: a recognised architecture behind restore's network interface;
- :mod:`restore.zoo.ffdnet`: KAIR's FFDNet, which spandrel takes for DnCNN;
- :mod:`restore.zoo.registry`: the user's own named models (``restore weights add``).
"""
