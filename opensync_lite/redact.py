"""THE redaction step: every export and share passes what it writes through here.

Secrets are found by detect-secrets (Yelp's maintained scanner): its provider detectors (AWS,
GitHub, Slack, Stripe, OpenAI, JWT, private keys, basic-auth URLs, ...), its keyword detector
(config rules on config-shaped lines such as ``.env``'s ``KEY=value``, code rules elsewhere),
its high-entropy detectors, and its false-positive filters (UUIDs, sequences, templates,
indirect references). Keys it does not know are added as detectors of its own kind: ours
(``osk_``), Anthropic's, OpenAI project keys, Google's, Hugging Face's, npm's, Mailgun's, bearer
tokens, Basic authorization headers, ``token=``/``X-Api-Key:``-style values, passwords on command
lines (``curl -u``, ``mysql -p``, ``--password=``) and in ``password=`` lines. Each secret found is
replaced, whole, by ``[REDACTED]``; a private key block of any PEM type loses every line up to its
END line. Scanning goes line by line, as detect-secrets does, calling the detectors directly (its
ad-hoc scan would run its settings machinery, which is process-global, on every line), on the
line without zero-width characters (which can split a key); the mask covers them too.

JSON values are redacted with their key as context: a secret-named key (``password``, ``token``,
``X-Api-Key``, ``Authorization``, ``pass``, ...) makes its value a secret, masked whole: a string,
a number of four digits or more, and every string and number inside an object or list under it
(but for those under a key that describes, such as a user name or a type); every other string
is also scanned as the ``"key": "value"`` pair a JSON file would show. A string holding JSON
text (tool-call arguments often are) is redacted as that JSON. In an argument list
(``["mysql", "--password", S]``) the value after a secret-named flag, curl's ``-u user:pass``
or mysql's ``-p`` is masked.
"""

import base64
import binascii
import json
import re
from collections import Counter
from functools import lru_cache

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.plugins.keyword import KeywordDetector

MASK = "[REDACTED]"
# The keyword detector's rules depend on the file type: in code a value must be quoted
# (`password = "..."`, as `password = other_variable` is no secret); in config files it may
# be bare. Lines shaped like config (`.env`'s `NAME=value`, YAML's `name: value`) get the
# config rules, every other line the code rules.
CODE_FILENAME, CONFIG_FILENAME = "session.py", "session.ini"
CONFIG_LINE = re.compile(r"^\s*(?:export\s+)?(?:[A-Z][A-Z0-9_]*\s*=|[\w.-]+:[ \t]+)\s*\S+\s*$")
SKIPPED = {"Public IP (ipv4)"}  # an address is not a secret, and sessions are full of them
# Filters from detect-secrets' defaults that look at the secret or the line (the others are
# about files). Its allowlist comment is not honoured: an export should not trust the text.
FILTERS = (
    lambda secret, line, plugin: heuristic.is_sequential_string(secret),
    lambda secret, line, plugin: heuristic.is_potential_uuid(secret),
    lambda secret, line, plugin: heuristic.is_likely_id_string(secret, line, plugin),
    lambda secret, line, plugin: heuristic.is_templated_secret(secret),
    lambda secret, line, plugin: heuristic.is_prefixed_with_dollar_sign(secret),
    lambda secret, line, plugin: heuristic.is_not_alphanumeric_string(secret),
    # `password = get_password()`: unless the secret is a quoted literal on that line.
    lambda secret, line, plugin: heuristic.is_indirect_reference(line) and not _quoted(secret, line),
    lambda secret, line, plugin: bool(CALL_OPENED.fullmatch(secret)),  # `PASSWORD_RULE = re.compile(`
)
# Detectors of a key's own shape are trusted as they are; the filters are for the general ones.
GENERAL = ("Secret Keyword", "Token Keyword", "Base64 High Entropy String", "Hex High Entropy String")


CALL_OPENED = re.compile(r"[\w.]+[(\[{]")


def _quoted(secret, line):
    return f'"{secret}"' in line or f"'{secret}'" in line


