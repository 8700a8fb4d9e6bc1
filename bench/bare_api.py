"""The API's baseline: FastAPI's hello-world on uvicorn, answering ``{"hello": "world"}``.

Run as its own process (``python -m bench.bare_api PORT``), like ``mailcase serve``, so
both meet the same HTTP clients on the same cores. The server is set up as mailcase's
(web.server): uvicorn's default protocol and loop, no access log, no lifespan, no
Server header; and the route is a plain ``def``, as mailcase's routes are, so both pay
FastAPI's hop to its thread pool. What mailcase adds over this is its own work: the key
check, the case read from the database, and its larger JSON.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None,
                access_log=False, lifespan="off", server_header=False)
