"""Benchmarks with the literature's protocols, one module each: folder-vs-folder scoring
(``pairs``), denoising, super-resolution, inpainting, style and medical, and the rows their
tables can have (``methods``). Nothing is imported here, so naming the rows costs nothing."""
