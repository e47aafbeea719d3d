"""Encoders: a list of texts → an (n, d) float32 array of unit vectors, and a ``name`` that is
stored beside each vector (vectors of two models cannot be compared).

The default is local: WordLlama's 256-dimension model (token embeddings pooled, from Llama 2's
vocabulary), about 16 MB of weights and its tokenizer inside the ``wordllama`` wheel, so it
works on a machine without network. With OPENSYNC_EMBED_URL set, any OpenAI-compatible
``/embeddings`` endpoint (Ollama, LM Studio, OpenAI) is used instead, with
OPENSYNC_EMBED_MODEL and OPENSYNC_EMBED_KEY."""

import json
import os
import threading
import urllib.error
import urllib.request

from ..errors import ApiError

INSTALL = "pip install 'opensync-lite[semantic]'"
LOCAL_NAME = "wordllama-l2-supercat-256"


class Unavailable(ApiError):
    """Semantic search cannot run here: the extra is missing or the endpoint failed (503)."""

    def __init__(self, message):
        super().__init__(503, message, {"type": [message]})


def settings(config=None):
    """The encoder settings: the app's config first, then the environment."""
    config = config or {}
    get = lambda name, default=None: config.get(name) or os.environ.get(name) or default  # noqa: E731
    return {"url": get("OPENSYNC_EMBED_URL"), "model": get("OPENSYNC_EMBED_MODEL", "text-embedding-3-small"),
            "key": get("OPENSYNC_EMBED_KEY"), "timeout": float(get("OPENSYNC_EMBED_TIMEOUT", 30))}


def _numpy():
    try:
        import numpy
    except ImportError:
        raise Unavailable(f"Semantic search needs the `semantic` extra: {INSTALL}") from None
    return numpy


class LocalEncoder:
    """WordLlama from the files inside its wheel. Its ``load()`` looks for the tokenizer in a
    folder named after the file type (``tokenizer/``) while the wheel ships ``tokenizers/``, and
    would then download it: pointing its cache at the package folder finds the shipped copy, and
    downloads stay off."""

    name = LOCAL_NAME
    prefix = 64  # trained Matryoshka-style: its first 64 dimensions are a vector too (store.py)

    def __init__(self):
        try:
            import wordllama
        except ImportError:
            raise Unavailable(f"Semantic search needs the `semantic` extra: {INSTALL}") from None
        from pathlib import Path

        self.np = _numpy()
        self.model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        self.dim = self.model.embedding.shape[1] if hasattr(self.model, "embedding") else 256

    def encode(self, texts):
        if not texts:
            return self.np.zeros((0, self.dim), dtype=self.np.float32)
        vectors = self.np.asarray(self.model.embed(list(texts), norm=True), dtype=self.np.float32)
        return vectors


class HttpEncoder:
    """An OpenAI-compatible embeddings endpoint: POST {url}/embeddings {"model", "input": [...]}
    → {"data": [{"index", "embedding"}]}. ``url`` is the API base (…/v1) or the full
    …/embeddings address."""

    def __init__(self, url, model, key=None, timeout=30.0):
        self.np = _numpy()
        base = url.rstrip("/")
        self.url = base if base.endswith("/embeddings") else base + "/embeddings"
        self.model, self.key, self.timeout = model, key, timeout
        self.name = f"api:{model}"
        self.prefix = None  # not known to be Matryoshka-trained: every query scans every dimension

    def encode(self, texts):
        np = self.np
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        body = json.dumps({"model": self.model, "input": list(texts)}).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
            rows = sorted(answer["data"], key=lambda item: item["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as err:
            raise Unavailable(f"The embeddings endpoint {self.url} failed: {err}") from None
        if len(vectors) != len(texts) or vectors.ndim != 2:
            raise Unavailable(f"The embeddings endpoint {self.url} answered {len(vectors)} vectors for {len(texts)} texts")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)


_cache, _lock = {}, threading.Lock()


def encoder_for(config=None):
    """The encoder the settings name, made once per process (the local model is loaded once:
    about 2 s and 100 MB); raises Unavailable when it cannot be had."""
    conf = settings(config)
    key = (conf["url"], conf["model"], conf["key"]) if conf["url"] else "local"
    with _lock:
        if key not in _cache:
            _cache[key] = (HttpEncoder(conf["url"], conf["model"], conf["key"], conf["timeout"])
                           if conf["url"] else LocalEncoder())
        return _cache[key]
