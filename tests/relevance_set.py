"""A labelled relevance set for search: a generated coding-agent history (incidents a person
remembers, each in one or two sessions, among many ordinary sessions), and queries with the
sessions a person would expect for them, of three kinds:
- ``exact``: an identifier from the session (a file name, an error code, a command);
- ``paraphrase``: what it was about in other words (few or none of the session's words);
- ``misspelling``: the session's words typed with typos.
Used by bench/semantic.py (prints recall@5 and MRR per search type) and by
tests/test_semantic_relevance.py (asserts hybrid against full text)."""

import random

# (key, project, title, prompt, answer, identifier query, paraphrase query, misspelt query)
INCIDENTS = [
    ("login", "webshop", "Users cannot sign in after password reset",
     "After a password reset users get 'invalid credentials' on sign in. The reset flow is in auth/reset_flow.py.",
     "The reset token was hashed twice, so the stored password hash never matched; fixed reset_flow.py and added a test.",
     "reset_flow.py", "people locked out of their account once they change their secret", "pasword reset sign in"),
    ("oom", "ingest-worker", "Worker killed with OOMKilled on large uploads",
     "The ingest worker pod is OOMKilled (exit code 137) whenever someone uploads a CSV over 2 GB.",
     "The whole file was read into memory; switched to streaming the CSV in chunks of 10k rows.",
     "OOMKilled", "process runs out of memory with huge spreadsheet files", "worker oomkiled large uplods"),
    ("cors", "dashboard-ui", "CORS error calling the billing API from the dashboard",
     "The browser blocks requests to api.billing with 'No Access-Control-Allow-Origin header'.",
     "Added the dashboard origin to the allowed origins of the billing gateway and handled the preflight OPTIONS.",
     "Access-Control-Allow-Origin", "browser refuses cross-domain calls to the payments backend", "cors eror billing api"),
    ("migration", "webshop", "Database migration 0042 fails on production",
     "Running alembic upgrade head fails at 0042_add_order_index with a lock timeout on the orders table.",
     "Rewrote 0042 to create the index CONCURRENTLY outside the transaction so it does not lock orders.",
     "0042_add_order_index", "schema change hangs because the big table stays locked", "databse migraton fails"),
    ("flaky", "api-server", "Flaky integration tests with ECONNREFUSED",
     "The integration suite fails at random in CI with ECONNREFUSED 127.0.0.1:5432.",
     "Postgres was not ready when the tests started; the CI job now waits for pg_isready before pytest.",
     "ECONNREFUSED", "test suite breaks now and then because the db is not up yet", "flakey integraton tests"),
    ("dark", "dashboard-ui", "Add a dark mode toggle",
     "Please add a dark theme switch to the settings page and remember the choice.",
     "Added a theme toggle in SettingsPage.tsx using CSS variables and localStorage for the choice.",
     "SettingsPage.tsx", "let people pick a night colour scheme for the interface", "drak mode togle"),
    ("ratelimit", "api-server", "Rate limiting for the public API",
     "We need to throttle clients of the public API to 100 requests per minute per key, answering 429.",
     "Implemented a token bucket in middleware/throttle.go keyed by API key, returning 429 with Retry-After.",
     "throttle.go", "cap how often a customer can hit our endpoints", "rate limitting public api"),
    ("segfault", "imaging-lib", "Segfault in the thumbnail generator",
     "The thumbnail service crashes with SIGSEGV when resizing some PNG files with a palette.",
     "libvips was fed an image with a zero-height palette; validate dimensions before resize in thumbs.c.",
     "SIGSEGV", "picture preview service crashes on certain images", "segfalt thumbnail generater"),
    ("i18n", "webshop", "Translate checkout into German and French",
     "Add German and French translations to the checkout pages; strings live in locales/en.json.",
     "Extracted the checkout strings, added locales/de.json and locales/fr.json and a language switcher.",
     "locales/de.json", "make the payment pages available in other languages", "translete checkout german"),
    ("slowquery", "api-server", "Orders endpoint is slow",
     "GET /orders takes 8 seconds for big customers; EXPLAIN shows a sequential scan on order_items.",
     "Added a composite index on order_items (order_id, created_at) and removed an N+1 query in the serializer.",
     "order_items", "listing purchases takes forever for large accounts", "orders endpont slow"),
    ("docker", "ingest-worker", "Docker image too big",
     "Our Dockerfile produces a 2.3 GB image; deploys take ages to pull it.",
     "Switched to a multi-stage build on python:3.12-slim and dropped the build tools: the image is 180 MB.",
     "Dockerfile", "container takes forever to download because it is huge", "docker imgae too bigg"),
    ("webhook", "billing", "Stripe webhook signature verification fails",
     "Stripe webhooks return 400: 'No signatures found matching the expected signature for payload'.",
     "The raw body was parsed as JSON before verification; the webhook route now verifies the raw bytes.",
     "No signatures found matching", "payment provider callbacks rejected as not authentic", "stripe webhok signiture"),
    ("cron", "billing", "Invoices job runs twice at midnight",
     "The monthly invoice cron job sends every invoice twice since we scaled to two replicas.",
     "Both replicas ran the schedule; the job now takes an advisory lock so only one instance sends invoices.",
     "advisory lock", "customers get duplicate bills since we added a second server", "invoces job runs twise"),
    ("typescript", "dashboard-ui", "TypeScript error TS2345 after upgrading React",
     "After upgrading to React 19 the build fails with TS2345: Argument of type 'string | undefined' is not assignable.",
     "Narrowed the optional props in useFilters.ts and updated the @types/react version.",
     "TS2345", "compile breaks with a type mismatch after bumping the UI framework", "typscript eror after upgrade"),
    ("cache", "api-server", "Stale prices served from Redis cache",
     "Customers see old prices for an hour after we change them; prices are cached in Redis.",
     "Price updates now delete the price:{sku} keys, and the TTL dropped from 3600 to 300 seconds.",
     "price:{sku}", "outdated costs shown to shoppers after an update", "stale prises redis cashe"),
    ("upload", "webshop", "Image uploads fail with 413 Request Entity Too Large",
     "Product photo uploads over 1 MB fail with 413 Request Entity Too Large from nginx.",
     "Raised client_max_body_size to 20m in nginx.conf and added a size check in the upload form.",
     "client_max_body_size", "big product pictures cannot be sent to the server", "image uplaod fails 413"),
    ("email", "billing", "Password emails land in spam",
     "Our transactional emails go to the spam folder at Gmail.",
     "Added SPF and DKIM records for mail.example.com and set up a DMARC policy.",
     "DKIM", "messages we send to users get flagged as junk", "emials land in spamm"),
    ("tz", "api-server", "Reports show the wrong day for evening orders",
     "Orders placed after 8 pm appear on the next day in the daily report.",
     "Dates were truncated in UTC; the report now converts to the shop's timezone before grouping by day.",
     "timezone", "late purchases counted on the following date", "reprots wrong day evening orders"),
    ("leak", "ingest-worker", "Memory leak in the websocket server",
     "Memory of the realtime server grows by 200 MB an hour until it restarts.",
     "Listeners were never removed on disconnect; ws_handlers.js now unsubscribes on close.",
     "ws_handlers.js", "the live updates service keeps using more RAM over time", "memroy leak websocket"),
    ("search", "webshop", "Product search ignores accents",
     "Searching 'creme' does not find 'crème brûlée' in the product catalogue.",
     "Switched the search index to an unaccent analyzer and reindexed the catalogue.",
     "unaccent", "looking up items fails when the diacritics differ", "prodct search acents"),
    ("pagination", "api-server", "Duplicate rows across pages of /customers",
     "Paging through /customers shows some customers twice and skips others.",
     "The ORDER BY was on created_at only; added the id as a tie-breaker and moved to keyset pagination.",
     "keyset pagination", "same clients appear on several result screens", "duplicat rows pagnation"),
    ("ssl", "billing", "Certificate expired on the payments domain",
     "pay.example.com shows NET::ERR_CERT_DATE_INVALID since this morning.",
     "certbot renewals had stopped after the cron change; renewed the certificate and added an expiry alert.",
     "ERR_CERT_DATE_INVALID", "the https padlock broke on the checkout site", "certficate expird payments"),
    ("csv", "ingest-worker", "CSV import breaks on semicolons",
     "Imports from European customers fail: their CSV files use semicolons as separators.",
     "The importer now sniffs the delimiter with csv.Sniffer and accepts ; and tabs.",
     "csv.Sniffer", "spreadsheets exported in europe cannot be loaded", "csv improt semicolns"),
    ("auth2fa", "webshop", "Add two-factor authentication",
     "Add TOTP two-factor authentication for admin accounts, with recovery codes.",
     "Implemented TOTP with pyotp, a QR code on the security page and ten single-use recovery codes.",
     "pyotp", "extra one-time code step when admins log in", "two factr authentcation"),
    ("deadlock", "api-server", "Deadlock detected when two payments update a wallet",
     "Under load we get 'deadlock detected' errors when two payments update the same wallet.",
     "Rows are now locked in id order with SELECT ... FOR UPDATE, so concurrent payments queue instead.",
     "deadlock detected", "simultaneous charges on one balance make transactions abort", "deadlok two paymnets wallet"),
]

