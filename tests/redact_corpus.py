"""A corpus of secrets and personal data as they appear in incident text, and of innocent look-alikes.

`SECRETS` holds one case per format: where it was pasted, the text, and every value that must
not survive redaction. `INNOCENT` holds incident sentences full of things that look like
secrets (versions, SHAs, timestamps, internal IPs, ticket keys, metrics, hostnames, ids next to
key-like labels, capitalised service and team names) and must come back unchanged.
tests/test_redact.py measures recall and the false-positive rate on them, and
tests/test_redact_pipeline.py plants every value in a bundle and checks what leaves the machine.

Vendor-prefixed credentials are assembled at run time (prefix + generated body) so that secret
scanners do not flag this file; none of them is a real credential. Names, addresses and numbers
are invented or are the documented test values (example IBANs, the SSA's sample SSN).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def fake(prefix: str, n: int, alphabet: str = ALNUM, seed: str = "") -> str:
    """A deterministic fake credential: prefix + n characters from alphabet."""
    rng = random.Random(f"corpus:{seed}{prefix}{n}{alphabet[:4]}")
    return prefix + "".join(rng.choice(alphabet) for _ in range(n))


@dataclass(frozen=True)
class Case:
    """One format: a label for reports, the text, and the values that must all disappear."""

    fmt: str
    text: str
    secrets: tuple[str, ...]


def _c(fmt: str, text: str, *secrets: str) -> Case:
    assert secrets and all(s in text for s in secrets), fmt
    return Case(fmt, text, secrets)


_AKIA = fake("AK" + "IA", 16, string.ascii_uppercase + string.digits)
_ASIA = fake("AS" + "IA", 16, string.ascii_uppercase + string.digits)
_AWS_SECRET = fake("", 40, B64, "aws")
_AWS_SESSION = fake("IQoJb3JpZ2luX2Vj", 180, B64)
_AIZA = fake("AI" + "za", 35, URLSAFE)
_GHP = fake("gh" + "p_", 36)
_GITHUB_PAT = fake("github" + "_pat_11AB", 74, ALNUM + "_")
_GLPAT = fake("gl" + "pat-", 20, URLSAFE)
_XOXB = fake("xox" + "b-2048-5127-", 24)
_HOOK = fake("", 24, ALNUM, "hook")
_DISCORD = fake("", 68, URLSAFE, "discord")
_TEAMS = fake("", 32, HEX, "teams")
_SK_LIVE = fake("s" + "k_live_", 99)
_SK_PROJ = fake("s" + "k-proj-", 120, URLSAFE)
_SK_ANT = fake("s" + "k-ant-api03-", 93, URLSAFE)
_SENDGRID = fake("S" + "G.", 22, URLSAFE) + fake(".", 43, URLSAFE)
_NPM = fake("np" + "m_", 36)
_PYPI = fake("py" + "pi-AgEIcHlwaS5vcmc", 70, URLSAFE)
_HVS = fake("hv" + "s.", 90, URLSAFE)
_GLSA = fake("gl" + "sa_", 32) + fake("_", 8, HEX)
_HF = fake("h" + "f_", 34)
_JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjE2In0."
    + fake("eyJzdWIiOiJ1c2VyLTQyIiwi", 60, URLSAFE)
    + "."
    + fake("", 86, URLSAFE, "jwt")
)
_OPAQUE = fake("", 40, ALNUM, "opaque")
_HEX32 = fake("", 32, HEX, "hex32")
_HEX40 = fake("", 40, HEX, "hex40")
_B64_88 = fake("", 86, B64, "azure") + "=="
_SIG = fake("", 30, ALNUM, "sig") + "%2B" + fake("", 10, ALNUM, "sig2") + "%3D"
_EDGE = fake("", 28, ALNUM, "edge")
_RELAY = fake("", 30, ALNUM + "_-", "relay")
_TLS_KEY = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t" + fake("", 60, B64, "tls")
_PEM_BODY = "\n".join(fake("", 64, B64, f"pem{i}") for i in range(3))
_SSH_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" + fake("", 30, B64, "ssh")
_PGP_BODY = "lQOYBGZ" + fake("", 60, B64, "pgp")
_WEBHOOK_SECRET = fake("", 36, ALNUM, "whs")

SECRETS: list[Case] = [
    # --- cloud and vendor credentials ------------------------------------------------------
    _c("aws access key id", f"the deploy log printed {_AKIA} in plain text", _AKIA),
    _c("aws secret key (env)", f"AWS_SECRET_ACCESS_KEY={_AWS_SECRET}", _AWS_SECRET),
    _c(
        "aws sts credentials (json)",
        f'{{"AccessKeyId": "{_ASIA}", "SecretAccessKey": "{_AWS_SECRET}", '
        f'"SessionToken": "{_AWS_SESSION}"}}',
        _ASIA,
        _AWS_SECRET,
        _AWS_SESSION,
    ),
    _c("gcp api key", f"maps calls failed: key={_AIZA} is restricted", _AIZA),
    _c(
        "gcp service account json",
        '{"type": "service_account", "private_key_id": "1f2e3d", "private_key": '
        '"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n'
        '-----END PRIVATE KEY-----\\n"}',
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    ),
    _c(
        "azure storage connection string",
        "DefaultEndpointsProtocol=https;AccountName=acmelogs;"
        f"AccountKey={_B64_88};EndpointSuffix=core.windows.net",
        _B64_88,
    ),
    _c(
        "azure sas url",
        "download https://acmelogs.blob.core.windows.net/dumps/heap.hprof?sv=2022-11-02&ss=b"
        f"&srt=o&sp=r&se=2024-05-15T00:00:00Z&sig={_SIG} and attach it",
        _SIG,
    ),
    _c("github classic pat", f"CI pushed with {_GHP} from the runner", _GHP),
    _c("github fine-grained pat", f"GH_TOKEN={_GITHUB_PAT}", _GITHUB_PAT),
    _c("gitlab pat", f"git clone https://oauth2:{_GLPAT}@gitlab.acme.example/app.git", _GLPAT),
    _c("slack bot token", f"bot token `{_XOXB}` was in the screenshot", _XOXB),
    _c(
        "slack webhook url",
        "alerts go to https://hooks.slack" + f".com/services/T0001/B0002/{_HOOK}",
        _HOOK,
    ),
    _c(
        "discord webhook url",
        f"status bot posts to https://discord.com/api/webhooks/1234567890123456/{_DISCORD}",
        _DISCORD,
    ),
    _c(
        "teams webhook url",
        "notify via https://acme.webhook.office.com/webhookb2/0a1b2c3d-1111-2222-3333-"
        f"444455556666@9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff/IncomingWebhook/{_TEAMS}/"
        "12345678-abcd-ef01-2345-6789abcdef01",
        _TEAMS,
    ),
    _c("stripe secret key", f"payments 401: {_SK_LIVE} was revoked", _SK_LIVE),
    _c("openai project key", f"drafting used {_SK_PROJ}", _SK_PROJ),
    _c("anthropic key", f"ANTHROPIC_API_KEY={_SK_ANT}", _SK_ANT),
    _c("sendgrid key", f"mail relay key {_SENDGRID} bounced", _SENDGRID),
    _c("twilio auth token", f"TWILIO_AUTH_TOKEN={_HEX32}", _HEX32),
    _c("npm token (.npmrc)", f"//registry.npmjs.org/:_authToken={_NPM}", _NPM),
    _c("pypi token", f"twine upload -u __token__ -p {_PYPI}", _PYPI),
    _c("datadog api key header", f"DD-API-KEY: {_HEX32}", _HEX32),
    _c("vault token", f"export VAULT_TOKEN={_HVS}", _HVS),
    _c("grafana service account token", f"grafana SA token {_GLSA} in the dashboard json", _GLSA),
    _c("hugging face token", f"model pull used {_HF}", _HF),
    # --- tokens, headers, cookies ------------------------------------------------------------
    _c("jwt", f"the failing request carried {_JWT}", _JWT),
    _c(
        "bearer token",
        f"curl -H 'Authorization: Bearer {_OPAQUE}' https://api.acme.example",
        _OPAQUE,
    ),
    _c(
        "basic auth header",
        "Authorization: Basic YWRtaW46Y2hhbmdlbWUxMjM=",
        "YWRtaW46Y2hhbmdlbWUxMjM",
    ),
    _c("cookie header", "Cookie: _session_id=4f9a2c7e1b3d5f60; theme=dark", "4f9a2c7e1b3d5f60"),
    _c("set-cookie", "Set-Cookie: sid=s%3AQm9vdGg.kJ7x; Path=/; HttpOnly", "s%3AQm9vdGg.kJ7x"),
    _c(
        "curl basic auth",
        "curl -u deploy:Wint3r-is-coming https://ci.acme.example",
        "Wint3r-is-coming",
    ),
    _c("custom key header", f"X-Edge-Key: {_EDGE}", _EDGE),
    _c("custom token header", "x-internal-token: 77c1d0e2aa", "77c1d0e2aa"),
    _c("custom secret header", f"X-Webhook-Secret: {_WEBHOOK_SECRET}", _WEBHOOK_SECRET),
    _c("custom auth header", "X-Custom-Auth: partner-7731:Qp9r", "partner-7731:Qp9r"),
    _c(
        "signature header",
        f"X-Hub-Signature-256: sha256={_HEX40}",
        _HEX40,
    ),
    _c("key field in json", f'{{"edge-key": "{_EDGE}", "region": "eu"}}', _EDGE),
    _c("token field in yaml", "cdn:\n  origin-token: Zr8wq1LmX4\n  ttl: 300", "Zr8wq1LmX4"),
    _c("unknown key label, high entropy", f"relay_key={_RELAY}", _RELAY),
    _c("cli flag --token", f"./deploy.sh --token {_OPAQUE} --env prod", _OPAQUE),
    _c("cli flag --api-key=", f"acmectl login --api-key={_EDGE}", _EDGE),
    _c(
        "k8s secret (base64 tls.key)",
        f"data:\n  tls.crt: LS0tLS1CRUdJTiBDRVJU\n  tls.key: {_TLS_KEY}",
        _TLS_KEY,
    ),
    _c(
        "docker config auth",
        '{"auths": {"registry.acme.example": {"auth": "ZGVwbG95OnMzY3JldFBhc3M="}}}',
        "ZGVwbG95OnMzY3JldFBhc3M",
    ),
    # --- passwords -------------------------------------------------------------------------
    _c("password in prose", "the password is Tr0ub4dor&3, please rotate", "Tr0ub4dor", "&3"),
    _c("password in prose (for)", "password for svc-checkout is Xk9#mQ2v", "Xk9#mQ2v"),
    _c("password changed to", "I changed the admin password to Gr33n-Apple!", "Gr33n-Apple"),
    _c("pw: label", "pw: hunter2!", "hunter2"),
    _c("password= with &", "password=ab&cd12", "password=ab", "&cd12"),
    _c("secret= with &", "secret=Tr0ub4dor&3 was in the query", "Tr0ub4dor", "&3"),
    _c("env password", "DB_PASSWORD=Sup3r$ecret99", "Sup3r$ecret99"),
    _c("yaml password", "redis:\n  password: 'Rk8#qL2z'\n", "Rk8#qL2z"),
    _c("json password", '{"username": "svc", "password": "p@ssw0rd!"}', "p@ssw0rd!"),
    _c("mysql -p<password>", "mysql -h db-1 -u root -pS3cr3tPw orders", "S3cr3tPw"),
    _c("mysql -p'...'", "mysqldump -uroot -p'hunter 2 pass' orders > o.sql", "hunter 2 pass"),
    _c("mysql --password=", "mysql --password=Zq7vL0ps -h db-1", "Zq7vL0ps"),
    _c("cli --password value", "mongosh --host db --password Kx82nd-qp", "Kx82nd-qp"),
    _c("sshpass -p", "sshpass -p 'r00t!pass' ssh admin@bastion", "r00t!pass"),
    _c("redis-cli -a", "redis-cli -h cache-0 -a Rd5pass!x PING", "Rd5pass!x"),
    # --- connection strings and keys -------------------------------------------------------
    _c(
        "postgres url",
        "DATABASE_URL=postgres://app:S3cretPass@db.internal:5432/orders",
        "S3cretPass",
    ),
    _c("mongodb+srv url", "mongodb+srv://svc:p%40ss9@cluster0.mongodb.net/db", "p%40ss9"),
    _c("redis url", "REDIS_URL=redis://:Hx77redis@cache-0:6379/0", "Hx77redis"),
    _c(
        "jdbc url",
        "jdbc:mysql://db-1:3306/app?user=app&password=Hx7!kq2&useSSL=true",
        "Hx7!kq2",
    ),
    _c(
        "ado.net connection string",
        "Server=tcp:sql-1,1433;User Id=sa;Password=Sup3r$ecret;Encrypt=True;",
        "Sup3r$ecret",
    ),
    _c(
        "pem rsa private key",
        "pasted by mistake:\n-----BEGIN RSA PRIVATE KEY-----\n"
        + _PEM_BODY
        + "\n-----END RSA PRIVATE KEY-----",
        _PEM_BODY.split("\n")[1],
    ),
    _c(
        "openssh private key",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{_SSH_BODY}\n-----END OPENSSH PRIVATE KEY-----",
        _SSH_BODY,
    ),
    _c(
        "pgp private key",
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{_PGP_BODY}\n-----END PGP PRIVATE KEY BLOCK-----",
        _PGP_BODY,
    ),
    # --- personal data: contact, payment, national ids -------------------------------------
    _c(
        "email",
        "customer wrote from jane.doe+orders@gmail.com at 14:02",
        "jane.doe+orders@gmail.com",
    ),
    _c("us phone", "call her back on (415) 555-0132", "555-0132"),
    _c("us phone (+1)", "escalation line +1 212 555 0187", "212 555 0187"),
    _c("uk phone", "UK bridge +44 20 7946 0958", "7946 0958"),
    _c("uk mobile (national)", "his mobile is 07700 900461", "07700 900461"),
    _c("german phone", "Berlin office +49 30 901820", "30 901820"),
    _c("french phone (national)", "rappeler le client au 01 42 68 53 00", "01 42 68 53 00"),
    _c("indian phone", "store manager +91 98765 43210", "98765 43210"),
    _c("australian mobile", "the merchant's number is +61 412 345 678", "412 345 678"),
    _c("visa card", "customer pasted card 4111 1111 1111 1111 exp 12/26", "4111 1111 1111 1111"),
    _c("amex card", "amex 3782 822463 10005 was double charged", "3782 822463 10005"),
    _c("mastercard", "charge on 5555-5555-5555-4444 failed twice", "5555-5555-5555-4444"),
    _c(
        "iban (DE, grouped)",
        "refund to IBAN DE89 3704 0044 0532 0130 00 please",
        "DE89 3704 0044 0532 0130 00",
    ),
    _c(
        "iban (GB, compact)",
        "bank details GB33BUKB20201555555555 from the ticket",
        "GB33BUKB20201555555555",
    ),
    _c(
        "iban (FR)",
        "virement vers FR14 2004 1010 0505 0001 3M02 606",
        "FR14 2004 1010 0505 0001 3M02 606",
    ),
    _c("iban (NL)", "customer account NL91ABNA0417164300", "NL91ABNA0417164300"),
    _c("us ssn", "Rotate SSN 123-45-6789 in the test fixture", "123-45-6789"),
    _c("us ssn (labelled, no dashes)", "SSN: 078051120 on the form", "078051120"),
    _c("uk ni number", "NI number AB 12 34 56 C on the payroll export", "AB 12 34 56 C"),
    _c("passport (labelled)", "passport number: 533380006 was in the upload", "533380006"),
    _c("date of birth (labelled)", "DOB: 1984-03-17, verified by support", "1984-03-17"),
    # --- addresses ---------------------------------------------------------------------------
    _c(
        "us street address",
        "ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500 by Friday",
        "1600 Pennsylvania Avenue",
        "DC 20500",
    ),
    _c(
        "us address (apt)",
        "her address is 742 Evergreen Terrace, Apt 2B, Springfield",
        "742 Evergreen Terrace",
    ),
    _c(
        "us address (lowercase)",
        "he lives at 55 oak street, columbus oh 43004",
        "55 oak street",
        "oh 43004",
    ),
    _c(
        "uk address",
        "delivery to 221B Baker Street, London NW1 6XE failed",
        "221B Baker Street",
        "NW1 6XE",
    ),
    _c(
        "german address",
        "Lieferadresse: Hauptstraße 5, 10115 Berlin",
        "Hauptstraße 5",
        "10115 Berlin",
    ),
    _c(
        "french address",
        "adresse: 12 rue de la Paix, 75002 Paris",
        "12 rue de la Paix",
        "75002 Paris",
    ),
    _c(
        "dutch address",
        "customer at Keizersgracht 123, 1015 CJ Amsterdam",
        "Keizersgracht 123",
        "1015 CJ",
    ),
    # --- names of people outside the incident ----------------------------------------------
    _c("customer name", "customer Jane Doe reported double charges at 14:05", "Jane Doe"),
    _c("honorific + surname", "Mrs. Okafor called the support line twice", "Okafor"),
    _c("honorific, no dot", "Mr Hendricks says his order is stuck", "Hendricks"),
    _c("dear + name", "> Dear Ms. Adeyemi-Clarke, we are sorry for", "Adeyemi-Clarke"),
    _c("my name is", "> Hello, my name is Carlos Mendes and my card was charged", "Carlos Mendes"),
    _c("ticket requester field", "Requester: Ana Lucia Silva\nPriority: high", "Ana Lucia Silva"),
    _c("customer name field", "Customer name: Tomás Ortega", "Tomás Ortega"),
    _c("signature", "> Kind regards,\n> Henrietta Vos\n> Vos Bakery", "Henrietta Vos"),
    _c(
        "name next to email",
        "> From: Ingrid Solberg <ingrid.s@fjordbank.example>",
        "Ingrid Solberg",
    ),
    _c("cardholder", "the cardholder, Liam O'Connor, disputed it", "Liam O'Connor"),
    # --- held out first: written after the rules above and scored once before any change
    # (27 of 32 redacted, 0 of 30 innocent sentences changed; docs/redaction.md). Four misses
    # were fixed since, so these are regression cases now. The fifth stays a documented gap.
    _c("pw for <host> is", "fyi the root pw for the bastion is Blu3Sky!", "Blu3Sky"),
    _c("password label, dashes", "new admin password: zebra-Crossing-88", "zebra-Crossing-88"),
    _c("datadog key (env)", f"export DATADOG_API_KEY={_HEX32}", _HEX32),
    _c(
        "postgresql url in quotes",
        "psql 'postgresql://report:Winter2024!@analytics-db:5432/bi'",
        "Winter2024!",
    ),
    _c(
        "shopify token header",
        "header was x-shopify-access-token: shp" + "at_00112233445566778899aabbccddeeff",
        "shp" + "at_00112233445566778899aabbccddeeff",
    ),
    _c("x-auth-token header", "X-Auth-Token: 8c2a7f1e9b4d", "8c2a7f1e9b4d"),
    _c("client_secret json, no spaces", '{"client_secret":"q8Z!vT2#pL9m"}', "q8Z!vT2#pL9m"),
    _c(
        "ApiKey= in a connection string",
        "ApiKey=Kq7XmN2pR8sT4vW6yZ1a in the connection string",
        "Kq7XmN2pR8sT4vW6yZ1a",
    ),
    _c(
        "kubectl --from-literal",
        "kubectl create secret generic db --from-literal=password=S3cure!Pass",
        "S3cure!Pass",
    ),
    _c("docker login -p", "docker login -u ci -p Dock3rHubPw registry.acme.example", "Dock3rHubPw"),
    _c(
        "aws configure set",
        f"aws configure set aws_secret_access_key {_AWS_SECRET}",
        _AWS_SECRET,
    ),
    _c(
        "slack webhook (realistic ids)",
        "webhook https://hooks.slack" + f".com/services/T0ABCDEF1/B0ABCDEF2/{_HOOK}",
        _HOOK,
    ),
    _c("amqps url", "amqps://svc-orders:Rabb1tMQ!@mq.internal:5671/orders", "Rabb1tMQ!"),
    _c("uk mobile (+44)", "call the customer back at +44 7700 900123", "7700 900123"),
    _c("us phone (dashes)", "her number is 212-555-0147", "212-555-0147"),
    _c("spanish phone", "Spanish office +34 912 345 678", "912 345 678"),
    _c("visa (4012…)", "card on file 4012 8888 8888 1881", "4012 8888 8888 1881"),
    _c(
        "iban (ES)",
        "IBAN ES91 2100 0418 4502 0005 1332 for the refund",
        "ES91 2100 0418 4502 0005 1332",
    ),
    _c("iban (BE, compact, first word)", "BE68539007547034 is the account", "BE68539007547034"),
    _c("us ssn (other)", "SSN 219-09-9999 showed in the export", "219-09-9999"),
    _c("email (labelled)", "customer email: mario.rossi@libero.it", "mario.rossi@libero.it"),
    _c(
        "us address (NY)",
        "ship to 350 Fifth Avenue, New York, NY 10118",
        "350 Fifth Avenue",
        "NY 10118",
    ),
    _c(
        "uk address (SW1A)",
        "address: 10 Downing Street, London SW1A 2AA",
        "10 Downing Street",
        "SW1A 2AA",
    ),
    _c("german address (any street)", "Kurfürstendamm 21, 10719 Berlin", "Kurfürstendamm 21"),
    _c("italian address", "Via Roma 12, 00184 Roma", "Via Roma 12"),
    _c("customer name (other)", "customer Maria Gonzalez says checkout hangs", "Maria Gonzalez"),
    _c("Dr. + surname", "Dr. Patel from the clinic called support", "Patel"),
    _c("best regards signature", "> Best regards,\n> Thomas Müller", "Thomas Müller"),
    _c("user named <first name>", "user named Priyanka reported the bug", "Priyanka"),
    _c(
        "set-cookie (remember token)",
        "Set-Cookie: remember_token=9f8e7d6c5b4a; Secure",
        "9f8e7d6c5b4a",
    ),
    _c(
        "x-api-token header in curl",
        'curl -H "X-API-TOKEN: tok_live_51Hq2" https://api',
        "tok_live_51Hq2",
    ),
]

INNOCENT: list[str] = [
    # versions and builds
    "upgraded openssl to 3.0.13 and nginx to 1.25.4 during the window",
    "rolled back checkout-api from v2.31.0-rc.1 to v2.30.4",
    "kernel 5.15.0-1057-aws on the node group, containerd 1.7.13",
    "build 2024.05.14-3 failed at step 4 Drain Node",
    # commit SHAs and digests
    "reverted commit 9f2c1ab0d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8 at 14:31",
    "short sha a1b2c3d is the bad deploy",
    "image ghcr.io/acme/checkout@sha256:4f9a2c7e1b3d5f6071829a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
    'ETag: "33a64df551425fcc55e4d42a148795d9f25f89d4"',
    # timestamps and durations
    "alert fired 2024-05-14T13:58:42Z, acked 14:02:33 UTC, resolved at 15:08",
    "epoch 1715695558 and 1715695558070 in the logs",
    "time to mitigate 37m, time to detect 4m12s, p99 2.8s",
    # internal IPs and hostnames
    "db-primary-1.prod.internal (10.0.3.17) stopped accepting connections on 5432",
    "health checks from 172.16.254.3 and 192.168.1.10:8080 timed out",
    "node ip-10-0-3-17.eu-west-1.compute.internal went NotReady",
    "IPv6 fd00:1234::17 on the pod network",
    # ticket keys, ids and URLs
    "tracked in INC-1432, change CHG-2291 and OPS-1234",
    "https://acme.atlassian.net/browse/OPS-1234?focusedCommentId=123456",
    "https://acme.zendesk.com/agent/tickets/4511023 has the customer's report",
    "https://linear.app/acme/issue/ENG-123/pool-size-regression",
    "https://sentry.io/organizations/acme/issues/4511023/?project=1234567&query=is%3Aunresolved",
    "https://github.com/acme/checkout/commit/9f2c1ab0d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8",
    "https://app.datadoghq.com/apm/trace/4bf92f3577b34da6a3ce929d0e0e4736?spanID=6512359",
    "PagerDuty incident Q1T8M4XRZ6KB2W escalated to PXPGF42",
    "Slack thread in C024BE91L from U0213178A97",
    "request_id=550e8400-e29b-41d4-a716-446655440000 returned 503",
    "trace_id: 4bf92f3577b34da6a3ce929d0e0e4736, span_id: 00f067aa0ba902b7",
    "Idempotency-Key: 8e03978e-40d5-43e8-bc93-6894a57f9324 was reused",
    "X-Request-Id: 7f3c2a9e-51b4-4c0e-9f6d-2b8a1c3d4e5f",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ== on the upgrade request",
    "dedup_key: 8f3a9c2e1b7d4e6f8a9b0c1d2e3f4a5b",
    '{"cache_key": "3f9a2b1c0d8e7f6a5b4c3d2e1f0a9b8c", "hits": 0}',
    "partition_key: orders-2024-05 and sort_key: created_at",
    '"public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"',
    '"kid": "2011-04-29", "key_id": "1f2e3d4c5b6a"',
    "duplicate key value violates unique constraint orders_pkey",
    "instance i-0abcd1234ef567890 in subnet-0a1b2c3d4e5f67890",
    # metrics
    "5xx ratio ~18%, error_rate=0.18, cpu=93% on 6 of 8 pods",
    "queue depth 250000, lag 123456 messages, 1,234,567 requests",
    "latency p50 85 ms, p99 1200 ms between 14:02 and 14:09",
    "cost $12,345.67 this month; 3 of 5 AZs degraded",
    # secrets talked about, not given
    "the password is wrong for svc-checkout, see the runbook",
    "the password is in 1Password under Checkout DB",
    "password was rotated at 14:05 by the on-call",
    "the token is rotated, the key is in vault; no action needed",
    "password set to expire in 90 days per policy",
    "--password-file=/run/secrets/db and --token-file /etc/acme/token",
    "mysql -h db-1 -P 3306 -u app -p orders (prompted for the password)",
    "docker run -p 8080:8080 -e PORT=8080 checkout:2.31",
    "API key rotation is tracked in OPS-1240",
    "Secrets Manager and Key Vault both returned 500",
    "auth_mode: oauth2, token_ttl: 3600, secret_name: db-creds",
    "X-RateLimit-Remaining: 0 and Retry-After: 30",
    # capitalised words that are not people
    "customer Black Friday traffic doubled the checkout load",
    "Customer Success team is drafting the status page update",
    "customers in Germany and France saw 503s from Payments Gateway",
    "the customer-facing API returned 502 Bad Gateway",
    "Customer Support Portal and Order History were read-only",
    "user Service Account lacks storage.objects.get",
    "Dear team, the incident is resolved. Kind regards, Platform Team",
    "Thanks, the SRE team",
    # number shapes that are not addresses, SSNs or bank accounts
    "we run 3 Availability Zones and 2 Google Drive folders for runbooks",
    "Route 53 health checks failed for 5 Main Services",
    "ISBN 0-306-40615-2 in the book-service test data",
    "invalid id 000-12-3456 and 666-12-3456 rejected by validation",
    "order DE89370400440532013001 is a reference, not an account",
    "region us-east-1, AZ use1-az4, instance type m5.2xlarge",
    "sprint 12, 2024 Planning moved to OPS-90",  # a year is not a postcode
    # held out first (see SECRETS); all came back unchanged on their first run
    "rolled out 2.14.0-beta.3 to 10% of pods at 09:12 UTC",
    "p95 went from 180ms to 2.4s after the deploy of a9f3c21",
    "10.42.0.17 and 10.42.3.201 are the two ingress pods",
    "alert CheckoutLatencyHigh fired 3 times between 14:00 and 14:20",
    "INC-2231 is a duplicate of INC-2229",
    "commit 4e1b0c9f2a7d3e5b6c8a9f0d1e2b3c4a5f6e7d8c reverted the pool change",
    "trace 7a3f0c2e1d4b5a69 shows 412 retries",
    "customer impact: 3.2% of checkouts failed for 41 minutes",
    "Customer Experience team posted on the status page",
    "the API key rotation job ran at 02:00 and succeeded",
    "password reset emails were delayed by 12 minutes",
    "token bucket refill rate 500/s, burst 1000",
    "key=checkout-api in the Grafana variable",
    "X-Request-ID: 3f2c9e8a-1b7d-4c5e-9a0f-6d2e8b4c1a7f",
    "Idempotency-Key reuse caused 409s",
    "Redis MOVED 12182 10.0.5.12:6379",
    "AZ us-east-1c lost 2 of 6 brokers",
    "Black Friday peak was 14,200 rps",
    "New Relic and PagerDuty both paged at 14:03",
    "Kafka partition 12 lag 1,204,551",
    "the user Service Principal lacked Storage Blob Data Reader",
    "runbook: drain node ip-10-1-2-3, then cordon",
    "Dear on-call, please ack",
    "Kind regards from the SRE team",
    "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    "PD incident P9XZ7Q1 merged into PQ3R8T2",
    "ETA 15 min, ETA 30 min, then resolved",
    "cpu_seconds_total went 4x, see dashboard abc-123",
    "--dry-run --token-file /var/run/secrets/token",
]
