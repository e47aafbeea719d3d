"""What tokens cost when a client did not say: genai-prices (maintained by Pydantic, its price
data bundled in the package, so it works offline; `pip install -U genai-prices` refreshes it).
Prices cover input, output, cache write and cache read, and long-context tiers the way
genai-prices applies them: a request whose prompt crosses a tier's threshold pays that tier's
rate on all its tokens (Anthropic's and Google's rule)."""

import math
from datetime import UTC, datetime
from functools import lru_cache

from genai_prices import Usage, calc_price, data_snapshot
from genai_prices.types import TieredPrices

SYNTHETIC = "<synthetic>"  # Claude Code's marker for responses no API model produced
KINDS = ("input_mtok", "output_mtok", "cache_write_mtok", "cache_read_mtok")


@lru_cache(maxsize=256)
def _rates(model):
    """(USD per token of each kind below any tier, the lowest tier's threshold), or None for
    a model without a known price. An importer prices tens of thousands of responses, and
    genai-prices' general calculation costs a third of a millisecond each: below the tiers
    the price is linear in the four rates, which come from the same data."""
    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, None, None)
    except LookupError:
        return None
    prices = info.get_prices(datetime.now(UTC))
    rates, threshold = [], math.inf
    for name in KINDS:
        value = getattr(prices, name, None)
        if isinstance(value, TieredPrices):
            threshold = min([threshold, *(tier.start for tier in value.tiers)])
            value = value.base
        rates.append(None if value is None else float(value) / 1e6)
    input_rate = rates[0] or 0.0
    # Without their own price, cache tokens are input tokens (how genai-prices counts them).
    return (input_rate, rates[1] or 0.0, rates[2] if rates[2] is not None else input_rate,
            rates[3] if rates[3] is not None else input_rate), threshold


# Anthropic bills a cache write kept for an hour at twice the input price; genai-prices' cache
# write price is the 5-minute one (1.25x input).
ONE_HOUR_WRITE = 2.0


def price(model, input_tokens=0, output_tokens=0, cache_write_tokens=0, cache_read_tokens=0, cache_write_1h_tokens=0):
    """USD for one response, or None when the model has no known price. Our input_tokens
    exclude the cache tokens (Anthropic's convention); genai-prices counts them in.
    ``cache_write_1h_tokens`` are the part of ``cache_write_tokens`` written for an hour."""
    if not model or model == SYNTHETIC:
        return 0.0 if model == SYNTHETIC else None
    known = _rates(model)
    if known is None:
        return None
    rates, threshold = known
    one_hour = min(cache_write_1h_tokens, cache_write_tokens)
    five_minutes = cache_write_tokens - one_hour
    prompt = input_tokens + cache_write_tokens + cache_read_tokens
    if prompt < threshold:
        return (sum(r * n for r, n in zip(rates, (input_tokens, output_tokens, five_minutes, cache_read_tokens)))
                + one_hour * rates[0] * ONE_HOUR_WRITE)
    # Past a long-context tier every token pays the tier's rate, the hour-long writes too.
    usage = Usage(input_tokens=prompt, output_tokens=output_tokens, cache_write_tokens=cache_write_tokens,
                  cache_read_tokens=cache_read_tokens)
    total = float(calc_price(usage, model).total_price)
    if one_hour:
        tiered = float(calc_price(Usage(input_tokens=prompt, output_tokens=0), model).total_price) / prompt
        written = float(calc_price(Usage(input_tokens=prompt, cache_write_tokens=prompt), model).total_price) / prompt
        total += one_hour * (tiered * ONE_HOUR_WRITE - written)
    return total
