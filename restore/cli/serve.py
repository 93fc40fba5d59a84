"""``restore serve``: the web page and the HTTP API (restore.web) under uvicorn."""

from __future__ import annotations

import click

from restore.io.limits import MAX_PIXELS, MAX_VOXELS

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default is this machine only; 0.0.0.0 lets anyone on the network "
                   "use the server (and its CPU/GPU).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Images restored at once; memory grows with it.")
@click.option("--queue", default=8, show_default=True, type=click.IntRange(0),
              help="Requests that may wait for a worker; more get 503 with Retry-After.")
@click.option("--max-upload-bytes", default=256 * 1024 * 1024, show_default=True, type=click.IntRange(1),
              help="Larger requests get 413 before they are read.")
@click.option("--max-pixels", default=MAX_PIXELS, show_default=True, type=click.IntRange(1),
              help="Images with more pixels get 413 before decoding (decompression bombs).")
@click.option("--max-voxels", default=MAX_VOXELS, show_default=True, type=click.IntRange(1),
              help="Scans (restore medical) whose header declares more voxels are refused before decoding.")
def serve(host: str, port: int, workers: int, queue: int, max_upload_bytes: int, max_pixels: int,
          max_voxels: int) -> None:
    """A web page (http://HOST:PORT/) and an HTTP API (documented at /docs) on the same engine
    as the commands: upload images, try the options, compare before and after, download the
    file the command would write. Needs the web extra: pip install 'restore[web]'."""
    try:
        import uvicorn

        from restore.web.app import create_app
    except ImportError as error:
        raise click.UsageError(f"restore serve needs the web extra ({error.name} is missing): "
                               f"pip install 'restore[web]'") from error
    from restore.cli.chain import parse_step, task_settings
    from restore.cli.medical import scan_settings
    from restore.web.settings import Parsers, ServeSettings

    if host not in LOCAL_HOSTS:
        click.echo(f"warning: listening on {host}: anyone who can reach this machine on port {port} can use the "
                   f"server (no authentication)", err=True)
    settings = ServeSettings(workers=workers, queue=queue, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
                             max_voxels=max_voxels)
    app = create_app(settings, Parsers(task_options=task_settings, step=parse_step, scan_options=scan_settings))
    click.echo(f"restore serve: http://{'[' + host + ']' if ':' in host else host}:{port}/ (API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
