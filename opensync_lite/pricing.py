"""What tokens cost when a client did not say: genai-prices (maintained by Pydantic, its price
data bundled in the package, so it works offline; `pip install -U genai-prices` refreshes it).
Prices cover input, output, cache write and cache read, and long-context tiers the way
genai-prices applies them: a request whose prompt crosses a tier's threshold pays that tier's
rate on all its tokens (Anthropic's and Google's rule)."""

from functools import lru_cache

from genai_prices import Usage, calc_price

SYNTHETIC = "<synthetic>"  # Claude Code's marker for responses no API model produced


@lru_cache(maxsize=256)
def _known(model):
    try:
        calc_price(Usage(input_tokens=1, output_tokens=1), model)
    except LookupError:
        return False
    return True


def price(model, input_tokens=0, output_tokens=0, cache_write_tokens=0, cache_read_tokens=0):
    """USD for one response, or None when the model has no known price. Our input_tokens
    exclude the cache tokens (Anthropic's convention); genai-prices counts them in."""
    if not model or model == SYNTHETIC:
        return 0.0 if model == SYNTHETIC else None
    if not _known(model):
        return None
    usage = Usage(input_tokens=input_tokens + cache_write_tokens + cache_read_tokens, output_tokens=output_tokens,
                  cache_write_tokens=cache_write_tokens, cache_read_tokens=cache_read_tokens)
    return float(calc_price(usage, model).total_price)
