"""The labelled relevance set (tests/relevance_set.py: 75 queries over 334 sessions): hybrid
search beats full text on paraphrases and misspellings and never loses on exact identifiers
(file names, error codes). bench/semantic.py prints the same table."""

import pytest

from opensync_lite import create_app, db, queries
from opensync_lite.semantic import encoders, worker

import relevance_set
from conftest import make_key


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    """{(search type, query): ranked external ids}, the history sent through the sync routes."""
    app = create_app({"OPENSYNC_DB": str(tmp_path_factory.mktemp("relevance") / "opensync.db")})
    client = app.test_client()
    relevance_set.load(client, {"Authorization": f"Bearer {make_key(app)}"})
    out = {}
    with app.app_context():
        db.connect()
        worker.backfill(encoders.encoder_for(app.config))

        def search(kind, query):
            if (kind, query) not in out:
                out[kind, query] = [hit["external_id"] for hit in queries.search(1, query, limit=10, kind=kind)[0]]
            return out[kind, query]

        table = relevance_set.evaluate(search)
    app.extensions["opensync"].close()
    return out, table


def test_the_set_is_large_and_labelled():
    labelled = relevance_set.queries()
    assert len(labelled) >= 50
    assert {kind for kind, _, _ in labelled} == {"exact", "paraphrase", "misspelling"}
    assert all(expected for _, _, expected in labelled)


def test_hybrid_beats_full_text_on_paraphrases_and_misspellings(ranked):
    _, table = ranked
    for kind in ("paraphrase", "misspelling"):
        recall_text, mrr_text = table["fulltext"][kind]
        recall_hybrid, mrr_hybrid = table["hybrid"][kind]
        assert recall_hybrid >= recall_text + 0.4 and mrr_hybrid > mrr_text, table
    assert table["hybrid"]["all"][1] > table["semantic"]["all"][1] - 0.01, table


def test_hybrid_never_loses_on_exact_identifiers(ranked):
    out, table = ranked
    assert table["fulltext"]["exact"][0] == 1.0  # full text finds every identifier...
    for kind, query, expected in relevance_set.queries():
        if kind != "exact":
            continue
        text_rank = relevance_set.scores(out["fulltext", query], expected)
        hybrid_rank = relevance_set.scores(out["hybrid", query], expected)
        assert hybrid_rank >= text_rank, (query, out["fulltext", query][:5], out["hybrid", query][:5])  # ... so does hybrid
