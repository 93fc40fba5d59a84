"""``restore serve``: the web page and the HTTP API, one FastAPI app on the same engine
functions as the CLI (``process_folder``, ``run_chain``).

Between the CLI and the api layer: the command parser of the task options (the CLI's own
click parameters) is handed in by ``restore serve`` (:class:`restore.web.settings.Parsers`),
as this package imports nothing from ``restore.cli``. FastAPI is imported only here, so the
rest of restore runs without the ``[web]`` extra.
"""