# Ordinary sessions: the haystack (each topic its own words; none of an incident's identifiers).
CHORES = [
    ("Refactor the user service", "Split UserService into smaller classes and add unit tests.",
     "Moved the profile logic into ProfileManager and covered it with tests."),
    ("Update dependencies", "Bump the minor versions of our npm packages and fix what breaks.",
     "Updated 23 packages; one lint rule changed and I fixed the warnings."),
    ("Write the README", "Document how to run the project locally and the environment variables.",
     "Added setup steps, the variables table and a troubleshooting section to the README."),
    ("Add a health check", "Add a /healthz endpoint returning the version and the database status.",
     "Added /healthz with the git version and a SELECT 1 probe."),
    ("Rename the config keys", "Rename APP_DEBUG to DEBUG everywhere and keep the old name working.",
     "Renamed the keys and added a fallback that warns when the old name is used."),
    ("Improve logging", "Make the logs JSON with a request id on every line.",
     "Configured structlog with a request id middleware and JSON output."),
    ("Set up linting", "Add ruff and a pre-commit hook to the repository.",
     "Added ruff with the default rules and a pre-commit configuration."),
    ("Clean up feature flags", "Remove the feature flags that have been on for months.",
     "Deleted seven stale flags and the code paths behind them."),
    ("Add pagination to the admin list", "The admin product list should show 50 per page.",
     "Added page links and a per-page selector to the admin list."),
    ("Write a changelog", "Summarise the changes since the last release for the changelog.",
     "Grouped the merged changes into features, fixes and chores."),
]