# A secret a detector points into extends over these characters on both sides (a token's
# alphabet), so the whole token goes, also when a detector's pattern captures only its head.
TOKEN_CHAR = re.compile(r"[A-Za-z0-9_\-+/.~]")
PADDING = re.compile(r"[A-Za-z0-9_\-+/.~=]")  # a token may end in base64's `=` padding
PEM_BEGIN = re.compile(r"-{4,} ?BEGIN ")
PEM_END = re.compile(r"-{4,} ?END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*?-{4,}")
# What a command line or config file puts where a password goes when it is not one.
PLACEHOLDER = re.compile(r"[$%<{\[]|\*{3}|[xX•]{4}|\.\.\.|redacted|changeme|password\W*$", re.IGNORECASE)


def _detector(name, secret_type, pattern, keep=None):
    """A detect-secrets detector for one more kind of key; ``keep`` drops what only looks like one."""
    def analyze_string(self, string):
        for found in RegexBasedDetector.analyze_string(self, string):
            if keep is None or keep(found):
                yield found
    return type(name, (RegexBasedDetector,), {"secret_type": secret_type, "denylist": [re.compile(pattern)],
                                              "analyze_string": analyze_string})


def _basic_credentials(value):
    """Whether a Basic header's value decodes to ``user:password``, as credentials do."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in decoded and decoded.isprintable()


def _literal(value):
    """A password given as a value, not a variable, a template or a placeholder."""
    return len(value) > 3 and not PLACEHOLDER.search(value) and not value.isdigit()


def _user_password(value):
    """``user:password`` of curl's -u, but not docker's ``-u 1000:1000`` (user:group) or variables."""
    user, password = value.split(":", 1)
    return not PLACEHOLDER.search(user) and _literal(password) and not re.fullmatch(r"[\d:]+", value)


def _assigned_password(value, config_line):
    """The value of a ``password=`` assignment, unless it reads as code: a call, an index, a
    path or a name (``passwd = self.passwd``, ``password=password,``). A bare word counts as a
    name unless it has a digit or stands alone on a ``name=value`` line, as in a config file."""
    if value[0] in "\"'":
        return _literal(value[1:-1])
    if re.fullmatch(r"[A-Za-z_][\w.]*", value) and ("." in value or not (config_line or re.search(r"\d", value))):
        return False
    return _literal(value) and not re.search(r"[()\[\]]", value) and not value.startswith(("/", "~/", "./"))


# Keys detect-secrets 1.5 does not know by their shape.
OURS = [
    _detector("OpenSyncKeyDetector", "opensync-lite API Key", r"\bosk_[A-Za-z0-9_-]{16,}"),
    _detector("AnthropicKeyDetector", "Anthropic API Key", r"\bsk-ant-[a-z]+\d{2}-[A-Za-z0-9_-]{20,}"),
    # OpenAI's project and service-account keys no longer all carry the T3BlbkFJ marker.
    _detector("OpenAIProjectKeyDetector", "OpenAI API Key", r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"),
    _detector("GoogleApiKeyDetector", "Google API Key", r"\bAIza[0-9A-Za-z_-]{35}"),
    _detector("HuggingFaceTokenDetector", "Hugging Face Token", r"\bhf_[A-Za-z0-9]{30,}"),
    _detector("NpmAccessTokenDetector", "npm Access Token", r"\bnpm_[A-Za-z0-9]{36}\b"),  # it knows .npmrc lines only
    _detector("BearerTokenDetector", "Bearer Token", r"\b[Bb]earer\s+([A-Za-z0-9._~+/-]{16,}=*)"),
    _detector("MailgunKeyDetector", "Mailgun API Key", r"\bkey-[0-9a-f]{32}\b"),
    _detector("BasicAuthHeaderDetector", "Basic Auth Header", r"\bBasic\s+([A-Za-z0-9+/]{8,}={0,2})(?![\w+/=])",
              _basic_credentials),
    # Every PEM type (ENCRYPTED, DSA, PGP's block, ...): detect-secrets knows some by name only.
    _detector("PemPrivateKeyDetector", "Private Key", r"-{4,} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,}"),
    # Passwords on command lines: curl/wget's -u/--user user:password, mysql's -pPASSWORD, --password=.
    _detector("UserPasswordOptionDetector", "Password Option",
              r"(?:^|\s)(?:-u|--user)(?:\s+|=)[\"']?([^\s:\"'()]+:[^\s\"'()]+)", _user_password),
    _detector("MysqlPasswordOptionDetector", "Password Option",
              r"\b(?:mysql\w*|mariadb\w*)\b[^|;&\n]*?\s-p[\"']?([^\s\"']+)", _literal),
    _detector("PasswordOptionDetector", "Password Option", r"--pass(?:word|wd)?=[\"']?([^\s\"']+)", _literal),
]

# `password=`, `db_password=`, `passwd = ` (~/.my.cnf, .env and INI files, libpq's conninfo), in
# any case; detect-secrets takes lowercase names for code, where a value must be quoted.
PASSWORD_ASSIGNMENT = re.compile(r"(?:password|passwd|passphrase|pwd)[\"']?(\s*)=(?!=)(\s*)"
                                 r"(\"[^\"]+\"|'[^']+'|[^\s\"'&;,]+)", re.IGNORECASE)
NAME_CHARS = re.compile(r"[\w.-]*$")


class PasswordAssignmentDetector(RegexBasedDetector):
    secret_type = "Secret Keyword"
    denylist = [PASSWORD_ASSIGNMENT]

    def analyze_string(self, string):
        for match in PASSWORD_ASSIGNMENT.finditer(string):
            before = string[:match.start()]
            before = before[:NAME_CHARS.search(before).start()]  # the rest of the name (db_, MYSQL_)
            if before and before[-1] not in " \t;&?,(":
                continue
            # `password=hunter` alone on its line is a config file's; `password = hunter` is code's.
            config_line = not (match.group(1) or match.group(2) or before.strip() not in ("", "export")
                               or string[match.end():].strip())
            if _assigned_password(match.group(3), config_line):
                yield match.group(3).strip("\"'")


class TokenKeywordDetector(RegexBasedDetector):
    """``token``/``access_key`` = value, which detect-secrets' keyword list leaves out, when
    the value looks like a token (letters and digits, 16+ characters), not like code."""
    secret_type = "Token Keyword"
    denylist = [re.compile(
        r"(?:token|api[_-]?key|access[_-]?key|client_?secret|credentials?)[\w.-]*[\"']?\s*[:=]\s*[\"']?"
        r"((?=[A-Za-z0-9_\-+/=.]*\d)(?=[A-Za-z0-9_\-+/=.]*[A-Za-z])[A-Za-z0-9_\-+/=.]{16,})", re.IGNORECASE)]


def _detectors():
    """Ours and those of one provider's keys first (they name what they found), then the
    keyword and the high-entropy ones, which catch what is left."""
    general = (KeywordDetector, HighEntropyStringsPlugin)
    known = [cls() for name, cls in sorted(get_mapping_from_secret_type_to_class().items()) if name not in SKIPPED]
    return ([cls() for cls in OURS] + [d for d in known if not isinstance(d, general)]
            + [TokenKeywordDetector(), PasswordAssignmentDetector()]
            + [d for d in known if isinstance(d, KeywordDetector)] + [d for d in known if isinstance(d, HighEntropyStringsPlugin)])


DETECTORS = _detectors()

# Unquoted words the Base64 detector is asked about: its limit (4.5 bits a character) needs
# more than 2**4.5 (22.6) different characters, so shorter words can never pass it.
BASE64_WORD = re.compile(r"[A-Za-z0-9+/]{23,}={0,2}")
NOT_SECRETS = {"true", "false", "none", "null", "yes", "no", "required", "optional", "changeme", "redacted"}


def _candidates(detector, line, filename):
    """The secrets ``detector`` sees in ``line``. The Base64 detector also looks at unquoted
    words (what detect-secrets' eager search does), held to its entropy limit; hexadecimal
    strings count only when quoted, as commit and content hashes fill sessions."""
    patterns = getattr(detector, "denylist", None)
    if patterns and not any(p.search(line) for p in patterns):
        return ()  # what its analyze_line would find, without building its result objects
    found = {s.secret_value for s in detector.analyze_line(filename=filename, line=line, line_number=0)}
    if not found and detector.secret_type == "Base64 High Entropy String":
        found = {w for w in BASE64_WORD.findall(line) if detector.calculate_shannon_entropy(w) > detector.entropy_limit}
    if detector.secret_type == "Secret Keyword":
        # `password: yes` or `secret_type = "Secret Keyword"` tell of a setting or a name, not a secret.
        found = {secret for secret in found if len(secret) > 3 and secret.lower() not in NOT_SECRETS and " " not in secret}
    if detector.secret_type not in GENERAL:
        return {secret for secret in found if secret}
    return {secret for secret in found if secret and not any(f(secret, line, detector) for f in FILTERS)}


def _spans(line, secret):
    """Where ``secret`` stands in ``line``, each occurrence widened to its whole token."""
    start = line.find(secret)
    while start != -1:
        end = start + len(secret)
        while start > 0 and TOKEN_CHAR.match(line[start - 1]):
            start -= 1
        while end < len(line) and PADDING.match(line[end]):
            end += 1
        yield start, end
        start = line.find(secret, end)


def _scan_line(line, filename=None):
    """((start, end, kind) of each masked span, kind None on a secret's further occurrences;
    whether a private key starts on the line)."""
    spans, private_key = [], False
    filename = filename or (CONFIG_FILENAME if CONFIG_LINE.match(line) else CODE_FILENAME)
    for detector in DETECTORS:
        for secret in _candidates(detector, line, filename):
            if detector.secret_type == "Private Key":
                private_key = True
                begin = PEM_BEGIN.search(line)
                found = [(begin.start() if begin else 0, len(line))]
            else:
                found = list(_spans(line, secret))
            new = [(a, b) for a, b in found if not any(a < d and c < b for c, d, _ in spans)]
            # one secret, counted once, by the first detector that knows it
            spans += [(a, b, detector.secret_type if n == 0 else None) for n, (a, b) in enumerate(new)]
    return tuple(sorted(spans)), private_key


# Short lines are remembered: sessions repeat them (a file read twice, a resent message).
_scan_short = lru_cache(maxsize=16384)(_scan_line)
SHORT = 1000
# Invisible characters that can split a key (pasted from a chat or a web page) so that no
# detector sees it whole: lines are scanned without them.
ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def _scan(line, filename=None):
    """_scan_line's answer for ``line``, zero-width characters ignored (masks cover them)."""
    scan = _scan_short if len(line) < SHORT else _scan_line
    if not ZERO_WIDTH.search(line):
        return scan(line, filename)
    kept = [i for i, c in enumerate(line) if not ZERO_WIDTH.match(c)]
    spans, private_key = scan("".join(line[i] for i in kept), filename)
    return tuple((kept[a], kept[b - 1] + 1, kind) for a, b, kind in spans), private_key


def _masked(line, spans):
    out, last = [], 0
    for start, end, _ in sorted(spans):
        if start < last:  # overlaps the mask before: one mask for both
            last = max(last, end)
            continue
        out.append(line[last:start] + MASK)
        last = end
    return "".join(out) + line[last:]


# --- JSON values: the key as context ---------------------------------------------------------

KEY_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")  # X-Api-Key, apiKey, API_KEY: x api key
SECRET_WORDS = {"password", "passwd", "pass", "pwd", "passphrase", "secret", "token", "apikey", "authorization", "auth",
                "credential", "credentials", "cookie", "privatekey", "clientsecret", "secretkey", "accesskey"}
SECRET_PAIRS = {("api", "key"), ("private", "key"), ("secret", "key"), ("access", "key"), ("auth", "key"),
                ("signing", "key"), ("encryption", "key"), ("master", "key"), ("account", "key")}
# Keys whose values are hashes or ids, which the entropy rules would take for keys.
ID_WORDS = {"id", "ids", "uuid", "guid", "sha", "hash", "digest", "checksum", "commit", "oid", "rev", "revision",
            "etag", "integrity", "fingerprint", "md", "parent", "parents", "tree", "head", "ref"}
ENTROPY = {"Base64 High Entropy String", "Hex High Entropy String"}
# Values that say nothing secret: a setting, a variable or template, a placeholder, a mask.
PLAIN_VALUES = NOT_SECRETS | {"on", "off", "enabled", "disabled"}
TEMPLATE_VALUE = re.compile(r"\$\{[^}]*\}|\$\w+|\{\{.*\}\}|<[^<>]+>|%\(\w+\)s|%s|[*•xX.]{3,}")
# The pair adds to what a value shows on its own only for a keyword's key (detect-secrets' and
# ours) or a value of one token long enough for an entropy rule (quoted, it is judged whole).
KEYWORD_KEY = re.compile(r"pass|pwd|secret|key|token|auth|credential|contrase", re.IGNORECASE)
ONE_TOKEN = re.compile(r"[^\s\"']{9,}")


@lru_cache(maxsize=4096)
def _key_words(key):
    return tuple(w.lower() for w in KEY_WORD.findall(key)) if isinstance(key, str) else ()


def _secret_named(words):
    return bool(words) and (words[-1] in SECRET_WORDS or words[-2:] in SECRET_PAIRS)


# Under a secret-named key every value is taken for a secret, except those whose own key
# describes it (``{"credentials": {"user": "admin", "pass": …}}``: the user name stays).
DESCRIBING_WORDS = {"type", "kind", "scheme", "method", "user", "username", "login", "email", "name", "url", "uri",
                    "host", "port", "scope", "scopes", "provider", "description", "label", "expires", "expiry",
                    "created", "updated", "region", "algorithm", "alg", "format", "version", "path", "file"}
# A number of fewer digits under a secret-named key is a count or a flag (``"secret": 0``).
SECRET_NUMBER_DIGITS = 4
# Flags of an argument list (``["mysql", "--password", S]``) whose next argument is a secret:
# any long flag named for one (``--password``, ``--token``, ``--api-key``), curl's ``-u user:pass``,
# and mysql's and mariadb's ``-p`` (which, alone, asks for the password: ``-p shop`` names a database).
USER_FLAGS = {"-u", "--user"}
MYSQL = re.compile(r"(?:.*/)?(?:mysql|mariadb)\w*")
DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z_.-]*")


