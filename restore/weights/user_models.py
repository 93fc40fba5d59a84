"""Where the user's own named models are kept (``restore weights add FILE --name NAME``).

Files are copied (or, with ``link``, referred to where they are) under the user's data
folder (``platformdirs``' user data dir for ``restore``; ``RESTORE_HOME`` overrides it),
and recorded in ``models.toml`` there with their sha256, task and architecture, so
``--weights NAME`` finds them and a file changed since is refused. This module is the
store; recognising a file's architecture before adding it is restore.zoo.registry's job.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from restore.weights.format import WeightsError, sha256_of

REGISTRY_FILE = "models.toml"
MODELS_FOLDER = "models"


@dataclass(frozen=True)
class UserModel:
    name: str
    task: str
    file: str  # absolute path (linked) or a name in the models folder (copied)
    sha256: str
    linked: bool
    architecture: str
    scale: int = 1
    channels: int = 3
    parameters: int = 0
    source: str = ""  # the file it was added from

    @property
    def path(self) -> Path:
        return Path(self.file) if self.linked else restore_home() / MODELS_FOLDER / self.file


def restore_home() -> Path:
    """The user's restore data folder: ``RESTORE_HOME``, else platformdirs' user data dir."""
    if os.environ.get("RESTORE_HOME"):
        return Path(os.environ["RESTORE_HOME"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("restore", appauthor=False))


def load_registry() -> dict[str, UserModel]:
    path = restore_home() / REGISTRY_FILE
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        return {name: UserModel(name=name, **fields) for name, fields in data.get("models", {}).items()}
    except (tomllib.TOMLDecodeError, TypeError) as error:
        raise WeightsError(f"{path}: damaged model registry ({error}); fix or delete it") from error


def save_registry(models: dict[str, UserModel]) -> None:
    import tomli_w

    from restore.io.atomic import atomic_write

    tables = {name: {k: v for k, v in dataclasses.asdict(model).items() if k != "name"}
              for name, model in sorted(models.items())}
    text = "# restore's user models: written by `restore weights add/remove`\n" + tomli_w.dumps({"models": tables})
    path = restore_home() / REGISTRY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda temp: temp.write_text(text))


def checked_path(model: UserModel) -> Path:
    """The model's file, refused when it is missing or changed since it was added."""
    path = model.path
    if not path.is_file():
        raise WeightsError(f"user model {model.name!r}: its file {path} is missing; "
                           f"`restore weights remove {model.name}` and add it again")
    actual = sha256_of(path)
    if actual != model.sha256:
        raise WeightsError(
            f"user model {model.name!r}: {path} has sha256 {actual[:12]}..., it was {model.sha256[:12]}... when "
            f"added: the file changed; `restore weights remove {model.name}` and add it again if that was intended"
        )
    return path