FILLER = ("Let me look at the code first. I read the module and the tests around it. "
          "Running the test suite now. All tests pass. Here is a summary of the change.")


def history(seed=7, chores=300):
    """[(external id, project, title, [(role, text)])]: each incident's session, a follow-up
    session for every third incident, and ``chores`` ordinary sessions, in a shuffled order."""
    rng = random.Random(seed)
    sessions = []
    for n, (key, project, title, prompt, answer, *_rest) in enumerate(INCIDENTS):
        sessions.append((f"inc-{key}", project, title, [("user", prompt), ("assistant", FILLER), ("assistant", answer),
                                                         ("user", "Thanks, please commit it."), ("assistant", "Committed.")]))
        if n % 3 == 0:  # a follow-up a few days later: a person would expect it too
            sessions.append((f"inc-{key}-followup", project, f"Follow-up: {title.lower()}",
                             [("user", f"Last week: {prompt} Is the fix still holding?"),
                              ("assistant", f"Yes. To recap: {answer}")]))
    projects = sorted({incident[1] for incident in INCIDENTS})
    for n in range(chores):
        title, prompt, answer = CHORES[n % len(CHORES)]
        sessions.append((f"chore-{n}", rng.choice(projects), title,
                         [("user", prompt), ("assistant", FILLER), ("assistant", answer)]))
    rng.shuffle(sessions)
    return sessions


def queries():
    """[(kind, query, {external ids a person expects})]."""
    out = []
    for n, (key, _project, _title, _prompt, _answer, exact, paraphrase, misspelt) in enumerate(INCIDENTS):
        expected = {f"inc-{key}"} | ({f"inc-{key}-followup"} if n % 3 == 0 else set())
        out += [("exact", exact, expected), ("paraphrase", paraphrase, expected), ("misspelling", misspelt, expected)]
    return out


def scores(ranked, expected, k=5):
    """(recall@k, reciprocal rank of the first expected session) of one query's ranked ids."""
    top = ranked[:k]
    recall = len(expected & set(top)) / len(expected)
    rr = next((1 / place for place, ident in enumerate(ranked, start=1) if ident in expected), 0.0)
    return recall, rr


def load(client, headers):
    """Send the history through the sync routes (as the plugins do)."""
    for external_id, project, title, messages in history():
        client.post("/sync/session", json={"externalId": external_id, "title": title, "projectPath": f"/home/dev/{project}",
                                           "source": "claude-code"}, headers=headers)
        batch = [{"sessionExternalId": external_id, "externalId": f"{external_id}-{n}", "role": role, "textContent": text,
                  "createdAt": 1_700_000_000_000 + n * 1000} for n, (role, text) in enumerate(messages)]
        response = client.post("/sync/batch", json={"messages": batch}, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)


def evaluate(search):
    """{kind: {(query kind): (recall@5, MRR)}} with ``search(kind, query)`` → ranked external ids."""
    out = {}
    for kind in ("fulltext", "semantic", "hybrid"):
        per = {}
        for query_kind, query, expected in queries():
            per.setdefault(query_kind, []).append(scores(search(kind, query), expected))
        everything = [s for values in per.values() for s in values]
        per["all"] = everything
        out[kind] = {name: (sum(r for r, _ in values) / len(values), sum(rr for _, rr in values) / len(values))
                     for name, values in per.items()}
    return out