def _secret_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and len(str(abs(int(value)))) >= SECRET_NUMBER_DIGITS)


def _argv_secrets(argv):
    """The indexes in the argument list ``argv`` (strings only) that hold a flag's secret value."""
    found = []
    mysql = bool(argv) and bool(MYSQL.fullmatch(argv[0]))
    for i, (flag, value) in enumerate(zip(argv, argv[1:])):
        if not flag.startswith("-") or value.startswith("-") or i + 1 in found:
            continue
        if flag in USER_FLAGS:
            secret = ":" in value and _user_password(value)
        elif flag == "-p":
            secret = mysql and _literal(value) and not DATABASE_NAME.fullmatch(value)
        else:
            words = _key_words(flag) if flag.startswith("--") else ()
            secret = _secret_named(words) and not _says_nothing(value, words)
        if secret:
            found.append(i + 1)
    return found


AUTH_SCHEME = re.compile(r"(?:Bearer|Basic|Token|Digest)\s+", re.IGNORECASE)


def _says_nothing(value, words):
    value = AUTH_SCHEME.sub("", value.strip(), count=1)  # `Bearer ${TOKEN}` is a template too
    return (not value or value.lower() in PLAIN_VALUES or MASK in value or "redacted" in value.lower()
            or bool(TEMPLATE_VALUE.fullmatch(value)) or (words[-1] == "pwd" and value.startswith(("/", "~"))))


