"""The kinds of text a search can be narrowed to (``where``), shared by both engines: a message's
text (the user's are prompts, the agent's answers), its tool calls and results, its thinking."""

WHERE = ("prompts", "answers", "tools", "thinking")
ROLE_OF = {"prompts": "user", "answers": "assistant"}

# How sessions are found (``type``, as OpenSync names it): by their words, by meaning, or both
# fused (semantic/). Semantic and hybrid need the `semantic` extra; without it they answer 503.
TYPES = ("fulltext", "semantic", "hybrid")
AVAILABLE_TYPES = TYPES
