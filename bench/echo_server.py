"""The baseline: a bare Flask app that echoes a JSON body, served by waitress like opensync-lite."""

import sys

from flask import Flask, request
from waitress import create_server

app = Flask(__name__)


@app.post("/echo")
def echo():
    return request.get_json()


if __name__ == "__main__":
    server = create_server(app, host="127.0.0.1", port=0, threads=int(sys.argv[1]) if len(sys.argv) > 1 else 8)
    print(f"listening on http://127.0.0.1:{server.effective_port}", flush=True)
    server.run()