class Redactor:
    """Masks the secrets in the texts it is given and counts them by kind (``counts``)."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.counts = Counter()

    @property
    def total(self):
        return sum(self.counts.values())

    def _mask(self, line, spans, drop=()):
        spans = [span for span in spans if span[2] not in drop]
        self.counts.update(kind for _, _, kind in spans if kind)
        return _masked(line, spans) if spans else line

    def text(self, text, drop=()):
        """``text`` masked; ``drop``: kinds of secret not to mask in it."""
        if not self.enabled or not isinstance(text, str) or not text:
            return text
        lines = text.split("\n")
        in_key = False
        for i, line in enumerate(lines):
            if in_key:
                in_key = not PEM_END.search(line)
                lines[i] = MASK if line.strip() else line
                continue
            spans, private_key = _scan(line)
            lines[i] = self._mask(line, spans, drop)
            in_key = private_key and not PEM_END.search(line)
        return "\n".join(lines)

    def value(self, value, key=None):
        """Any JSON value with each string in it masked (keys too: tools name files by secrets),
        each with the key it stands under (``key`` for a top-level one) as its context."""
        if self.enabled and _secret_named(_key_words(key)) and (isinstance(value, (dict, list)) or _secret_number(value)):
            return self._secret(value, key)
        if isinstance(value, str):
            return self._string(value, key)
        if isinstance(value, list):
            flagged = set(_argv_secrets(value)) if self.enabled and all(isinstance(v, str) for v in value) else ()
            self.counts.update("Password Option" for _ in flagged)
            return [MASK if i in flagged else self.value(v, key) for i, v in enumerate(value)]
        if isinstance(value, dict):
            # {"name": "Authorization", "value": "Basic …"}: headers in HAR files and fetch logs.
            name = value.get("name", value.get("key"))
            return {self.text(k): self.value(v, name if k == "value" and isinstance(name, str) else k)
                    for k, v in value.items()}
        return value

    def _secret(self, value, key):
        """The value of a secret-named key: each string and number in it masked, and counted, but
        for what says nothing and what stands under a key that describes it (a user name, a type)."""
        if isinstance(value, list):
            return [self._secret(v, key) for v in value]
        if isinstance(value, dict):
            return {self.text(k): self.value(v, k) if DESCRIBING_WORDS.intersection(_key_words(k))
                    and not _secret_named(_key_words(k)) else self._secret(v, k) for k, v in value.items()}
        if isinstance(value, str) and value and not _says_nothing(value, _key_words(key) or ("secret",)):
            self.counts["Secret Keyword"] += 1
            return MASK
        if _secret_number(value):
            self.counts["Secret Keyword"] += 1
            return MASK
        return value

    def _string(self, value, key):
        if not self.enabled or not value:
            return value
        stripped = value.strip()
        if stripped[:1] + stripped[-1:] in ("{}", "[]"):  # JSON text, perhaps
            redacted = self._json_text(value, key)
            if redacted is not None:
                return redacted
        words = _key_words(key)
        if _secret_named(words):
            if _says_nothing(value, words):
                return value
            found = [kind for _, _, kind in self._pair(key, value) if kind]
            self.counts.update(found[:1] or ["Secret Keyword"])  # one value, one secret
            return MASK
        drop = ENTROPY if ID_WORDS.intersection(words) else ()
        if not words or "\n" in value:
            return self.text(value, drop)
        return self._mask(value, [span for span in self._pair(key, value) if span[2] not in drop])

    @staticmethod
    def _pair(key, value):
        """The spans to mask in one line ``value``: those it has on its own and, not overlapping
        them, those the ``"key": "value"`` line a JSON file would show has in the value."""
        own = list(_scan(value)[0])
        if not (KEYWORD_KEY.search(key) or ONE_TOKEN.fullmatch(value)):
            return own
        prefix = f'"{key}": "'
        low, high = len(prefix), len(prefix) + len(value)
        for a, b, kind in _scan(prefix + value + '"')[0]:
            a, b = max(a, low) - low, min(b, high) - low
            if a < b and not any(a < d and c < b for c, d, _ in own):
                own.append((a, b, kind))
        return own

    def _json_text(self, value, key):
        """A string holding JSON (tool-call arguments, a serialised response), redacted as JSON:
        written again only when something in it was masked; None when it is not JSON."""
        inner, pretty = Redactor(), "\n" in value.strip()
        try:
            parsed = json.loads(value)
            if not isinstance(parsed, (dict, list)):
                return None
            redacted = inner.value(parsed, key)
            if not inner.total:
                return value
            text = json.dumps(redacted, ensure_ascii=False, indent=2 if pretty else None,
                              separators=None if pretty or '": ' in value else (",", ":"))
        except (ValueError, RecursionError):  # not JSON, or too deep to walk: redacted as text
            return None
        self.counts.update(inner.counts)
        return text
