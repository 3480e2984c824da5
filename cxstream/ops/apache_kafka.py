"""A single-node Apache Kafka 4.x broker for tests and the benchmark: KRaft combined mode, loopback ports, no Docker.

The broker's jars come from Maven Central through ``tools/kafka/pom.xml``, resolved once by
``tools/kafka/deps.sh`` (``make kafka-deps``) into ``~/.cache/cxstream/kafka-<version>/lib``
(or ``$CXSTREAM_KAFKA_HOME/lib``); :class:`ApacheKafka` runs that script itself if the cache is
missing (45 jars, 43 MB; the class-data-sharing archives of :meth:`ApacheKafka._cds` add
``cds/``, 75 MB). Needs ``java`` (17+) and, for the first resolution, ``mvn``. The JVM is
SIGKILLed by the kernel if the thread that started it ends (``PR_SET_PDEATHSIG``), so a test
run killed outright leaves no broker behind.

Each :class:`ApacheKafka` gets its own temporary directory holding ``server.properties``,
``log4j2.properties``, the KRaft storage (formatted with ``kafka.tools.StorageTool format -t
<cluster-id>`` and a static one-voter quorum, SCRAM users added at format time), PEM
certificates made with ``cryptography`` and the broker's log ``server.log``. Listeners, all on
``127.0.0.1``:

``PLAINTEXT`` (:attr:`~ApacheKafka.bootstrap`)
    unauthenticated; its principal ``User:ANONYMOUS`` is a super user, so this is the tests'
    admin path (and the inter-broker listener).
``SASL_SSL`` (:attr:`~ApacheKafka.sasl_ssl_bootstrap`)
    SCRAM-SHA-512 over TLS (the broker's certificate, signed by :attr:`~ApacheKafka.ca_file`,
    names ``127.0.0.1`` and ``localhost``); principals ``User:<scram user name>``; ACLs apply.
``SSL`` (:attr:`~ApacheKafka.ssl_bootstrap`)
    mutual TLS, ``ssl.client.auth=required``; a client certificate's CN is its principal
    (``User:<CN>``, via ``ssl.principal.mapping.rules``); ACLs apply.
``CONTROLLER``
    the KRaft quorum (PLAINTEXT, loopback).

``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``: a SASL or SSL principal
can do only what :meth:`~ApacheKafka.grant` allowed. ``auto.create.topics.enable=false``: use
:meth:`~ApacheKafka.create_topic` (or the code under test's own topic creation).

Start-up, from ``start()`` to the PLAINTEXT listener answering a metadata request, storage
format included (Kafka 4.4.0, OpenJDK 17, ``-Xmx512m -Xms256m -XX:+UseSerialGC``, 2 cores shared
with other test runs), measured 2026-12-03 with ``python -m cxstream.ops.apache_kafka --starts N``
and an interleaved A/B run:

* with the class-data-sharing archives (the default, see :meth:`ApacheKafka._cds`): median
  **1.9 s** on an idle machine (5 starts, 1.8-3.3 s); 3.1 s at load average 2.5-2.8 (5 starts,
  1.8-3.3 s);
* without them (``CXSTREAM_KAFKA_CDS=0``): median 3.5 s on an idle machine (5 starts, 3.0-3.9 s),
  4.8 s at load 2.5-2.8;
* the very first start also dumps the archives: about 7 s, and a second or so more at stop.

Of that, the storage tool's JVM takes about 0.5 s (0.85 s without its archive).
A controlled shutdown (SIGTERM) takes well under a second.

Usage::

    with ApacheKafka() as kafka:            # start() ... stop()
        kafka.create_topic("t1", partitions=4, config={"cleanup.policy": "compact"})
        kafka.grant("User:alice", topic="t1", group="g1")
        conf = kafka.sasl_ssl_config("alice")   # librdkafka settings for that listener
"""

from __future__ import annotations

import atexit
import base64
import datetime as _dt
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterable, Mapping, Sequence

