"""The broker's jars from Maven Central, cached under .kafka/, and the Java to run them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from stream_app.errors import KafkaUnavailableError

__all__ = [
    "KAFKA_VERSION",
    "LOG4J_VERSION",
    "MIN_JAVA",
    "SCALA_VERSION",
    "ensure_jars",
    "find_java",
    "pom_xml",
]

# The one place the Kafka version is pinned: the Makefile asks this module
# (`python -m stream_app.localkafka version`) and a unit test holds docker-compose.yml to it.
KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
# Kafka 4 logs through slf4j 1.7 to log4j2; the binding follows the log4j-core that
# kafka-server itself depends on, so the two never disagree.
LOG4J_VERSION = "2.25.5"
MIN_JAVA = 17

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by stream_app.localkafka: the broker's runtime classpath, nothing else. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.stream-app</groupId>
  <artifactId>local-kafka</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def pom_xml() -> str:
    """The pom whose runtime dependencies are the broker's classpath.

    Example:
        >>> f"<version>{KAFKA_VERSION}</version>" in pom_xml()
        True
    """
    return _POM.format(kafka=KAFKA_VERSION, scala=SCALA_VERSION, log4j=LOG4J_VERSION)


def ensure_jars(home: Path) -> Path:
    """Return the directory of the broker's jars, fetching them with Maven the first time.

    A finished download is marked by a file, so a second start runs no Maven at all.
    """
    dist = home / f"kafka-{KAFKA_VERSION}"
    libs = dist / "libs"
    if (dist / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailableError(
            "mvn not found on PATH: Maven fetches the Kafka jars (apt-get install maven)"
        )
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "pom.xml").write_text(pom_xml())
    partial = dist / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(dist / "pom.xml"),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise KafkaUnavailableError(f"mvn could not fetch Kafka {KAFKA_VERSION}: {tail}")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    (dist / ".complete").write_text(KAFKA_VERSION + "\n")
    return libs


def find_java() -> str:
    """Path of a ``java`` that can run the broker (Java 17 or newer)."""
    java = shutil.which("java")
    if java is None:
        raise KafkaUnavailableError(
            f"java not found on PATH: Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+ "
            "(apt-get install openjdk-17-jre-headless)"
        )
    done = subprocess.run(  # noqa: S603
        [java, "-version"], capture_output=True, text=True, check=False
    )
    major = _java_major(done.stderr + done.stdout)
    if major is None or major < MIN_JAVA:
        raise KafkaUnavailableError(
            f"{java} is Java {major or 'of unknown version'}: "
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+"
        )
    return java


def _java_major(banner: str) -> int | None:
    """Major version from ``java -version`` output.

    Example:
        >>> _java_major('openjdk version "17.0.15" 2025-04-15')
        17
        >>> _java_major('java version "1.8.0_292"')
        8
    """
    found = re.search(r'version "(\d+)(?:\.(\d+))?', banner)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major
