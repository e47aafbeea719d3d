"""Cost when the client sent none: priced from the tokens with genai-prices, marked as an
estimate; a client's cost always wins; an unknown model is unpriced, never $0; reprice."""

import subprocess

import pytest

from opensync_lite.pricing import price

from conftest import CLI, rows

SONNET = "claude-sonnet-4-20250514"


def test_price_of_the_four_kinds():
    # Sonnet 4: $3 input, $15 output, $3.75 cache write, $0.30 cache read per million tokens.
    assert price(SONNET, 1000, 500, 2000, 10000) == pytest.approx((3000 + 7500 + 7500 + 3000) / 1e6)
    assert price("claude-3-5-haiku-20241022", 1_000_000, 0) == pytest.approx(0.80)
    assert price("acme-model-9", 10, 10) is None and price(None, 10, 10) is None
    assert price("<synthetic>", 10, 10) == 0


def test_long_context_tier_prices_the_whole_request():
    # Sonnet 4.5 over 200k prompt tokens: $6 / $22.50 per million on every token of the request.
    assert price("claude-sonnet-4-5-20250929", 250_000, 500) == pytest.approx(250_000 * 6e-6 + 500 * 22.5e-6)
    assert price("claude-sonnet-4-5-20250929", 150_000, 500) == pytest.approx(150_000 * 3e-6 + 500 * 15e-6)
    # Cache tokens count toward the threshold.
    assert price("claude-sonnet-4-5-20250929", 1000, 0, 0, 210_000) == pytest.approx(1000 * 6e-6 + 210_000 * 0.6e-6)


def test_a_session_without_cost_is_estimated_from_its_four_kinds_and_a_clients_cost_wins(api):
    api.post("/sync/session", {"externalId": "e", "model": SONNET, "inputTokens": 1000, "outputTokens": 100,
                               "cacheReadTokens": 5000, "promptTokens": 6000, "completionTokens": 100})
    session = api.session("e")["session"]
    assert session["costEstimated"] is True and session["costBasis"] == "estimated"
    assert session["cost"] == pytest.approx(price(SONNET, 1000, 100, 0, 5000))
    api.post("/sync/session", {"externalId": "e", "outputTokens": 200, "completionTokens": 200})
    assert api.session("e")["session"]["cost"] == pytest.approx(price(SONNET, 1000, 200, 0, 5000))
    api.post("/sync/session", {"externalId": "e", "cost": 1.25})
    session = api.session("e")["session"]
    assert session["cost"] == 1.25 and session["costEstimated"] is False and session["costBasis"] == "recorded"
    api.post("/sync/session", {"externalId": "e", "outputTokens": 300})
    assert api.session("e")["session"]["cost"] == 1.25


def test_tokens_without_their_split_are_never_priced_as_fresh_input(api):
    """claude-code-sync sends promptTokens with the cache folded in, no split, and cost 0 for
    models its table lacks: pricing that prompt as input would be many times the real cost."""
    api.post("/sync/session", {"externalId": "c", "model": "claude-sonnet-4-5-20250929", "promptTokens": 18036,
                               "completionTokens": 68, "cost": 0})
    session = api.session("c")["session"]
    assert session["cost"] == 0 and session["unpriced"] is True and session["costEstimated"] is False
    assert session["costBasis"] == "no-token-split"
    assert api.get("/api/stats").get_json()["unpricedSessions"] == 1


def test_unknown_models_are_unpriced_in_stats(api):
    api.post("/sync/session", {"externalId": "u", "model": "acme-model-9", "inputTokens": 10, "outputTokens": 5,
                               "promptTokens": 10, "completionTokens": 5})
    api.post("/sync/session", {"externalId": "k", "model": SONNET, "promptTokens": 10, "completionTokens": 5, "cost": 0.5})
    session = api.session("u")["session"]
    assert session["unpriced"] is True and session["cost"] == 0 and session["costEstimated"] is False
    assert session["costBasis"] == "unknown-model"
    assert api.get("/api/stats").get_json()["unpricedSessions"] == 1
    models = {r["model"]: r for r in api.get("/api/stats/models").get_json()["models"]}
    assert models["acme-model-9"]["unpricedSessions"] == 1 and models[SONNET]["unpricedSessions"] == 0


def test_reprice_recomputes_estimates_only(api, db_path):
    api.post("/sync/session", {"externalId": "est", "model": SONNET, "inputTokens": 1000, "outputTokens": 100,
                               "promptTokens": 1000, "completionTokens": 100})
    api.post("/sync/session", {"externalId": "mine", "model": SONNET, "promptTokens": 1000, "cost": 9.0})
    import sqlite3

    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE sessions SET cost = 123 WHERE external_id IN ('est', 'mine')")  # stale prices
    conn.commit()
    conn.close()
    out = subprocess.run(CLI + ["reprice", "--db", db_path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Repriced" in out.stdout
    assert rows(db_path, "SELECT external_id, cost FROM sessions ORDER BY external_id") == [
        ("est", pytest.approx(price(SONNET, 1000, 100))), ("mine", 123)]


@pytest.mark.parametrize("model", ["claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805",
                                   "claude-3-5-haiku-20241022", "gemini-2.5-pro", "gpt-5", "gpt-4o"])
def test_the_fast_path_agrees_with_genai_prices(model):
    import random

    from genai_prices import Usage, calc_price

    rng = random.Random(model)
    for _ in range(200):
        kinds = [rng.randint(0, 150_000), rng.randint(0, 30_000), rng.randint(0, 60_000), rng.randint(0, 120_000)]
        if rng.random() < 0.2:
            kinds[3] += 200_000  # past the long-context threshold
        usage = Usage(input_tokens=kinds[0] + kinds[2] + kinds[3], output_tokens=kinds[1],
                      cache_write_tokens=kinds[2], cache_read_tokens=kinds[3])
        assert price(model, *kinds) == pytest.approx(float(calc_price(usage, model).total_price), rel=1e-9, abs=1e-12)


def test_hour_long_cache_writes_cost_twice_the_input_price():
    sonnet45 = "claude-sonnet-4-5-20250929"  # $3 input, $3.75 5-minute write per million
    assert price(sonnet45, 0, 0, 1000, 0, cache_write_1h_tokens=400) == pytest.approx((600 * 3.75 + 400 * 6) / 1e6)
    assert price(sonnet45, 10, 0, 1000, 0) == pytest.approx((10 * 3 + 1000 * 3.75) / 1e6)
    # Past the 200k tier: input $6, 5-minute write $7.50, so an hour's write is $12 per million.
    assert price(sonnet45, 250_000, 0, 1000, 0, cache_write_1h_tokens=1000) == pytest.approx(
        (250_000 * 6 + 1000 * 12) / 1e6)
