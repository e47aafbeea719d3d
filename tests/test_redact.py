"""The redaction step: a corpus of real-shaped secrets (made fresh from each provider's
documented format, in the places sessions show them) must all be masked; ordinary code and
tool output must come through unchanged."""

import base64
import json
import pathlib
import random
import secrets
import string
import sysconfig

import pytest

from opensync_lite.redact import MASK, Redactor

rng = random.Random(20261127)
ALNUM = string.ascii_letters + string.digits


def chars(n, alphabet=ALNUM):
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def pem(kind, size=600, headers=()):
    body = base64.b64encode(bytes(rng.randrange(256) for _ in range(size))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return [f"-----BEGIN {kind}-----", *headers, *lines, f"-----END {kind}-----"]


def jwt():
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": chars(10), "iat": 1764201600}).encode())
    return f"{header}.{payload}.{b64url(bytes(rng.randrange(256) for _ in range(32)))}"


HEX = "0123456789abcdef"
UPPER32 = string.ascii_uppercase + "234567"

# (what it is, the secret, the line it appears on: {} is where the secret goes)
SECRETS = [
    ("AWS access key id", "AKIA" + chars(16, UPPER32), "AWS_ACCESS_KEY_ID={}"),
    ("AWS secret key", chars(40, ALNUM + "/+"), "aws_secret_access_key = {}"),
    ("AWS secret key in JSON", chars(40, ALNUM + "/+"), '  "SecretAccessKey": "{}",'),
    ("GitHub classic token", "ghp_" + chars(36), "export GITHUB_TOKEN={}"),
    ("GitHub fine-grained token", "github_pat_" + chars(22) + "_" + chars(59), "git push https://x-access-token:{}@github.com/o/r"),
    ("GitLab token", "glpat-" + chars(20, ALNUM + "-_"), "GITLAB_TOKEN={}"),
    ("Slack bot token", f"xoxb-{chars(12, string.digits)}-{chars(13, string.digits)}-{chars(24)}", "slack_token: {}"),
    ("Slack webhook", f"https://hooks.slack.com/services/T{chars(8, UPPER32)}/B{chars(8, UPPER32)}/{chars(24)}", "curl -X POST {} -d @msg.json"),
    ("Stripe live key", "sk_live_" + chars(24), 'stripe.api_key = "{}"'),
    ("Stripe restricted key", "rk_live_" + chars(24), "STRIPE_KEY={}"),
    ("OpenAI legacy key", "sk-" + chars(20) + "T3BlbkFJ" + chars(20), "OPENAI_API_KEY={}"),
    ("OpenAI project key", "sk-proj-" + chars(120, ALNUM + "-_"), "client = OpenAI(api_key=\"{}\")"),
    ("Anthropic key", "sk-ant-api03-" + chars(93, ALNUM + "-_") + "AA", "ANTHROPIC_API_KEY={}"),
    ("opensync-lite key", "osk_" + secrets.token_urlsafe(24), "Authorization: Bearer {}"),
    ("opensync-lite key in a config", "osk_" + secrets.token_urlsafe(24), '{{"convexUrl": "http://127.0.0.1:8765", "apiKey": "{}"}}'),
    ("Google API key", "AIza" + chars(35, ALNUM + "-_"), "GOOGLE_API_KEY={}"),
    ("Hugging Face token", "hf_" + chars(34), "huggingface-cli login --token {}"),
    ("npm token", "npm_" + chars(36), "//registry.npmjs.org/:_authToken={}"),
    ("npm token in prose", "npm_" + chars(36), "I set the publish token to {} for now"),
    ("PyPI token", "pypi-AgEIcHlwaS5vcmc" + chars(70, ALNUM + "-_"), "password = {}"),
    ("SendGrid key", f"SG.{chars(22, ALNUM + '-_')}.{chars(43, ALNUM + '-_')}", "SENDGRID_API_KEY={}"),
    ("Twilio API key", "SK" + chars(32, HEX), "TWILIO_API_KEY={}"),
    ("Mailchimp key", chars(32, HEX) + "-us12", "mailchimp_key: {}"),
    ("Telegram bot token", f"{chars(9, string.digits)}:AA{chars(33, ALNUM + '-_')}", "TELEGRAM_BOT_TOKEN={}"),
    ("JWT", jwt(), 'curl -H "Authorization: Bearer {}" https://api.example.com/me'),
    ("JWT in a cookie", jwt(), "Cookie: session={}"),
    ("opaque bearer token", chars(40, HEX), "Authorization: Bearer {}"),
    (".env password", chars(6, string.ascii_lowercase) + chars(4, string.digits) + "!x", "DATABASE_PASSWORD={}"),
    (".env secret key", chars(50, ALNUM + "!@#%^*(-_=+)"), "DJANGO_SECRET_KEY={}"),
    (".env redis password", chars(24), "export REDIS_PASSWORD={}"),
    ("YAML password", chars(18), "  password: {}"),
    ("Python password literal", chars(16), 'conn = connect(user="app", password="{}")'),
    ("basic-auth URL", chars(14), "DATABASE_URL=postgresql://app:{}@db.internal:5432/app"),
    ("Azure storage key", chars(86, ALNUM + "+/") + "==", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=core.windows.net"),
    ("token in prose", chars(40, ALNUM), "here is the deploy token: {} (rotate it after)"),
    ("high-entropy token in code", chars(44, ALNUM + "+/"), 'SIGNING = "{}"'),
]
KEYS = [pem("RSA PRIVATE KEY"), pem("OPENSSH PRIVATE KEY"), pem("EC PRIVATE KEY"), pem("PRIVATE KEY"),
        # A short last line (4 characters here) has too little entropy to be caught on its own.
        pem("ENCRYPTED PRIVATE KEY", size=771), pem("DSA PRIVATE KEY", size=434),
        pem("RSA PRIVATE KEY", headers=("Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-256-CBC,1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D")),
        pem("PGP PRIVATE KEY BLOCK", size=400, headers=("Version: GnuPG v2", ""))[:-1] + ["=tS8q", "-----END PGP PRIVATE KEY BLOCK-----"]]
KEY_IDS = ["rsa", "openssh", "ec", "pkcs8", "encrypted-pkcs8", "dsa", "encrypted-rsa", "pgp"]

# Shapes detect-secrets misses on its own: (what it is, the secret, the line it appears on).
MISSES = [
    ("Authorization: Basic", base64.b64encode(f"deploy:{chars(14)}".encode()).decode(), "Authorization: Basic {}"),
    ("Basic in a curl header", base64.b64encode(f"ci:{chars(10)}".encode()).decode(),
     "curl -H 'Authorization: Basic {}' https://ci.example.com/api/json"),
    ("curl -u", chars(16), "curl -u admin:{} https://api.example.com/v1/items"),
    ("curl --user", chars(16), "curl -s --user=deploy:{} https://nexus.internal/repository/"),
    ("mysql -p", chars(12), "mysql -h db.internal -u root -p{} shop"),
    ("mysqldump --password=", chars(12), "mysqldump --user=root --password={} shop > shop.sql"),
    ("~/.my.cnf password", chars(12), "password={}"),
    ("db_password=", chars(12), "db_password={}"),
    ("passwd =", chars(9) + "7!", "passwd = {}"),
    ("libpq conninfo", chars(12) + "9", "psql 'host=db.internal user=app password={} dbname=app'"),
    ("X-Api-Key header", chars(32, HEX), "X-Api-Key: {}"),
    ("X-Api-Key in curl", chars(40, HEX), "curl -H 'x-api-key: {}' https://api.example.com/v2/orders"),
    ("Mailgun key", "key-" + chars(32, HEX), "the Mailgun key is {} (from the dashboard)"),
]


@pytest.mark.parametrize("kind, secret, line", SECRETS, ids=[s[0] for s in SECRETS])
def test_each_real_shaped_secret_is_masked(kind, secret, line):
    text = f"some output before\n{line.format(secret)}\nand after"
    redactor = Redactor()
    out = redactor.text(text)
    assert secret not in out, (kind, out)
    assert MASK in out and out.startswith("some output before\n") and out.endswith("\nand after")
    assert redactor.total >= 1


@pytest.mark.parametrize("kind, secret, line", MISSES, ids=[s[0] for s in MISSES])
def test_each_shape_detect_secrets_misses_is_masked(kind, secret, line):
    test_each_real_shaped_secret_is_masked(kind, secret, line)


@pytest.mark.parametrize("key", KEYS, ids=KEY_IDS)
def test_a_private_key_loses_every_line_of_its_block(key):
    text = "\n".join(["cat ~/.ssh/id_key", *key, "done"])
    redactor = Redactor()
    out = redactor.text(text).split("\n")
    assert out[0] == "cat ~/.ssh/id_key" and out[-1] == "done"
    assert all(line == MASK for line in out[1:-1] if line)
    assert not any(part in "\n".join(out) for part in key[1:-1] if part)
    assert redactor.counts == {"Private Key": 1}


def test_a_key_split_by_zero_width_characters_is_masked_whole():
    halves = ["ghp_" + chars(18), chars(18)]
    for mark in "\u200b\u200c\u200d\u2060\ufeff":
        redactor = Redactor()
        out = redactor.text(f"export GITHUB_TOKEN={mark.join(halves)} # from CI")
        assert out == f"export GITHUB_TOKEN={MASK} # from CI", repr(mark)
        assert redactor.counts == {"GitHub Token": 1}


def test_the_whole_corpus_at_once_and_its_counts():
    text = "\n".join(line.format(secret) for _, secret, line in SECRETS + MISSES) + "\n" + "\n".join(sum(KEYS, []))
    redactor = Redactor()
    out = redactor.text(text)
    leaked = [kind for kind, secret, _ in SECRETS + MISSES if secret in out]
    assert leaked == []
    assert redactor.total >= len(SECRETS) + len(MISSES) + len(KEYS)
    assert redactor.counts["Private Key"] == len(KEYS)
    assert redactor.counts["opensync-lite API Key"] == 2


def test_json_values_are_masked_inside_and_keys_stay():
    secret = "ghp_" + chars(36)
    value = {"toolName": "Bash", "args": {"command": f"gh auth login --with-token {secret}"}, "n": 3, "ok": True}
    redactor = Redactor()
    out = redactor.value(value)
    assert out["args"]["command"] == f"gh auth login --with-token {MASK}" and out["n"] == 3 and out["ok"] is True
    assert redactor.counts == {"GitHub Token": 1}


# --- JSON values: the key is the context ---------------------------------------------------------

SECRET_KEYS = ["password", "passwd", "pwd", "secret", "token", "api_key", "apiKey", "apikey", "X-Api-Key",
               "Authorization", "Proxy-Authorization", "auth", "credentials", "private_key", "privateKey",
               "client_secret", "clientSecret", "DATABASE_PASSWORD", "db_password", "accessToken", "refresh_token",
               "AWS_SECRET_ACCESS_KEY", "passphrase", "Cookie"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_secret_named_key_makes_its_string_value_a_secret(key):
    value = f"Zebra-Piano-{rng.randrange(10, 99)}-Orbit"  # no detector would know it on its own
    redactor = Redactor()
    out = redactor.value({"args": {key: value, "user": "alice", "port": 5432}})
    assert out == {"args": {key: MASK, "user": "alice", "port": 5432}}
    assert redactor.total == 1


@pytest.mark.parametrize("value", ["", "  ", "true", "False", "yes", "none", "null", "${DB_PASSWORD}", "$API_TOKEN",
                                   "{{ secrets.DEPLOY_TOKEN }}", "<your-api-key>", MASK, "********", "•••••",
                                   "%(password)s", "changeme", "Bearer ${TOKEN}", "Basic <credentials>"])
def test_obvious_non_secrets_under_secret_named_keys_stay(value):
    redactor = Redactor()
    assert redactor.value({"password": value, "token": value}) == {"password": value, "token": value}
    assert redactor.total == 0


def test_keys_that_only_look_like_secret_names_stay():
    value = {"max_tokens": "4096", "tokenizer": "cl100k_base", "password_hint": "the usual one", "secret_type": "Hex",
             "token_type": "bearer", "auth_url": "https://auth.example.com/authorize", "authMethod": "oauth2",
             "keyId": "k-2026", "PWD": "/home/dev/app", "pwd": "/srv/shop", "OLDPWD": "/home/dev", "cacheKey": "files:v2",
             "primary_key": "id", "tokens": ["alpha", "beta"], "auth": "required", "twoFactorAuth": "enabled"}
    redactor = Redactor()
    assert redactor.value(value) == value and redactor.total == 0


def test_headers_objects_and_name_value_pairs_are_masked():
    basic = base64.b64encode(f"admin:{chars(8)}".encode()).decode()
    key = chars(32, HEX)
    headers = {"X-Api-Key": key, "Authorization": f"Basic {basic}", "Content-Type": "application/json"}
    har = [{"name": "authorization", "value": f"Basic {basic}"}, {"name": "x-api-key", "value": key},
           {"name": "accept", "value": "*/*"}]
    redactor = Redactor()
    out = redactor.value({"request": {"headers": headers}, "entries": har})
    assert out["request"]["headers"] == {"X-Api-Key": MASK, "Authorization": MASK, "Content-Type": "application/json"}
    assert [h["value"] for h in out["entries"]] == [MASK, MASK, "*/*"]
    assert redactor.total == 4


def test_an_entropy_rule_sees_the_pair_but_hashes_and_ids_stay():
    key, sha = chars(32, HEX), chars(40, HEX)
    redactor = Redactor()
    out = redactor.value({"signing": key, "sha": sha, "commit": sha, "oid": sha, "id": "toolu_01" + chars(22),
                          "uuid": "550e8400-e29b-41d4-a716-446655440000"})
    assert out["signing"] == MASK and redactor.counts == {"Hex High Entropy String": 1}
    assert out["sha"] == out["commit"] == out["oid"] == sha and out["id"].startswith("toolu_01")


def test_json_text_in_a_string_is_redacted_by_its_keys():
    # No rule for text knows `auth` or a Basic header's value without its key.
    arguments = json.dumps({"username": "alice", "auth": "Zebra-Piano-42-Orbit", "remember": True})
    redactor = Redactor()
    out = redactor.value({"function": {"name": "login", "arguments": arguments}})
    assert json.loads(out["function"]["arguments"]) == {"username": "alice", "auth": MASK, "remember": True}
    assert redactor.total == 1
    for text in ('{"path": "src/app.py", "limit": 20}', "{not json: password}", "[1, 2, 3]"):
        assert Redactor().value({"arguments": text}) == {"arguments": text}  # unchanged, byte for byte


# A secret-named key's whole value is secret, however it is shaped.
NESTED = [
    ({"api_key": {"prod": "{S}"}}, {"api_key": {"prod": MASK}}),
    ({"token": {"value": "{S}"}}, {"token": {"value": MASK}}),
    ({"authorization": {"basic": "{S}"}}, {"authorization": {"basic": MASK}}),
    ({"api_key": {"prod": {"primary": "{S}", "backup": ["{S}x"]}}}, {"api_key": {"prod": {"primary": MASK, "backup": [MASK]}}}),
    ({"token": ["{S}", {"refresh": "{S}y"}]}, {"token": [MASK, {"refresh": MASK}]}),
    ({"secret": {"pin": 4829130051}}, {"secret": {"pin": MASK}}),
    # A user name is no secret, and keeping it keeps the record readable; its password goes.
    ({"credentials": {"user": "admin", "pass": "{S}"}}, {"credentials": {"user": "admin", "pass": MASK}}),
    ({"credentials": {"username": "admin", "type": "basic", "password": "{S}", "port": 5432}},
     {"credentials": {"username": "admin", "type": "basic", "password": MASK, "port": 5432}}),
]


@pytest.mark.parametrize("value, masked", NESTED, ids=[next(iter(v)) + "-" + str(i) for i, (v, _) in enumerate(NESTED)])
def test_an_object_or_list_under_a_secret_named_key_is_masked_inside(value, masked):
    secret = f"Zebra-Piano-{rng.randrange(10, 99)}-Orbit"
    value = json.loads(json.dumps(value).replace("{S}", secret))
    redactor = Redactor()
    out = redactor.value({"args": value, "user": "alice"})
    assert out == {"args": masked, "user": "alice"}
    assert secret not in json.dumps(out)
    assert redactor.total == json.dumps(masked).count(MASK)


@pytest.mark.parametrize("key", ["pass", "DB_PASS", "smtpPass"])
def test_pass_is_a_secret_named_key(key):
    redactor = Redactor()
    assert redactor.value({key: "Tr0ub4dorZ3xyz!", "status": "pass"}) == {key: MASK, "status": "pass"}
    assert redactor.total == 1


def test_a_number_under_a_secret_named_key_is_masked():
    redactor = Redactor()
    out = redactor.value({"password": 123456789012, "pin": 4821, "token": 90817263.5, "pass": True,
                          "port": 5432, "tokenLimit": 8192, "secret": 0})
    assert out == {"password": MASK, "pin": 4821, "token": MASK, "pass": True, "port": 5432, "tokenLimit": 8192,
                   "secret": 0}
    assert redactor.total == 2


ARGV = [
    (["mysql", "--password", "{S}", "shop"], 2),
    (["mysql", "-h", "db.internal", "-u", "root", "-p", "{S}"], 6),
    (["/usr/bin/mariadb", "-p", "{S}", "shop"], 2),
    (["curl", "-u", "deploy:{S}", "https://api.example.com"], 2),
    (["curl", "--user", "deploy:{S}", "https://api.example.com"], 2),
    (["gh", "release", "upload", "--token", "{S}"], 4),
    (["deploy", "--api-key", "{S}"], 2),
    (["psql", "--passwd", "{S}"], 2),
]


@pytest.mark.parametrize("argv, at", ARGV, ids=[" ".join(a[:2]) for a, _ in ARGV])
def test_the_value_after_a_password_flag_in_an_argument_list_is_masked(argv, at):
    secret = "Tr0ub" + chars(10)
    argv = [a.replace("{S}", secret) for a in argv]
    redactor = Redactor()
    out = redactor.value({"command": argv})["command"]
    assert out == argv[:at] + [MASK] + argv[at + 1:]
    assert redactor.total == 1


@pytest.mark.parametrize("argv", [
    ["mysql", "-u", "root", "-p", "shop"],  # -p alone asks for the password; shop is the database
    ["mysqldump", "--password", "$MYSQL_PASSWORD", "shop"],
    ["docker", "run", "-u", "1000:1000", "alpine"],
    ["docker", "login", "--password-stdin", "ghcr.io"],
    ["ssh", "-p", "2222", "deploy@10.0.0.5"],
    ["git", "push", "-u", "origin", "main"],
    ["curl", "-u", "$USER:$TOKEN", "https://api.example.com"],
    ["tool", "--token-file", "/run/secrets/token"],
    ["mysql", "--password", "--host", "db"],
])
def test_ordinary_argument_lists_stay(argv):
    redactor = Redactor()
    assert redactor.value({"argv": argv}) == {"argv": argv} and redactor.total == 0


def test_plugin_fields_in_extra_are_masked_by_their_keys():
    row = {"id": 3, "title": "Deploy", "extra": {"gatewayToken": "Zebra-Piano-42-Orbit", "plugin": "opencode-sync"}}
    redactor = Redactor()
    assert redactor.value(row)["extra"] == {"gatewayToken": MASK, "plugin": "opencode-sync"}


# Ordinary structured data and command lines: nothing may change.
ORDINARY_JSON = {
    "toolName": "Bash", "id": "toolu_01" + chars(22), "input": {"command": "git log -1 --format=%H", "timeout": 120000},
    "output": {"stdout": chars(40, HEX) + "\n", "exitCode": 0},
    "commit": {"sha": chars(40, HEX), "parents": [{"sha": chars(40, HEX)}], "tree": {"sha": chars(40, HEX)}},
    "package": {"name": "left-pad", "version": "1.3.0", "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"},
    "etag": 'W/"' + chars(32, HEX) + '"', "requestId": "req_" + chars(24), "messageId": "msg_01" + chars(22),
    "sessionId": "550e8400-e29b-41d4-a716-446655440000", "path": "/home/dev/app/src/auth/token_store.py",
    "env": {"PATH": "/usr/local/bin:/usr/bin", "HOME": "/home/dev", "PWD": "/home/dev/app", "NODE_ENV": "production"},
    "settings": {"auth": {"type": "bearer", "required": True}, "tokenLimit": 8192, "password_min_length": 12},
    "headers": {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "curl/8.5.0"},
    "arguments": json.dumps({"file_path": "src/parser.py", "old_string": "i < n - 1", "new_string": "i < n"}),
}
ORDINARY_LINES = """docker run --rm -u 1000:1000 -v $PWD:/src node:22 npm test
docker run -u $(id -u):$(id -g) alpine ls
git push -u origin fix/redact
mysql -u root -p shop
mysql -h 127.0.0.1 -P 3306 -u app -p
ssh -p 2222 deploy@10.0.0.5
mkdir -p build/dist && cp -pr assets build/dist
mysqldump --password=$MYSQL_PASSWORD shop
curl -u "$USER:$TOKEN" https://api.example.com
echo $password | docker login --password-stdin ghcr.io
password=password,
passwd = None
pwd = os.getcwd()
password = self.password
db_password = settings.DB_PASSWORD
X-Api-Key: ${API_KEY}
Authorization: Basic <credentials>
PWD=/home/dev/app
Basic usage: run the tool with no arguments
key-value stores hold key-0123 entries
"""


def test_ordinary_structured_data_and_command_lines_come_through_unchanged():
    redactor = Redactor()
    assert redactor.value(ORDINARY_JSON) == ORDINARY_JSON
    assert redactor.text(ORDINARY_LINES) == ORDINARY_LINES
    assert redactor.total == 0


def test_switched_off_it_changes_nothing():
    line = "export GITHUB_TOKEN=ghp_" + chars(36)
    redactor = Redactor(enabled=False)
    assert redactor.text(line) == line and redactor.total == 0


# --- ordinary code and tool output: nothing may change ------------------------------------------

TOOL_OUTPUT = """\
commit 9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6
Author: Dev <dev@example.com>
Date:   Thu Nov 26 10:00:00 2026 +0000

    Fix the tokenizer's loop bound (closes #412)

 src/parser.py | 12 ++++++------
 1 file changed, 6 insertions(+), 6 deletions(-)
$ git log --oneline -3
a8a6d74 Read-through: PATCH answers from the session row
6a569ac README: curation in the dashboard and API sections
$ docker images
REPOSITORY   TAG       IMAGE ID       CREATED        SIZE
postgres     15        3f2e1d0c9b8a   2 weeks ago    412MB
$ pip install -e .
Successfully installed opensync-lite-0.9.0 peewee-3.17.8 marshmallow-3.23.1
$ pytest -q
........................................................................ [ 61%]
949 passed in 395.12s (0:06:35)
request_id=550e8400-e29b-41d4-a716-446655440000 user=local status=200 ms=3.1
GET /api/sessions?source=claude-code&sortBy=updatedAt&limit=50 200
Traceback (most recent call last):
  File "/home/dev/app/src/parser.py", line 42, in tokenize
    raise ValueError(f"unexpected {ch!r} at {i}")
ValueError: unexpected '}' at 17
token = request.headers.get("Authorization", "").removeprefix("Bearer ")
password = getpass.getpass("Password: ")
api_key = os.environ["OPENAI_API_KEY"]
SECRET_KEY = os.environ.get("SECRET_KEY")
if not token: raise Unauthorized("Missing token")
export PATH=/usr/local/bin:$PATH
DATABASE_URL=postgresql://localhost/app
"""


def stdlib(*names):
    base = pathlib.Path(sysconfig.get_paths()["stdlib"])
    for name in names:
        path = base / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


# Our own package (but the modules that document credential URLs and name secret kinds) and
# a good part of the standard library: about 60 000 lines of real Python.
ORDINARY = [p for p in sorted(pathlib.Path(__file__).parent.parent.joinpath("opensync_lite").rglob("*.py"))
            if p.name not in ("cli.py", "redact.py")] + list(stdlib(
                "json", "email", "http", "logging", "sqlite3", "asyncio", "concurrent", "importlib", "unittest",
                "argparse.py", "subprocess.py", "pathlib.py", "typing.py", "dataclasses.py", "ssl.py", "uuid.py",
                "hmac.py", "smtplib.py", "ftplib.py", "getpass.py", "shutil.py", "tarfile.py", "zipfile.py"))


def test_tool_output_comes_through_unchanged():
    redactor = Redactor()
    assert redactor.text(TOOL_OUTPUT) == TOOL_OUTPUT
    assert redactor.total == 0


def test_ordinary_code_comes_through_unchanged():
    changed, lines = [], 0
    for path in ORDINARY:
        text = path.read_text(encoding="utf-8")
        lines += text.count("\n") + 1
        if Redactor().text(text) != text:
            changed.append(path.name)
    assert lines > 50_000
    assert changed == []
