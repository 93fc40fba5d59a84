"""An :class:`~restore.web.runner.Output` as the answer: the file's bytes with its report
entry in a header, or (``?format=json``) both in one JSON object."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from fastapi import Response
from fastapi.responses import JSONResponse

from restore.web.runner import Output

REPORT_HEADER = "X-Restore-Report"
Format = Literal["file", "json"]

# The answers a route that runs an image may give, for the OpenAPI page.
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": f"The output file, as the CLI writes it (same format as the input); the image's "
                         f"report.json entry is in the {REPORT_HEADER} header (JSON). With ?format=json: "
                         f"{{filename, media_type, report, image (base64)}}.",
          "content": {"image/png": {}, "image/jpeg": {}, "image/tiff": {}, "application/json": {}}},
    413: {"description": "The request or the image (decoded pixels, --max-pixels) is larger than the server's limit."},
    422: {"description": "A bad option or image, with the reason the CLI would give."},
    503: {"description": "Busy: every worker runs and the queue is full; retry after Retry-After seconds."},
}


def image_response(output: Output, answer: Format) -> Response:
    if answer == "json":
        return JSONResponse({"filename": output.filename, "media_type": output.media_type, "report": output.report,
                             "image": base64.b64encode(output.content).decode("ascii")})
    headers = {REPORT_HEADER: json.dumps(output.report, ensure_ascii=True),
               "Content-Disposition": f'attachment; filename="{output.filename}"'}
    return Response(output.content, media_type=output.media_type, headers=headers)
