"""``python -m restore`` (also what ``torchrun -m restore train ...`` runs)."""

from restore.cli import main

main()