__all__ = [
    "ApacheKafka",
    "KafkaStartError",
    "kafka_version",
    "kafka_home",
    "ensure_kafka_jars",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools" / "kafka"
POM = TOOLS_DIR / "pom.xml"
DEPS_SCRIPT = TOOLS_DIR / "deps.sh"

#: The JVM flags of a test broker: a small heap and a single-threaded collector (2 shared cores).
DEFAULT_JVM_OPTS: tuple[str, ...] = (
    "-Xmx512m",
    "-Xms256m",
    "-XX:+UseSerialGC",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
    "-Djava.net.preferIPv4Stack=true",
)


class KafkaStartError(RuntimeError):
    """The broker did not format, start or answer in time; the message ends with its log's tail."""


def kafka_version() -> str:
    """The Kafka version ``tools/kafka/pom.xml`` names (``<kafka.version>``)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        raise RuntimeError(f"no <kafka.version> in {POM}")
    return match.group(1).strip()


def kafka_home() -> Path:
    """The cache directory holding ``lib/``: ``$CXSTREAM_KAFKA_HOME`` or ``~/.cache/cxstream/kafka-<v>``."""
    env = os.environ.get("CXSTREAM_KAFKA_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "cxstream" / f"kafka-{kafka_version()}"


def ensure_kafka_jars() -> Path:
    """The broker's ``lib/`` directory, resolved with Maven first if it is not cached yet."""
    lib = kafka_home() / "lib"
    if (lib / ".complete").is_file():
        return lib
    proc = subprocess.run(
        ["bash", str(DEPS_SCRIPT)], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0 or not (lib / ".complete").is_file():
        raise KafkaStartError(
            f"could not resolve the Kafka jars into {lib} ({DEPS_SCRIPT} exited {proc.returncode}):\n"
            + (proc.stderr or proc.stdout)[-3000:]
        )
    return lib


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the thread that started it ends (Linux).

    A test process killed outright (SIGKILL, a CI timeout) leaves no JVM behind. Start the
    broker from a thread that outlives it (the main thread; ``die_with_parent=False`` otherwise).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class _Pki:
    """A CA, the broker's certificate and client certificates, as PEM files in one directory."""

    def __init__(self, directory: Path, broker_cn: str) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self._eku, self._name_oid = ExtendedKeyUsageOID, NameOID
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cxstream test CA")])
        self.ca_cert = (
            self._builder(ca_name, ca_name, self.ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))
        self.broker_cert_file, self.broker_key_file = self.issue(
            broker_cn, server=True, sans=("localhost", "127.0.0.1")
        )
        # Kafka's PEM key store: one file, the unencrypted PKCS#8 key then the certificate chain.
        self.broker_keystore_file = self.dir / f"{broker_cn}.keystore.pem"
        self.broker_keystore_file.write_bytes(
            self.broker_key_file.read_bytes() + self.broker_cert_file.read_bytes()
        )

    def _builder(self, subject, issuer, public_key):  # type: ignore[no-untyped-def]
        x509 = self._x509
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now)
            .not_valid_after(self._now + _dt.timedelta(days=2))
        )

    def issue(
        self,
        cn: str,
        *,
        server: bool = False,
        sans: Sequence[str] = (),
        ca: tuple[object, object] | None = None,
    ) -> tuple[Path, Path]:
        """A key and certificate for ``cn`` signed by this CA (or ``ca=(cert, key)``): (cert, key) paths."""
        x509, ser = self._x509, self._ser
        ca_cert, ca_key = ca if ca is not None else (self.ca_cert, self.ca_key)
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(self._name_oid.COMMON_NAME, cn)])
        usages = [self._eku.CLIENT_AUTH] + ([self._eku.SERVER_AUTH] if server else [])
        builder = (
            self._builder(subject, ca_cert.subject, key.public_key())  # type: ignore[attr-defined]
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if sans:
            names: list[x509.GeneralName] = []
            for san in sans:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    names.append(x509.DNSName(san))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, self._hashes.SHA256())  # type: ignore[arg-type]
        cert_file, key_file = self.dir / f"{cn}.pem", self.dir / f"{cn}.key"
        cert_file.write_bytes(cert.public_bytes(ser.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        )
        key_file.chmod(0o600)
        return cert_file, key_file

    def foreign_ca(self) -> Path:
        """A second, untrusted CA's certificate file (for tests of an untrusted broker CA)."""
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        name = self._x509.Name(
            [self._x509.NameAttribute(self._name_oid.COMMON_NAME, "untrusted test CA")]
        )
        cert = (
            self._builder(name, name, key.public_key())
            .add_extension(self._x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, self._hashes.SHA256())
        )
        path = self.dir / "untrusted-ca.pem"
        path.write_bytes(cert.public_bytes(self._ser.Encoding.PEM))
        self.foreign_ca_material = (cert, key)
        return path


class ApacheKafka:
    """One Apache Kafka broker+controller process on loopback ports (see the module docstring).

    Attributes (valid after construction; the ports are chosen then):

    ``bootstrap``, ``sasl_ssl_bootstrap``, ``ssl_bootstrap``
        ``127.0.0.1:PORT`` of the PLAINTEXT, SASL_SSL (SCRAM-SHA-512) and SSL (mTLS) listeners.
    ``url``
        ``kafka://`` + ``bootstrap`` (the form cxstream's settings take).
    ``controller_port``, ``cluster_id``, ``version``, ``workdir``, ``log_file``
    ``ca_file``
        the CA that signed the broker's and clients' certificates (PEM).
    ``client_cert_file``, ``client_key_file``, ``client_principal``
        the default client certificate (CN ``client_cn``) and its principal ``User:<CN>``.
    ``users``
        ``{name: password}`` of the SCRAM-SHA-512 users (created at format time, and by
        :meth:`create_user`). ``scram_user``/``scram_password``: the first of them.
    ``pid``, ``running``, ``startup_seconds`` (of the last :meth:`start`)

    Methods: :meth:`start` / :meth:`stop` (also a context manager), :meth:`kill`,
    :meth:`freeze` / :meth:`thaw`, :meth:`log_tail`; client settings :meth:`sasl_ssl_config`,
    :meth:`ssl_config`, :meth:`client_certificate`, :meth:`untrusted_ca_file`; admin over
    PLAINTEXT :meth:`admin`, :meth:`create_topic`, :meth:`create_user`, :meth:`grant`.
    """

    SCRAM_MECHANISM = "SCRAM-SHA-512"

    def __init__(
        self,
        *,
        users: Mapping[str, str] | Iterable[str] = ("cxstream",),
        client_cn: str = "cxstream-client",
        jvm_opts: Sequence[str] = DEFAULT_JVM_OPTS,
        extra_properties: Mapping[str, object] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        keep_workdir: bool = False,
        startup_timeout: float = 90.0,
        log_level: str = "INFO",
        die_with_parent: bool = True,
        class_data_sharing: bool | None = None,
    ) -> None:
        self.version = kafka_version()
        if isinstance(users, Mapping):
            self.users: dict[str, str] = dict(users)
        else:
            self.users = {name: secrets.token_urlsafe(18) for name in users}
        self.client_cn = client_cn
        self.client_principal = f"User:{client_cn}"
        self.broker_cn = "kafka-broker"
        self.jvm_opts = tuple(jvm_opts)
        self.extra_properties = dict(extra_properties or {})
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.die_with_parent = die_with_parent
        if class_data_sharing is None:
            class_data_sharing = os.environ.get("CXSTREAM_KAFKA_CDS", "1") != "0"
        self.class_data_sharing = class_data_sharing
        self._cds_pending: tuple[Path, Path] | None = None
        self._own_workdir = workdir is None
        self.keep_workdir = keep_workdir
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="cxstream-kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_file = self.workdir / "server.log"
        self.data_dir = self.workdir / "data"
        self.properties_file = self.workdir / "server.properties"
        self.cluster_id = _cluster_id()
        self.plaintext_port = _free_port()
        self.sasl_ssl_port = _free_port()
        self.ssl_port = _free_port()
        self.controller_port = _free_port()
        self.bootstrap = f"127.0.0.1:{self.plaintext_port}"
        self.sasl_ssl_bootstrap = f"127.0.0.1:{self.sasl_ssl_port}"
        self.ssl_bootstrap = f"127.0.0.1:{self.ssl_port}"
        self.url = f"kafka://{self.bootstrap}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle = None
        self._pki: _Pki | None = None
        self.startup_seconds: float | None = None

    # -- files -------------------------------------------------------------------------

    @property
    def pki(self) -> _Pki:
        if self._pki is None:
            self._pki = _Pki(self.workdir / "certs", self.broker_cn)
            self._pki.issue(self.client_cn)
        return self._pki

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    @property
    def client_cert_file(self) -> Path:
        return self.pki.dir / f"{self.client_cn}.pem"

    @property
    def client_key_file(self) -> Path:
        return self.pki.dir / f"{self.client_cn}.key"

    @property
    def scram_user(self) -> str:
        return next(iter(self.users))

    @property
    def scram_password(self) -> str:
        return self.users[self.scram_user]

    def client_certificate(self, cn: str, *, trusted: bool = True) -> tuple[Path, Path]:
        """A new client certificate for ``cn`` (principal ``User:<cn>``): (cert, key) paths.

        ``trusted=False`` signs it with a CA the broker does not trust.
        """
        pki = self.pki
        if trusted:
            return pki.issue(cn)
        if not hasattr(pki, "foreign_ca_material"):
            pki.foreign_ca()
        return pki.issue(cn, ca=pki.foreign_ca_material)

    def untrusted_ca_file(self) -> Path:
        """A CA file that did not sign the broker's certificate."""
        path = self.pki.dir / "untrusted-ca.pem"
        return path if path.exists() else self.pki.foreign_ca()

    def _properties(self) -> dict[str, object]:
        pki = self.pki
        protocol_map = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL"
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.plaintext_port},"
                f"SASL_SSL://127.0.0.1:{self.sasl_ssl_port},"
                f"SSL://127.0.0.1:{self.ssl_port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": (
                f"PLAINTEXT://{self.bootstrap},SASL_SSL://{self.sasl_ssl_bootstrap},"
                f"SSL://{self.ssl_bootstrap}"
            ),
            "listener.security.protocol.map": protocol_map,
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "metadata.log.dir": str(self.data_dir),
            # fast, single-node
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 4,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
            "auto.create.topics.enable": "false",
            "num.network.threads": 2,
            "num.io.threads": 4,
            "background.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.retention.check.interval.ms": 10000,
            "log.cleaner.backoff.ms": 1000,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
            # security
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:ANONYMOUS;User:{self.broker_cn}",
            "sasl.enabled.mechanisms": self.SCRAM_MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(pki.broker_keystore_file),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(pki.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.sasl_ssl.ssl.client.auth": "none",
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT",
        }
        props.update(self.extra_properties)
        return props

    def _write_config(self) -> None:
        lines = ["# written by cxstream/ops/apache_kafka.py"]
        for key, value in self._properties().items():
            text = str(value).replace("\\", "\\\\")
            lines.append(f"{key}={text}")
        self.properties_file.write_text("\n".join(lines) + "\n")
        (self.workdir / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.out.type = Console",
                    "appender.out.name = OUT",
                    "appender.out.layout.type = PatternLayout",
                    "appender.out.layout.pattern = [%d] %p %m (%c)%n",
                    f"rootLogger.level = {self.log_level}",
                    "rootLogger.appenderRef.out.ref = OUT",
                    # the chattiest loggers of a broker that starts and stops often
                    "logger.kafka.name = kafka",
                    f"logger.kafka.level = {self.log_level}",
                    "logger.state.name = state.change.logger",
                    "logger.state.level = WARN",
                    "logger.cleaner.name = kafka.log.LogCleaner",
                    "logger.cleaner.level = WARN",
                    "logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser",
                    "logger.appinfo.level = WARN",
                    "logger.config.name = org.apache.kafka.common.config.AbstractConfig",
                    "logger.config.level = WARN",
                    "logger.config2.name = kafka.server.KafkaConfig",
                    "logger.config2.level = WARN",
                    "",
                ]
            )
        )

    def _java(
        self, lib: Path, main: str, *args: str, heap: Sequence[str] | None = None
    ) -> tuple[list[str], tuple[Path, Path] | None]:
        """The command line, and (pending, final) paths of a class-data archive it will dump."""
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError("java not found on PATH (make kafka-deps installs a JDK)")
        opts = list(heap if heap is not None else self.jvm_opts)
        cds_opts, pending = self._cds(java, lib, main, opts)
        return [
            java,
            *opts,
            *cds_opts,
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            f"{lib}/*",
            main,
            *args,
        ], pending

    def _cds(
        self, java: str, lib: Path, main: str, opts: Sequence[str]
    ) -> tuple[list[str], tuple[Path, Path] | None]:
        """Class-data sharing: a dynamic archive of the classes ``main`` loads, in the jar cache.

        The first clean run of each main class dumps it (``-XX:ArchiveClassesAtExit``, about a
        second more at exit); later runs map it (``-XX:SharedArchiveFile``), which saves about a
        third of the start-up. Keyed on the JDK and the lib/ it was made from (the JVM refuses an
        archive whose jars changed); a stale or broken one is ignored by the JVM (``-Xshare:auto``).
        """
        if not self.class_data_sharing:
            return [], None
        real_java = os.path.realpath(java)
        key = hashlib.sha1(
            "|".join(
                [
                    real_java,
                    str(os.stat(real_java).st_mtime_ns),
                    str((lib / ".complete").stat().st_mtime_ns),
                    main,
                    " ".join(o for o in opts if o.startswith("-XX:+Use")),
                ]
            ).encode()
        ).hexdigest()[:12]
        directory = lib.parent / "cds"
        archive = directory / f"{main.rsplit('.', 1)[-1]}-{key}.jsa"
        quiet = ["-Xshare:auto", "-Xlog:cds*=off", "-Xlog:class+path=off"]
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}", *quiet], None
        directory.mkdir(parents=True, exist_ok=True)
        pending = directory / f".{archive.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        return [f"-XX:ArchiveClassesAtExit={pending}", *quiet], (pending, archive)

    @staticmethod
    def _cds_finish(pending: tuple[Path, Path] | None, clean_exit: bool) -> None:
        """Keep a dumped archive after a clean exit (atomically), drop it otherwise."""
        if pending is None:
            return
        tmp, final = pending
        try:
            if clean_exit and tmp.is_file() and tmp.stat().st_size > 0:
                os.replace(tmp, final)
            else:
                tmp.unlink(missing_ok=True)
        except OSError:
            pass

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "ApacheKafka":
        """Format (first start only), launch the JVM and wait until PLAINTEXT answers metadata."""
        if self.running:
            return self
        began = time.monotonic()
        lib = ensure_kafka_jars()
        self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format(lib)
        self._log_handle = open(self.log_file, "ab")
        cmd, self._cds_pending = self._java(lib, "kafka.Kafka", str(self.properties_file))
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        _LIVE.add(self)
        try:
            self._wait_ready(began + self.startup_timeout)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _format(self, lib: Path) -> None:
        args = ["format", "-t", self.cluster_id, "-c", str(self.properties_file), "--ignore-formatted"]
        for name, password in self.users.items():
            args += ["--add-scram", f"{self.SCRAM_MECHANISM}=[name={name},password={password}]"]
        # the storage tool is short-lived: a small heap, no JIT warm-up worth the cost
        cmd, pending = self._java(
            lib,
            "kafka.tools.StorageTool",
            *args,
            heap=("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData"),
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.workdir)
        self._cds_finish(pending, proc.returncode == 0)
        # its output lists the bootstrap records, SCRAM salts and stored keys included: keep it
        # out of the log unless it failed
        if proc.returncode != 0:
            raise KafkaStartError(
                f"kafka.tools.StorageTool format exited {proc.returncode}:\n"
                + self._redact(proc.stdout + proc.stderr)[-3000:]
            )

    def _redact(self, text: str) -> str:
        for password in self.users.values():
            text = text.replace(password, "***")
        return text

    def _wait_ready(self, deadline: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        last_error: object = None
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise KafkaStartError(
                    f"the Kafka broker exited with {self._proc.returncode} during start-up; "
                    f"log {self.log_file}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaStartError(
                    f"the Kafka broker did not answer a metadata request on {self.bootstrap} "
                    f"within {self.startup_timeout:.0f}s (last error: {last_error}); "
                    f"log {self.log_file}:\n{self.log_tail()}"
                )
            try:
                md = admin.list_topics(timeout=min(1.0, max(remaining, 0.1)))
                if md.brokers:
                    return
            except KafkaException as exc:
                last_error = exc

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def freeze(self) -> None:
        """SIGSTOP the JVM: connections stay open, nothing answers."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the JVM after :meth:`freeze`."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the JVM and wait for it (the storage stays; :meth:`start` runs it again)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(timeout=30)
        self._cds_finish(self._cds_pending, clean_exit=False)
        self._cds_pending = None
        self._close_log()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), SIGKILL after ``timeout``; then remove the work dir."""
        proc = self._proc
        clean = True
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                clean = False
                proc.kill()
                proc.wait(timeout=30)
        self._cds_finish(self._cds_pending, clean_exit=clean)
        self._cds_pending = None
        self._close_log()
        _LIVE.discard(self)
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self) -> "ApacheKafka":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the broker's log (format and server)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- client settings ---------------------------------------------------------------

    def sasl_ssl_config(self, user: str | None = None, password: str | None = None) -> dict[str, str]:
        """librdkafka settings for the SASL_SSL listener as ``user`` (default: the first user)."""
        user = user or self.scram_user
        return {
            "bootstrap.servers": self.sasl_ssl_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": self.SCRAM_MECHANISM,
            "sasl.username": user,
            "sasl.password": password if password is not None else self.users[user],
            "ssl.ca.location": str(self.ca_file),
        }

    def ssl_config(
        self, cert_file: str | os.PathLike[str] | None = None, key_file: str | os.PathLike[str] | None = None
    ) -> dict[str, str]:
        """librdkafka settings for the SSL listener with a client certificate (default: ``client_cn``'s)."""
        return {
            "bootstrap.servers": self.ssl_bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.location": str(self.ca_file),
            "ssl.certificate.location": str(cert_file or self.client_cert_file),
            "ssl.key.location": str(key_file or self.client_key_file),
        }

    # -- admin (over PLAINTEXT, a super user) ------------------------------------------

    def admin(self, **conf: object):  # type: ignore[no-untyped-def]
        """A confluent_kafka AdminClient on the PLAINTEXT listener (a super user)."""
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap, **conf})

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, object] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Create a topic (replication factor 1) and wait until the broker's metadata has it."""
        from confluent_kafka.admin import NewTopic

        admin = self.admin()
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=1,
            config={k: str(v) for k, v in (config or {}).items()},
        )
        admin.create_topics([topic], operation_timeout=timeout)[name].result(timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            md = admin.list_topics(topic=name, timeout=5)
            entry = md.topics.get(name)
            if entry is not None and entry.error is None and len(entry.partitions) == partitions:
                if all(p.leader >= 0 for p in entry.partitions.values()):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} has no leaders after {timeout}s")

    def create_user(self, name: str, password: str, iterations: int = 8192, timeout: float = 30.0) -> None:
        """Create (or reset) SCRAM-SHA-512 user ``name``; returns once the broker can authenticate it."""
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        admin = self.admin()
        upsert = UserScramCredentialUpsertion(
            name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations), password.encode()
        )
        admin.alter_user_scram_credentials([upsert])[name].result(timeout=timeout)
        self.users[name] = password
        deadline = time.monotonic() + timeout
        # the controller has committed it; wait until the broker's metadata image has it too
        while True:
            try:
                described = admin.describe_user_scram_credentials([name])[name].result(timeout=5)
                if any(
                    info.iterations == iterations
                    and info.mechanism == ScramMechanism.SCRAM_SHA_512
                    for info in described.scram_credential_infos
                ):
                    return
            except Exception:  # noqa: BLE001 - not there yet
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"SCRAM user {name} not visible after {timeout}s")

    def grant(
        self,
        principal: str,
        *,
        topic: str | None = None,
        group: str | None = None,
        transactional_id: str | None = None,
        cluster: bool = False,
        operations: Sequence[str] | None = None,
        prefixed: bool = False,
        host: str = "*",
        timeout: float = 30.0,
    ) -> list[object]:
        """Allow ``principal`` (``User:name``) operations on a topic, group, transactional id, cluster.

        ``operations`` are ``AclOperation`` names (``READ``, ``WRITE``, ``DESCRIBE``,
        ``DESCRIBE_CONFIGS``, ``CREATE``, ``ALL``, …); by default ``READ, WRITE, DESCRIBE`` on a
        topic, ``READ, DESCRIBE`` on a group, ``WRITE, DESCRIBE`` on a transactional id,
        ``IDEMPOTENT_WRITE`` on the cluster. ``prefixed=True`` makes the names prefixes. Returns
        the bindings once the broker's authorizer has them (``describe_acls`` lists them).
        """
        from confluent_kafka.admin import (
            AclBinding,
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
        targets: list[tuple[object, str, Sequence[str]]] = []
        if topic is not None:
            targets.append((ResourceType.TOPIC, topic, operations or ("READ", "WRITE", "DESCRIBE")))
        if group is not None:
            targets.append((ResourceType.GROUP, group, operations or ("READ", "DESCRIBE")))
        if transactional_id is not None:
            targets.append(
                (ResourceType.TRANSACTIONAL_ID, transactional_id, operations or ("WRITE", "DESCRIBE"))
            )
        if cluster:
            targets.append((ResourceType.BROKER, "kafka-cluster", operations or ("IDEMPOTENT_WRITE",)))
        if not targets:
            raise ValueError("grant() needs a topic, group, transactional_id or cluster=True")
        bindings = [
            AclBinding(
                rtype,
                name,
                ResourcePatternType.LITERAL if rtype == ResourceType.BROKER else pattern,
                principal,
                host,
                AclOperation[op.upper()],
                AclPermissionType.ALLOW,
            )
            for rtype, name, ops in targets
            for op in ops
        ]
        admin = self.admin()
        for future in admin.create_acls(bindings, request_timeout=timeout).values():
            future.result(timeout=timeout)
        wanted = {str(b) for b in bindings}
        flt = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
            AclOperation.ANY, AclPermissionType.ANY,
        )
        deadline = time.monotonic() + timeout
        while True:
            present = {str(b) for b in admin.describe_acls(flt, request_timeout=5).result(timeout=10)}
            if wanted <= present:
                return bindings
            if time.monotonic() > deadline:
                raise TimeoutError(f"ACLs for {principal} not in effect after {timeout}s: {wanted - present}")


#: brokers started in this process, killed at exit if a test run forgot them
_LIVE: set[ApacheKafka] = set()


@atexit.register
def _kill_leftovers() -> None:
    for kafka in list(_LIVE):
        try:
            kafka.stop(timeout=5)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def _measure(starts: int) -> None:
    """Start and stop a broker ``starts`` times; print each start-up time and the median."""
    import statistics

    times = []
    for _ in range(starts):
        kafka = ApacheKafka()
        try:
            kafka.start()
            assert kafka.startup_seconds is not None
            times.append(kafka.startup_seconds)
            print(f"started in {kafka.startup_seconds:.2f}s", flush=True)
        finally:
            kafka.stop()
    print(f"Kafka {kafka_version()}: median {statistics.median(times):.2f}s over {starts} starts "
          f"(min {min(times):.2f}s, max {max(times):.2f}s)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Measure the test broker's start-up time.")
    parser.add_argument("--starts", type=int, default=5)
    _measure(parser.parse_args().starts)
