"""Adding and removing the user's own named models: ``restore weights add FILE --name NAME``
and ``restore weights remove NAME``. A file is recognised (restore.zoo.models) and checked
to load safely before restore.weights.user_models records it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from restore.weights import WeightsError, load_manifest, sha256_of
from restore.weights.user_models import MODELS_FOLDER, UserModel, load_registry, restore_home, save_registry

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def add_model(source: Path, name: str, task: str | None = None, link: bool = False) -> UserModel:
    """Record ``source`` (checked to load safely and to be recognised, for ``task`` when
    given) under ``name``: copied into the models folder, or referred to with ``link``."""
    if not _NAME.match(name):
        raise WeightsError(f"{name!r}: a model name is letters, digits and . _ + - (it becomes a file name)")
    if name in load_manifest():
        raise WeightsError(f"{name!r} is the name of a shipped model; choose another")
    models = load_registry()
    if name in models:
        raise WeightsError(f"a user model named {name!r} exists; `restore weights remove {name}` first")
    from restore.zoo.models import describe_file

    described = describe_file(source, task)
    if task is not None and described["task"] != task:
        raise WeightsError(f"{source}: these weights are for {described['task']}, not {task}")
    if described["task"] is None:
        raise WeightsError(f"{source}: {described['architecture']} ({described['purpose']}): no restore command runs it")
    source = source.resolve()
    if link:
        file = str(source)
    else:
        from restore.io.atomic import atomic_write

        file = f"{name}{source.suffix.lower()}"
        target = restore_home() / MODELS_FOLDER / file
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda temp: shutil.copyfile(source, temp))
    model = UserModel(
        name=name, task=described["task"], file=file, sha256=sha256_of(Path(file) if link else target),
        linked=link, architecture=described["architecture"], scale=described["scale"],
        channels=described["in_channels"], parameters=described["parameters"], source=str(source),
    )
    models[name] = model
    save_registry(models)
    return model


def remove_model(name: str) -> UserModel:
    """Forget a user model and delete restore's copy of it (a linked file is left alone)."""
    models = load_registry()
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise WeightsError(f"no user model named {name!r} (user models: {known})")
    model = models.pop(name)
    save_registry(models)
    if not model.linked:
        model.path.unlink(missing_ok=True)
    return model
